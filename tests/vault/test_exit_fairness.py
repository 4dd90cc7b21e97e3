"""Issue 10, bullet 6: fair exits, every kind.

- An exit from a hedged vault with plenty of idle takes its pro-rata slice (idle + spot +
  short + margin) and is paid that slice's real proceeds; v1 paid it its NAV share from
  idle and left the unwind cost to the holders who stay (1.16k USDC of a 1M exit, 11.6 bps).
- With no fee recipient nothing accrues: totalAssets == convertToAssets(totalSupply) after
  a year (v1: 2 %/yr apart), and previewRedeem(balance) <= the real redeem.
- Between the venue's maintenance (250 bps) and initial (500 bps) margin a pro-rata redeem
  works and leaves the margin ratio no lower (v1 reverted "perp: below initial margin"
  although maxWithdraw reported the full amount).
"""

import pytest
from ape.utils import ZERO_ADDRESS

from tests.fixtures.vault import MAX, build_hedge, fund, hedge_targets, keep_fresh
from tests.units import USDC

YEAR = 365 * 86_400
V = 10**6  # virtual shares


def test_exit__1m_from_a_hedged_10m_vault_with_idle__pays_its_slice_and_stayers_keep_their_price(
    vault, hedge, perp, keeper, alice, bob, usdc, chain, arb, venue
):
    fund(usdc, vault, bob, 4_000_000 * USDC)
    vault.deposit(1_000_000 * USDC, alice, sender=alice)
    vault.deposit(7_000_000 * USDC, bob, sender=bob)
    build_hedge(vault, hedge, perp, keeper, chain, arb, venue, 2.0, steps=4)
    vault.deposit(2_000_000 * USDC, bob, sender=bob)  # plenty of idle: ~2M
    idle, supply = vault.idle(), vault.totalSupply()
    assert idle > 1_000_000 * USDC
    shares = vault.balanceOf(alice)
    nav_share = vault.convertToAssets(shares)  # what v1 paid, from idle
    pps = vault.convertToAssets(10**18)
    before = usdc.balanceOf(alice)
    tx = vault.redeem(shares, alice, alice, sender=alice)
    paid = usdc.balanceOf(alice) - before
    # the slice's real proceeds: its idle part + what the hedge sent for its spot/short/margin
    idle_part = idle * shares // (supply + V)
    from_hedge = sum(log.value for log in tx.events.filter(usdc.Transfer) if log.sender == hedge.address)
    assert paid == tx.return_value == idle_part + from_hedge
    assert vault.idle() == idle - idle_part  # nothing of the stayers' idle paid for it
    assert vault.convertToAssets(10**18) >= pps  # the stayers' price does not fall
    cost = nav_share - paid
    print(
        "1M exit from hedged 10M: paid", paid / USDC, "v1 would pay (NAV share)", nav_share / USDC,
        "unwind cost borne by the leaver", cost / USDC, f"({cost * 10_000 / nav_share:.2f} bps)",
    )  # fmt: skip
    assert 0 < cost < nav_share * 20 // 10_000  # v1 left ~11.6 bps to the stayers


@pytest.mark.parametrize("hedged", [False, True], ids=["idle", "hedged"])
def test_fees__no_recipient__total_assets_equals_convert_to_assets_after_a_year(
    create_vault, project, gov, alice, usdc, perp, keeper, venue, feeder, chain, hedged
):
    from keeper.ops.contracts import hedge_of

    vault = create_vault(fee_recipient=ZERO_ADDRESS)
    hedge = hedge_of(project, vault)
    usdc.approve(vault, MAX, sender=alice)
    vault.set_fees(200, 2_000, sender=gov)  # the caps: 2 %/yr and 20 %, but no recipient
    vault.deposit(1_000_000 * USDC, alice, sender=alice)
    if hedged:
        short, margin = hedge_targets(vault, perp, 2.0)
        hedge.rebalance(short, margin, 50, chain.pending_timestamp + 3_600, sender=keeper)
    supply = vault.totalSupply()
    chain.mine(deltatime=YEAR)
    keep_fresh(venue, feeder)
    nav = vault.totalAssets()
    assert abs(nav - vault.convertToAssets(vault.totalSupply())) <= 2  # v1: 2 %/yr apart
    assert vault.totalSupply() == supply
    preview = vault.previewRedeem(vault.balanceOf(alice))
    chain.pending_timestamp = chain.blocks.head.timestamp
    paid = vault.redeem(vault.balanceOf(alice), alice, alice, sender=alice).return_value
    assert preview <= paid
    assert vault.totalSupply() == 0  # no fee shares were ever minted
    print(
        "no recipient, a year:", "hedged" if hedged else "idle", "NAV", nav, "preview", preview, "paid", paid
    )


def ratio_between_mm_and_im(venue, perp, hedge, feeder, arb, target_bps=375):
    """Push the oracle (bisection) until the hedge's margin ratio is ~target_bps, then arb."""
    lo, hi = venue.price_feed.latestAnswer(), venue.price_feed.latestAnswer() * 2
    for _ in range(30):
        mid = (lo + hi) // 2
        venue.price_feed.set_price(mid, sender=feeder)
        ratio = perp.margin_ratio_bps(hedge)
        if abs(ratio - target_bps) <= 10:
            break
        lo, hi = (mid, hi) if ratio > target_bps else (lo, mid)
    perp.accrue_funding(sender=feeder)
    arb(venue)
    return perp.margin_ratio_bps(hedge)


def test_redeem__margin_ratio_between_mm_250_and_im_500__pro_rata_exit_works_ratio_kept(
    hedged_vault, hedge, venue, perp, feeder, arb, alice, bob, usdc
):
    vault = hedged_vault(100_000, 900_000, 2.0)
    ratio = ratio_between_mm_and_im(venue, perp, hedge, feeder, arb)
    assert perp.maintenance_margin_bps() == 250 and perp.initial_margin_bps() == 500
    assert 250 < ratio < 500, ratio
    assert not perp.is_liquidatable(hedge)
    short = hedge.short_size()
    shares = vault.balanceOf(alice)
    preview = vault.previewRedeem(shares)
    assert vault.maxWithdraw(alice) > 0
    tx = vault.redeem(shares, alice, alice, sender=alice)
    assert tx.return_value >= preview
    (log,) = tx.events.filter(hedge.ExitUnwound)
    assert log.short_closed > 0 and log.margin_withdrawn > 0
    after = perp.margin_ratio_bps(hedge)
    assert hedge.short_size() == short - log.short_closed
    print("MM-IM window: ratio", ratio, "->", after, "bps; alice paid", tx.return_value / USDC)
    assert after >= ratio
    # and a withdraw of a slice too (maxWithdraw reports what can be taken)
    amount = vault.maxWithdraw(bob) // 10
    before = usdc.balanceOf(bob)
    vault.withdraw(amount, bob, bob, sender=bob)
    assert usdc.balanceOf(bob) - before == amount
    assert perp.margin_ratio_bps(hedge) >= after
