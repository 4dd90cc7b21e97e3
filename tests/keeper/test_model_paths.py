"""The one vault + hedge model's v2 paths, offline: liquidation and its booking, the
keeper loss budget, exit slices (between maintenance and initial margin too), unwind
steps, fees without a recipient, the high-water mark reset and the de-peg gate."""

from __future__ import annotations

import pytest

from keeper.core.fixed import BPS, PRICE_UNIT, SIZE_UNIT
from keeper.model.markets import ModelRevert
from keeper.model.vault import HEDGE, BasisModel, simulate_unwind
from tests.keeper.world import LP, World

USDC = 10**6


def hedged(deposit: int = 1_000_000, leverage: float = 2.0) -> World:
    world = World.new()
    world.fund(deposit * USDC)
    world.open_hedge(leverage)
    return world


def later(world: World, seconds: int, move_bps: int = 0) -> World:
    world.warp(seconds)
    world.push_price(world.price * (BPS + move_bps) // BPS)
    world.arb_pool()
    return world


def test_liquidation__booked_by_sync_then_exits_take_what_is_left_and_never_go_long():
    world = later(hedged(leverage=3.0), 60, 3_500)
    assert world.liquidatable()
    booked = world.booked_short
    world.liquidate()
    assert world.short_size == 0 and world.booked_short == booked  # not booked yet
    assert world.state().liquidated
    world.sync()
    assert world.liquidations == [(booked, 0, world.liquidations[0][2], world.booked_equity)]
    assert world.booked_short == 0 and not world.state().liquidated
    world.sync()  # nothing new: nothing booked twice
    assert len(world.liquidations) == 1
    shares = world.balances[LP] // 10
    paid = world.redeem(shares, LP)
    assert paid > 0 and world.perp.account(HEDGE).size == 0  # no long opened


def test_liquidation__the_restoring_rebalance_is_risk_reducing_and_not_charged():
    world = later(hedged(leverage=3.0), 60, 3_500)
    world.liquidate()
    spent = world.budget_spent
    outcome = world.open_hedge(2.0)
    assert outcome.risk_reducing and world.budget_spent == spent
    assert world.short_size > 0 and world.booked_short == world.short_size


def test_budget__repeated_losing_rebalances_stop_at_the_daily_budget_then_refill():
    world = hedged()
    rules = world.rules
    refused = None
    for i in range(200):  # a stolen key parks and re-enters over and over
        trial = world.copy()
        try:
            if i % 2:
                trial.open_hedge(2.0)
            else:
                trial.rebalance(0, 0, rules.max_slippage_bps)
        except ModelRevert as err:
            refused = str(err)
            break
        world = trial
    assert refused == "hedge: keeper loss budget spent"
    assert world.budget_spent * BPS <= world.budget_nav * rules.keeper_loss_budget_bps
    left = world.budget_left()
    assert left is not None and left < world.nav() * rules.max_nav_loss_bps // BPS
    later(world, 86_400)
    assert world.budget_left() is None  # a new window: the next charged call opens it


def test_exit_slice__between_maintenance_and_initial_margin__pro_rata_exit_works():
    world = hedged(leverage=3.0)
    # equity / notional drops under the venue's initial margin (5 %) but stays above
    # maintenance (2.5 %): a 26 % rise at 3x
    later(world, 60, 2_850)
    ratio = world.perp.margin_ratio_bps(HEDGE)
    assert ratio is not None
    assert world.perp.maintenance_margin_bps < ratio < world.perp.initial_margin_bps
    shares = world.balances[LP] // 4
    paid = world.redeem(shares, LP)
    assert paid > 0
    after = world.perp.margin_ratio_bps(HEDGE)
    assert after is not None and after >= ratio  # the stayers' ratio is not lowered


def test_exit_slice__a_standalone_withdrawal_below_initial_margin_is_refused():
    world = later(hedged(leverage=3.0), 60, 2_850)
    with pytest.raises(ModelRevert, match="perp: below initial margin"):
        world.perp.withdraw_margin(HEDGE, 1)


def test_unwind__steps_until_flat_each_within_slippage():
    world = hedged(deposit=2_000_000)
    with pytest.raises(ModelRevert, match="hedge: not shut down"):
        world.unwind(SIZE_UNIT)
    world.shutdown()
    with pytest.raises(ModelRevert, match="hedge: zero size"):
        world.unwind(0)
    step = world.short_size // 3 + 1
    steps = 0
    while world.short_size or world.pool.amount_out(True, world.spot_base):
        _, expected = simulate_unwind(world.state(), step)
        idle = world.idle
        proceeds = world.unwind(step)
        assert world.idle == idle + proceeds == expected.idle
        steps += 1
        assert steps <= 4
    assert steps == 3 and world.short_size == 0 and not world.account_open
    # The spot bought for the hedge came out a few wei above its size (the pool's quote
    # rounds the input up); that dust is worth nothing on the pool nor at the oracle: the
    # next step drops it from the book and the hedge is flat.
    assert 0 < world.spot_base < 10**12 and world.active()
    assert world.unwind(step) == 0
    assert world.spot_base == 0 and not world.active()
    assert world.redeem(world.balances[LP], LP) > 0


def test_fees__nothing_accrues_without_a_recipient():
    world = hedged()
    world.management_fee_bps, world.performance_fee_bps = 200, 2_000
    later(world, 30 * 86_400, 500)
    assert world.total_assets() == world.nav()
    assert world.convert_to_assets(world.supply) <= world.total_assets()
    world.fee_recipient = "fees"
    assert world.total_assets() < world.nav()


def test_high_water_mark__reset_when_the_vault_empties():
    world = World.new()
    world.fee_recipient = "fees"
    world.performance_fee_bps = 1_000
    world.fund(1)  # a griefer's wei
    world.idle += 10 * USDC  # a donation books nothing; force a gain onto the one share
    world.redeem(world.balances[LP], LP)
    world.redeem(world.balances.get("fees", 0), "fees") if world.balances.get("fees") else None
    assert world.supply == 0
    world.push_asset_price()
    world.deposit(1_000_000 * USDC, "next")
    assert world.high_water_mark == (world.nav() - 1_000_000 * USDC + 1) * 10**18 // 10**6
    later(world, 3_600)
    assert world.total_assets() == world.nav()  # no performance fee on principal


def test_depeg__entries_and_exits_refused_beyond_the_bound():
    world = hedged()
    world.push_asset_price(PRICE_UNIT * (BPS - 101) // BPS)
    with pytest.raises(ModelRevert, match="vault: asset de-pegged"):
        world.deposit(USDC, LP)
    with pytest.raises(ModelRevert, match="vault: asset de-pegged"):
        world.redeem(1, LP)
    assert world.max_deposit() == 0 and world.max_withdraw(LP) == 0
    world.push_asset_price(PRICE_UNIT * (BPS - 100) // BPS)
    assert world.deposit(USDC, LP) > 0
    world.warp(world.rules.max_asset_oracle_age + 1)
    with pytest.raises(ModelRevert, match="vault: stale asset oracle"):
        world.redeem(1, LP)


def test_from_state__the_planners_model_equals_the_world_after_a_liquidation():
    world = later(hedged(leverage=3.0), 60, 3_500)
    world.liquidate()
    state = world.state()
    rebuilt = BasisModel.from_state(state)
    assert rebuilt.short_size == world.short_size == 0
    assert rebuilt.nav() == world.nav() == state.gross_nav
    assert rebuilt.account_open and rebuilt.booked_short == state.booked_short
