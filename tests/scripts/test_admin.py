"""Owner and guardian calls (what `ape run admin ...` runs): the role and the state are read
first, a refusal is one line with nothing sent; unwind steps until the hedge is flat."""

from decimal import Decimal

import pytest

from keeper.ops import actions, feeder
from tests.checks import refused
from tests.units import USDC

ZERO = actions.ZERO_ADDRESS


@pytest.fixture
def hedged(dep, chain, admin, alice):
    """alice 100k in, then one keeper rebalance into a 2x hedge (about 22 WETH each leg)."""
    actions.deposit(dep, chain, alice, 100_000 * USDC, use_faucet=True)
    actions.rebalance(dep, chain, admin, *actions.hedge_targets(dep, Decimal(2)))
    return dep


def test_admin__pause_and_unpause_check_role_and_state(dep, admin, stranger):
    nonce = stranger.nonce
    refused(
        rf"{stranger.address} cannot pause deposits: only the vault's owner \({admin.address}\) or "
        "guardian",
        actions.pause,
        dep,
        stranger,
    )
    refused("deposits are not paused", actions.unpause, dep, admin)
    assert actions.pause(dep, admin) is not None and dep.vault.paused()
    refused(
        r"deposits are already paused \(`ape run admin unpause` reopens them\)", actions.pause, dep, admin
    )
    actions.unpause(dep, admin)
    assert not dep.vault.paused() and stranger.nonce == nonce


def test_admin__keepers_guardian_cap_are_owner_only(dep, admin, alice, stranger):
    refused(
        "cannot set keepers: only the vault's owner", actions.set_keeper, dep, stranger, alice.address, True
    )
    assert actions.set_keeper(dep, admin, alice.address, True) is not None and dep.vault.is_keeper(alice)
    assert actions.set_keeper(dep, admin, alice.address, True) is None  # already: nothing sent
    actions.set_keeper(dep, admin, alice.address, False)
    assert not dep.vault.is_keeper(alice)
    refused("the keeper cannot be the zero address", actions.set_keeper, dep, admin, ZERO, True)

    actions.set_guardian(dep, admin, stranger.address)
    assert dep.vault.guardian() == stranger.address
    actions.pause(dep, stranger)  # the guardian may pause
    actions.set_guardian(dep, admin, ZERO)
    refused(r"only the vault's owner \(0x[0-9a-fA-F]{40}\) may$", actions.unpause, dep, stranger)

    refused(
        r"the deposit cap must be between 0 and the vault's ceiling 10,000,000.00 USDC; asked for "
        r"10,000,000.01",
        actions.set_deposit_cap,
        dep,
        admin,
        10**13 + 10_000,
    )
    actions.set_deposit_cap(dep, admin, 5_000 * USDC)
    assert (
        dep.vault.deposit_cap() == 5_000 * USDC and actions.set_deposit_cap(dep, admin, 5_000 * USDC) is None
    )


def test_admin__fees_within_caps_and_fresh_oracles(dep, chain, admin):
    nonce = admin.nonce
    refused(
        "--management-bps 201 is above the vault's max_management_fee_bps 200; "
        "--performance-bps 2001 is above the vault's max_performance_fee_bps 2000",
        actions.set_fees,
        dep,
        chain,
        admin,
        201,
        2_001,
    )
    refused(
        "the fee recipient cannot be the vault itself",
        actions.set_fee_recipient,
        dep,
        chain,
        admin,
        dep.vault.address,
    )
    chain.mine(deltatime=dep.vault.max_oracle_age() + 1)
    refused("the oracle price is stale", actions.set_fees, dep, chain, admin, 100, 1_000)  # fees accrue first
    assert admin.nonce == nonce
    feeder.push_price(dep, admin, Decimal(3_000))
    actions.set_fees(dep, chain, admin, 100, 1_000)
    assert (dep.vault.management_fee_bps(), dep.vault.performance_fee_bps()) == (100, 1_000)
    assert actions.set_fees(dep, chain, admin, 100, 1_000) is None
    actions.set_fee_recipient(dep, chain, admin, ZERO)
    assert dep.vault.fee_recipient() == ZERO


