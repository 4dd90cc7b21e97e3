"""Issue 10, bullets 2-3: a liquidation the hedge did not make. A 2M vault hedged 2x, the
oracle +50 % (3,000 -> 4,500): the venue liquidates the short; the hedge's books follow the
venue (`sync` books it), NAV is idle + spot at the oracle + what margin is left, and every
path keeps working afterwards: exits (pro-rata, never a perp long), shutdown + unwind
steps, and the keeper restoring the hedge (risk-reducing, not charged to its budget).

On v1 the vault kept its cached short after the liquidation: exits bought back a short that
no longer existed (+44 ETH long after two 10 % exits), and shutdown, rebalance(0, 0),
emergency_deleverage and large exits reverted, freezing ~1.33M of spot."""

import ape
import pytest

from tests.fixtures.vault import delta_bps, hedge_targets, usd
from tests.units import E8, USDC

START = 3_000 * E8
JUMP = 4_500 * E8  # +50 %


def move_price(venue, feeder, arb, price_e8):
    venue.perp_market.accrue_funding(sender=feeder)
    venue.price_feed.set_price(price_e8, sender=feeder)
    venue.asset_feed.set_price(venue.asset_feed.latestAnswer(), sender=feeder)
    arb(venue)


@pytest.fixture
def liquidated(hedged_vault, hedge, venue, perp, feeder, arb, liquidator):
    """The 2M vault hedged 2x, liquidated at +50 %; returns (vault, facts before)."""
    vault = hedged_vault(1_000_000, 1_000_000, 2.0)
    before = dict(
        short=hedge.short_size(),
        spot=hedge.spot_base(),
        equity=perp.equity(hedge),
        nav=vault.totalAssets(),
    )
    assert before["nav"] == pytest.approx(2_000_000 * USDC, rel=3e-3)
    assert hedge.booked_short() == before["short"] > 0
    move_price(venue, feeder, arb, JUMP)
    assert perp.is_liquidatable(hedge)
    tx = perp.liquidate(hedge, sender=liquidator)
    (log,) = tx.events.filter(perp.Liquidated)
    assert log.account == hedge.address and log.size == -before["short"]
    before["booked_equity"] = hedge.booked_equity()
    return vault, before


def test_liquidation__plus_50_pct__sync_books_it_and_nav_is_idle_spot_margin(
    liquidated, hedge, perp, stranger
):
    vault, before = liquidated
    # the venue is the truth at once, even before anyone syncs
    assert hedge.short_size() == 0
    assert perp.position(hedge).size == 0
    remaining_margin = perp.position(hedge).margin
    spot_value = usd(hedge.spot_base(), JUMP)
    assert hedge.spot_base() == before["spot"]
    assert vault.totalAssets() == vault.idle() + spot_value + remaining_margin
    print(
        "liquidation +50%: short", before["short"] / 1e18, "ETH, equity", before["equity"] / USDC,
        "-> margin left", remaining_margin / USDC, "NAV", vault.totalAssets() / USDC,
    )  # fmt: skip
    # a permissionless sync books it, once
    tx = hedge.sync(sender=stranger)
    (log,) = tx.events.filter(hedge.LiquidationBooked)
    assert log.short_before == before["short"] and log.short_after == 0
    assert log.equity_before == before["booked_equity"]
    assert log.equity_after == perp.equity(hedge) == remaining_margin
    assert hedge.booked_short() == 0 and hedge.booked_equity() == remaining_margin
    assert hedge.short_size() == 0
    tx = hedge.sync(sender=stranger)
    assert len(tx.events.filter(hedge.LiquidationBooked)) == 0


