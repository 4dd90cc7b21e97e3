import ape
import pytest

from tests.units import E8, USDC


@pytest.fixture
def hedged(hedged_vault):
    return hedged_vault(100_000, 200_000, 3.0)


def squeeze(venue, feeder, arb, price_e8):
    venue.perp_market.accrue_funding(sender=feeder)
    venue.price_feed.set_price(price_e8, sender=feeder)
    arb(venue)


def test_pause__guardian_or_owner_only_and_never_blocks_exits(vault, guardian, gov, alice, stranger, keeper):
    vault.deposit(1_000 * USDC, alice, sender=alice)
    for who in (alice, stranger, keeper):
        with ape.reverts("vault: not owner or guardian"):
            vault.pause(sender=who)
    tx = vault.pause(sender=guardian)
    assert vault.paused()
    assert len(tx.events.filter(vault.Paused)) == 1
    vault.redeem(vault.balanceOf(alice), alice, alice, sender=alice)  # exits keep working
    with ape.reverts("vault: not owner or guardian"):
        vault.unpause(sender=stranger)
    vault.unpause(sender=gov)
    assert not vault.paused()


def test_shutdown__sets_the_flag_then_unwind_steps_park_everything_in_idle(
    hedged, hedge, perp, guardian, keeper, alice, bob, stranger, usdc, deadline
):
    """v2 (issue 10, bullet 5): `shutdown()` only sets the flag (it used to sell the whole
    hedge in the same call, which reverted on slippage near the cap); anyone then unwinds
    in bounded steps. A 300k vault unwinds in one step."""
    vault = hedged
    nav = vault.totalAssets()
    with ape.reverts("hedge: not shut down"):
        hedge.unwind(2**256 - 1, sender=stranger)
    tx = vault.shutdown(sender=guardian)
    assert vault.is_shutdown()
    assert len(tx.events.filter(vault.Shutdown)) == 1
    assert hedge.active() and hedge.short_size() > 0  # nothing traded yet
    assert vault.maxDeposit(alice) == 0
    with ape.reverts("vault: shut down"):
        vault.deposit(USDC, alice, sender=alice)
    with ape.reverts("hedge: shut down"):
        hedge.rebalance(0, 0, 50, deadline, sender=keeper)
    with ape.reverts("vault: shut down"):
        vault.shutdown(sender=guardian)
    with ape.reverts("hedge: zero size"):
        hedge.unwind(0, sender=stranger)
    tx = hedge.unwind(10**30, sender=stranger)  # anyone; more than the whole position
    (log,) = tx.events.filter(hedge.Unwound)
    assert log.proceeds == tx.return_value > 0
    assert not hedge.active()
    assert hedge.short_size() == hedge.spot_base() == 0
    assert perp.position(hedge).margin == 0
    assert vault.idle() == vault.totalAssets() == usdc.balanceOf(vault)
    assert vault.totalAssets() > nav * 9_980 // 10_000
    # everyone gets out, all from idle
    for who in (alice, bob):
        vault.redeem(vault.balanceOf(who), who, who, sender=who)
    assert vault.totalSupply() == vault.balanceOf(vault.fee_recipient())


def test_unwind__max_uint__unwinds_everything(hedged, hedge, guardian, stranger):
    hedged.shutdown(sender=guardian)
    hedge.unwind(2**256 - 1, sender=stranger)
    assert not hedge.active()


def test_shutdown__only_owner_or_guardian(hedged, keeper, alice):
    for who in (keeper, alice):
        with ape.reverts("vault: not owner or guardian"):
            hedged.shutdown(sender=who)


def test_emergency_deleverage__healthy__reverts(hedged, hedge, stranger):
    with ape.reverts("hedge: deleverage not allowed"):
        hedge.emergency_deleverage(sender=stranger)


def test_emergency_deleverage__no_position__reverts(vault, hedge, stranger):
    with ape.reverts("hedge: no position"):
        hedge.emergency_deleverage(sender=stranger)


def test_emergency_deleverage__below_critical__restores_min_ratio(
    hedged, hedge, venue, perp, feeder, arb, stranger, rules
):
    vault = hedged
    # 3x short: margin ratio ~33 %; a +22 % squeeze takes it under the 10 % critical ratio
    squeeze(venue, feeder, arb, 3_660 * E8)
    ratio = perp.margin_ratio_bps(hedge)
    assert ratio < rules.critical_margin_ratio_bps
    price_before = vault.convertToAssets(10**18)
    tx = hedge.emergency_deleverage(sender=stranger)
    after = perp.margin_ratio_bps(hedge)
    assert rules.min_margin_ratio_bps <= after <= rules.min_margin_ratio_bps + 400
    (log,) = tx.events.filter(hedge.EmergencyDeleveraged)
    assert log.margin_ratio_before_bps == ratio and log.margin_ratio_after_bps == after
    assert vault.convertToAssets(10**18) > price_before * 99 // 100  # bounded cost
    assert not perp.is_liquidatable(hedge)


def test_emergency_deleverage__dead_man__only_when_below_min(
    hedged, hedge, venue, perp, feeder, arb, stranger, warp, rules
):
    squeeze(venue, feeder, arb, 3_400 * E8)  # ratio ~18 %: below min 20 %, above critical
    ratio = perp.margin_ratio_bps(hedge)
    assert rules.critical_margin_ratio_bps < ratio < rules.min_margin_ratio_bps
    with ape.reverts("hedge: deleverage not allowed"):
        hedge.emergency_deleverage(sender=stranger)
    warp(rules.dead_man_interval + 1)
    squeeze(venue, feeder, arb, 3_400 * E8)  # keep the oracle fresh
    hedge.emergency_deleverage(sender=stranger)
    assert perp.margin_ratio_bps(hedge) >= rules.min_margin_ratio_bps


def test_roles__owner_only_setters(vault, gov, alice, keeper, guardian):
    for who in (alice, keeper, guardian):
        with ape.reverts("ownable: caller is not the owner"):
            vault.set_keeper(who, True, sender=who)
        with ape.reverts("ownable: caller is not the owner"):
            vault.set_guardian(who, sender=who)
        with ape.reverts("ownable: caller is not the owner"):
            vault.set_deposit_cap(1, sender=who)
        with ape.reverts("ownable: caller is not the owner"):
            vault.set_fees(0, 0, sender=who)
        with ape.reverts("ownable: caller is not the owner"):
            vault.set_fee_recipient(who, sender=who)


def test_roles__setters_log(vault, gov, alice, rules):
    tx = vault.set_keeper(alice, True, sender=gov)
    (log,) = tx.events.filter(vault.KeeperUpdated)
    assert (log.account, log.status) == (alice.address, True)
    tx = vault.set_guardian(alice, sender=gov)
    (log,) = tx.events.filter(vault.GuardianUpdated)
    assert log.new_guardian == alice.address
    tx = vault.set_deposit_cap(5 * USDC, sender=gov)
    (log,) = tx.events.filter(vault.DepositCapUpdated)
    assert log.new_cap == 5 * USDC
    with ape.reverts("vault: cap above ceiling"):
        vault.set_deposit_cap(rules.deposit_cap_ceiling + 1, sender=gov)
    with ape.reverts("vault: zero address"):
        vault.set_keeper(ape.utils.ZERO_ADDRESS, True, sender=gov)


def test_ownership__two_step(vault, gov, alice):
    vault.transfer_ownership(alice, sender=gov)
    assert vault.owner() == gov.address and vault.pending_owner() == alice.address
    vault.accept_ownership(sender=alice)
    assert vault.owner() == alice.address