def test_admin__two_step_ownership(dep, admin, alice, stranger):
    refused("no ownership transfer is pending", actions.accept_ownership, dep, alice)
    refused("already owns the vault", actions.transfer_ownership, dep, admin, admin.address)
    actions.transfer_ownership(dep, admin, alice.address)
    assert dep.vault.pending_owner() == alice.address
    refused(
        rf"{stranger.address} cannot accept ownership: it is offered to {alice.address}",
        actions.accept_ownership,
        dep,
        stranger,
    )
    actions.accept_ownership(dep, alice)
    assert dep.vault.owner() == alice.address
    refused("cannot set the deposit cap: only the vault's owner", actions.set_deposit_cap, dep, admin, 1)


def test_admin__shutdown_then_unwind_in_fixed_steps(hedged, chain, admin, alice, stranger):
    dep = hedged
    refused(
        r"the vault is not shut down: unwind steps open only after `ape run admin shutdown`",
        actions.unwind,
        dep,
        chain,
        stranger,
    )
    refused("cannot shut the vault down", actions.shutdown, dep, stranger)
    actions.shutdown(dep, admin)
    refused(
        "the vault is already shut down; unwind the hedge with `ape run admin unwind`",
        actions.shutdown,
        dep,
        admin,
    )
    nav = dep.vault.totalAssets()
    seen = []
    steps = actions.unwind(
        dep, chain, stranger, step=10 * 10**18, on_step=seen.append
    )  # anyone, 10 WETH a step
    assert steps == seen and len(steps) == 3  # 22.2 WETH: 10 + 10 + 2.2
    assert [s.short_closed for s in steps[:2]] == [10 * 10**18] * 2 and steps[2].short_left == 0
    assert steps[-1].spot_left == 0 and not dep.hedge.active()
    assert dep.vault.idle() == pytest.approx(nav, rel=0.01)  # within the slippage rule of the NAV
    s = actions.status(dep, chain)
    assert s["unwind"] == {
        "done": True,
        "steps": 3,
        "proceeds_wei": sum(x.proceeds for x in steps),
        "spot_left_wei": 0,
        "short_left_e18": 0,
    }
    assert "unwind          done: the hedge is flat (3 steps" in actions.format_status(s)
    assert actions.unwind(dep, chain, stranger) == []  # flat: nothing to send, not an error
    assert actions.withdraw(dep, chain, alice, everything=True).assets == pytest.approx(nav, rel=0.01)


def test_admin__auto_step_fits_the_pool(hedged, chain, admin, stranger):
    """A shallow pool (the LP takes 99.6 % out): `auto` sells the most the slippage rule
    allows per step; without arbitrage the next step has no room, with --arb it goes on."""
    dep = hedged
    actions.shutdown(dep, admin)
    pool = dep.spot_pool
    pool.remove_liquidity(pool.balanceOf(admin) * 996 // 1_000, 0, 0, admin, sender=admin)
    step = actions.auto_unwind_step(dep)
    price, slippage = dep.price_feed.latestAnswer(), 50
    # WETH and the size unit share 18 decimals: the step is also the base amount; 2 % more would not fit
    assert actions._spot_fits(dep, step, price, slippage)
    assert not actions._spot_fits(dep, step * 1_02 // 100, price, slippage)
    assert step < dep.hedge.spot_base()
    first = actions.unwind(dep, chain, stranger, max_steps=1)
    assert first[0].spot_sold == step
    refused(
        r"the spot pool is -\d+ bps from the oracle: no spot sale fits .* or pass --arb",
        actions.unwind,
        dep,
        chain,
        stranger,
    )
    refused(
        r"a 20.000000 step's spot sale would fill beyond the hedge's 50 bps slippage rule",
        actions.unwind,
        dep,
        chain,
        stranger,
        step=20 * 10**18,
    )
    rest = actions.unwind(dep, chain, stranger, arb_between=True)
    assert len(rest) >= 2 and not dep.hedge.active()