def test_liquidation__then_price_back__exits_pay_pro_rata_and_never_open_a_long(
    liquidated, hedge, venue, perp, feeder, arb, alice, bob, usdc
):
    vault, _ = liquidated
    move_price(venue, feeder, arb, START)
    for who in (alice, bob, alice):  # two 10 % exits by alice (v1: +44 ETH long) and one by bob
        shares = vault.balanceOf(who) // 10
        nav_share = vault.convertToAssets(shares)
        pps = vault.convertToAssets(10**18)
        spot = hedge.spot_base()
        supply = vault.totalSupply()
        got = usdc.balanceOf(who)
        tx = vault.redeem(shares, who, who, sender=who)  # the first one also books the liquidation
        paid = usdc.balanceOf(who) - got
        assert paid == tx.return_value
        assert perp.position(hedge).size == 0 and hedge.short_size() == 0  # never a long
        assert hedge.spot_base() == spot - spot * shares // (supply + 10**6)  # its pro-rata slice
        assert nav_share * 9_940 // 10_000 <= paid <= nav_share  # spot sold within 50 bps + fee
        assert vault.convertToAssets(10**18) >= pps - 1  # the stayers did not pay
    assert vault.maxWithdraw(alice) > 0
    vault.withdraw(vault.maxWithdraw(alice) // 2, alice, alice, sender=alice)
    assert perp.position(hedge).size == 0


def test_liquidation__then_shutdown__unwind_steps_park_everything(
    liquidated, hedge, venue, perp, feeder, arb, guardian, stranger, alice, bob, usdc
):
    vault, before = liquidated
    move_price(venue, feeder, arb, START)
    vault.shutdown(sender=guardian)
    step = before["spot"] // 3 + 1
    steps = 0
    while hedge.active():
        tx = hedge.unwind(step, sender=stranger)
        steps += 1
        (log,) = tx.events.filter(hedge.Unwound)
        assert log.short_closed == 0
        arb(venue)
    print("unwind after liquidation: steps", steps)
    assert steps == 3
    assert perp.position(hedge).size == 0 and perp.position(hedge).margin == 0
    assert vault.idle() == vault.totalAssets() == usdc.balanceOf(vault)
    for who in (alice, bob):
        vault.redeem(vault.balanceOf(who), who, who, sender=who)
    assert vault.totalSupply() == vault.balanceOf(vault.fee_recipient())


def test_liquidation__keeper_restores_a_2x_hedge_within_the_rules_uncharged(
    liquidated, hedge, venue, perp, feeder, arb, keeper, deadline, rules
):
    vault, _ = liquidated
    move_price(venue, feeder, arb, START)
    nav = vault.totalAssets()
    assert abs(delta_bps(vault, perp, hedge)) > rules.max_delta_bps  # the spot leg is unhedged
    budget = (hedge.budget_window_start(), hedge.budget_nav(), hedge.budget_spent())
    assert budget[2] > 0  # opening the hedge was charged
    short, margin = hedge_targets(vault, perp, 2.0)
    tx = hedge.rebalance(short, margin, 50, deadline, sender=keeper)
    (log,) = tx.events.filter(hedge.Rebalanced)
    assert log.short_before == 0 and log.short_after == short == hedge.short_size()
    assert abs(delta_bps(vault, perp, hedge)) <= rules.max_delta_bps
    assert perp.margin_ratio_bps(hedge) >= rules.min_margin_ratio_bps
    assert 0 <= log.cost <= nav * rules.max_nav_loss_bps // 10_000
    # risk-reducing (it started outside the delta rule): not charged to the keeper's budget
    assert (hedge.budget_window_start(), hedge.budget_nav(), hedge.budget_spent()) == budget
    print("restore after liquidation: cost", log.cost / USDC, "bps", log.cost * 10_000 / nav)


def test_liquidation__emergency_deleverage_after_it__no_position(
    liquidated, hedge, venue, feeder, arb, stranger
):
    """v1 reverted with "deleverage not allowed" against a short it no longer had; v2 reads
    the venue: there is no position to deleverage."""
    move_price(venue, feeder, arb, START)
    with ape.reverts("hedge: no position"):
        hedge.emergency_deleverage(sender=stranger)
