"""Issue 10, bullet 4: when supply is 0 the next entry resets the high-water mark to the
price it enters at. On v1 the mark only moved while supply != 0, so whatever dust NAV an
emptied vault kept lifted the next depositor's share price against a stale mark and they
paid the performance fee on their own principal: a griefer spending 1 wei made the next
1M depositor lose 10 %; a hedged vault that emptied left the next depositor -7.3 %."""

from ape.utils import ZERO_ADDRESS

from tests.fixtures.vault import MAX, hedge_targets, keep_fresh
from tests.units import USDC

DAY = 86_400


def leave(vault, *holders):
    for who in holders:
        if vault.balanceOf(who):
            vault.redeem(vault.balanceOf(who), who, who, sender=who)


def next_depositor_pays_no_fee(vault, bob, venue, feeder, warp, chain):
    """The 1M entry into an empty vault: returns (value after deposit, value a day later)."""
    assert vault.totalSupply() == 0
    dust = vault.totalAssets()
    tx = vault.deposit(1_000_000 * USDC, bob, sender=bob)
    (reset,) = tx.events.filter(vault.HighWaterMarkReset)
    assert reset.high_water_mark == (dust + 1) * 10**18 // 10**6 == vault.high_water_mark()
    entered = vault.convertToAssets(vault.balanceOf(bob))
    warp(DAY)
    keep_fresh(venue, feeder)
    vault.deposit(1, bob, sender=bob)  # an entry: accrues whatever fee is due
    after = vault.convertToAssets(vault.balanceOf(bob))
    return dust, entered, after


def test_hwm__one_wei_grief__next_1m_depositor_pays_no_fee_on_principal(
    vault, hedge, gov, perp, operator, keeper, alice, bob, deployer, usdc, stranger, venue, feeder, warp,
    chain, deadline,
):  # fmt: skip
    vault.set_fees(0, 2_000, sender=gov)  # 20 % performance fee, to the treasury
    griefer = deployer
    usdc.mint(griefer, USDC, sender=griefer)
    usdc.approve(vault, MAX, sender=griefer)
    vault.deposit(1, griefer, sender=griefer)  # 1 wei: 10**6 shares
    vault.deposit(100_000 * USDC, alice, sender=alice)
    # the vault gains: a hedged day of 0.1 %/h funding, then parked
    short, margin = hedge_targets(vault, perp, 2.0)
    hedge.rebalance(short, margin, 50, deadline, sender=keeper)
    perp.set_funding_rate(277_777_777_777, sender=operator)
    warp(DAY)
    keep_fresh(venue, feeder)
    perp.set_funding_rate(0, sender=operator)
    hedge.rebalance(0, 0, 50, chain.pending_timestamp + 3_600, sender=keeper)
    assert not hedge.active()
    pps = vault.convertToAssets(10**18)
    assert pps > 10**6  # share price above its start: a gain
    leave(vault, alice, stranger)  # the fee was taken on the way out
    assert vault.high_water_mark() > 10**12
    leave(vault, griefer)  # last out: leaves a wei or so behind
    dust, entered, after = next_depositor_pays_no_fee(vault, bob, venue, feeder, warp, chain)
    loss_bps = (entered - after) * 10_000 / entered
    print(
        "1-wei grief: dust NAV",
        dust,
        "wei; 1M entered at",
        entered,
        "a day later",
        after,
        "loss bps",
        loss_bps,
    )
    assert dust > 0
    assert entered >= 1_000_000 * USDC - 1
    assert after * 10_000 >= entered * 9_999  # loss < 1 bp (v1: -10 %)
    assert vault.balanceOf(stranger) == 0  # no fee on principal


def test_hwm__hedged_vault_that_empties__next_depositor_not_charged(
    hedged_vault, hedge, gov, perp, operator, alice, bob, stranger, venue, feeder, warp, chain
):
    vault = hedged_vault(500_000, 0, 2.0)
    vault.set_fees(100, 2_000, sender=gov)
    perp.set_funding_rate(277_777_777_777, sender=operator)
    warp(DAY)
    keep_fresh(venue, feeder)
    perp.set_funding_rate(0, sender=operator)
    vault.set_fees(0, 2_000, sender=gov)  # accrues; no management fee to blur the comparison
    # no recipient while everyone leaves (else each exit mints the treasury a dust fee share
    # it cannot redeem: see test_exit__dust_fee_shares_while_hedged below)
    vault.set_fee_recipient(ZERO_ADDRESS, sender=gov)
    leave(vault, alice, stranger)  # pro-rata exits while hedged: the hedge keeps dust
    vault.set_fee_recipient(stranger, sender=gov)
    dust, entered, after = next_depositor_pays_no_fee(vault, bob, venue, feeder, warp, chain)
    loss_bps = (entered - after) * 10_000 / entered
    print("hedged vault emptied: dust NAV", dust, "active", hedge.active(), "loss bps", loss_bps)
    assert entered >= 1_000_000 * USDC - 2
    assert after * 10_000 >= entered * 9_999  # loss < 1 bp (v1: -7.3 %)
    assert vault.balanceOf(stranger) == 0
