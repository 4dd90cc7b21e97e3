"""BasisHedge.rebalance: the keeper moves the hedge (v2: the position lives in the hedge;
the short is the venue's, the cash the vault's idle lent for the call)."""

import ape
import pytest

from keeper.core.rules import VaultRules
from keeper.ops.contracts import deploy_vault, hedge_of
from tests.fixtures.vault import delta_bps, hedge_targets
from tests.units import USDC


def test_rebalance__open__deploys_idle_into_a_neutral_hedge(
    vault, hedge, perp, keeper, alice, usdc, deadline
):
    vault.deposit(300_000 * USDC, alice, sender=alice)
    nav_before = vault.totalAssets()
    short, margin = hedge_targets(vault, perp, 2.0)
    tx = hedge.rebalance(short, margin, 50, deadline, sender=keeper)
    assert hedge.short_size() == short
    assert abs(delta_bps(vault, perp, hedge)) <= 5
    assert perp.position(hedge).size == -short
    nav_after = vault.totalAssets()
    assert nav_before - nav_after < nav_before * 10 // 10_000  # < 10 bps entry cost
    (log,) = tx.events.filter(hedge.Rebalanced)
    assert log.short_after == short and log.short_before == 0
    assert log.cost == nav_before - nav_after
    print("open cost bps", (nav_before - nav_after) * 10_000 / nav_before, "idle", vault.idle())


@pytest.fixture
def funded_vault(vault, alice, bob):
    vault.deposit(100_000 * USDC, alice, sender=alice)
    vault.deposit(200_000 * USDC, bob, sender=bob)
    return vault


def test_rebalance__adjust_then_park(funded_vault, hedge, perp, keeper, deadline, usdc):
    vault = funded_vault
    short, margin = hedge_targets(vault, perp, 2.0)
    hedge.rebalance(short, margin, 50, deadline, sender=keeper)
    # lever up to 3x
    short3, margin3 = hedge_targets(vault, perp, 3.0)
    hedge.rebalance(short3, margin3, 50, deadline, sender=keeper)
    assert hedge.short_size() == short3
    assert abs(delta_bps(vault, perp, hedge)) <= 5
    # park everything back to idle
    nav = vault.totalAssets()
    tx = hedge.rebalance(0, 0, 50, deadline, sender=keeper)
    assert hedge.short_size() == hedge.spot_base() == 0
    assert perp.position(hedge).margin == 0
    assert vault.idle() == vault.totalAssets() == usdc.balanceOf(vault)
    assert nav - vault.totalAssets() < nav * 10 // 10_000
    (log,) = tx.events.filter(hedge.Rebalanced)
    assert log.short_after == 0 and log.margin_after == 0


def test_rebalance__only_keepers(funded_vault, hedge, gov, guardian, alice, deployer, deadline):
    for who in (gov, guardian, alice, deployer):
        with ape.reverts("hedge: not keeper"):
            hedge.rebalance(0, 0, 50, deadline, sender=who)


def test_rebalance__expired_deadline__reverts(funded_vault, hedge, keeper, chain):
    with ape.reverts("hedge: deadline expired"):
        hedge.rebalance(0, 0, 50, chain.blocks.head.timestamp - 1, sender=keeper)


def test_rebalance__slippage_above_rule__reverts(funded_vault, hedge, keeper, deadline, rules):
    with ape.reverts("hedge: slippage above rule"):
        hedge.rebalance(0, 0, rules.max_slippage_bps + 1, deadline, sender=keeper)


def test_rebalance__leverage_above_rule__reverts(funded_vault, hedge, perp, keeper, deadline):
    # 4.5x > the 4x rule, while its ~22 % margin ratio still passes the 20 % min ratio
    short, margin = hedge_targets(funded_vault, perp, 4.5)
    with ape.reverts("hedge: leverage rule"):
        hedge.rebalance(short, margin, 50, deadline, sender=keeper)


def test_rebalance__margin_ratio_below_rule__reverts(project, deployer, venue, keeper, alice, usdc, deadline):
    # leverage allowed up to 10x, but the margin ratio must stay >= 20 % (5x)
    loose = deploy_vault(
        project, deployer, venue, VaultRules(max_leverage_bps=100_000), keeper=keeper.address
    )
    usdc.approve(loose, 2**256 - 1, sender=alice)
    loose.deposit(100_000 * USDC, alice, sender=alice)
    short, margin = hedge_targets(loose, venue.perp_market, 6.0)
    with ape.reverts("hedge: position rules"):
        hedge_of(project, loose).rebalance(short, margin, 50, deadline, sender=keeper)


def test_rebalance__unaffordable_target__reverts(funded_vault, hedge, perp, keeper, deadline):
    short, margin = hedge_targets(funded_vault, perp, 2.0)
    with ape.reverts("hedge: idle too low"):
        hedge.rebalance(short * 2, margin, 50, deadline, sender=keeper)


def test_rebalance__tight_slippage__reverts_on_fill(funded_vault, hedge, perp, keeper, deadline):
    short, margin = hedge_targets(funded_vault, perp, 2.0)
    with ape.reverts("hedge: spot slippage"):
        hedge.rebalance(short, margin, 1, deadline, sender=keeper)


def test_rebalance__nav_loss_rule(project, deployer, venue, gov, keeper, alice, usdc, deadline):
    strict = deploy_vault(
        project, deployer, venue, VaultRules(max_nav_loss_bps=1), owner=gov.address, keeper=keeper.address
    )
    usdc.approve(strict, 2**256 - 1, sender=alice)
    strict.deposit(100_000 * USDC, alice, sender=alice)
    short, margin = hedge_targets(strict, venue.perp_market, 2.0)
    with ape.reverts("hedge: nav loss rule"):
        hedge_of(project, strict).rebalance(short, margin, 50, deadline, sender=keeper)


def test_rebalance__stale_oracle__reverts(funded_vault, hedge, keeper, warp, rules, chain):
    warp(rules.max_oracle_age + 1)
    with ape.reverts("hedge: stale oracle"):
        hedge.rebalance(0, 0, 50, chain.pending_timestamp + 100, sender=keeper)


def test_rebalance__share_price_does_not_jump_when_funding_settles(
    funded_vault, hedge, perp, keeper, operator, warp, chain
):
    vault = funded_vault
    short, margin = hedge_targets(vault, perp, 2.0)
    hedge.rebalance(short, margin, 50, chain.pending_timestamp + 3_600, sender=keeper)
    perp.set_funding_rate(27_777_777_777, sender=operator)  # 0.01 %/h: shorts earn
    warp(3_600)
    before = vault.convertToAssets(10**18)
    # settling funding into margin (a margin move touches the account) books what NAV
    # already counted: the share price moves by one second of funding, not an hour's
    chain.pending_timestamp = chain.blocks.head.timestamp
    hedge.rebalance(short, margin + 1, 50, chain.pending_timestamp + 3_600, sender=keeper)
    after = vault.convertToAssets(10**18)
    assert abs(after - before) < before // 100_000
