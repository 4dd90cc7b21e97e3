"""The model rebuilt from a `VaultState` (what the strategy plans on) against the same
model run as a world (`tests.keeper.world`, which keeps the market's real funding index,
position cost and the hedge's books): the same targets must give the same revert reason,
or the same books to the wei. Then the model's own paths: liquidation and its booking,
restore, unwind steps, the keeper's loss budget, exit slices in the MM-IM window, fees."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keeper.core.fixed import BPS
from keeper.model.markets import ModelRevert
from keeper.model.vault import (
    emergency_allowed,
    rule_violations,
    simulate_emergency_deleverage,
    simulate_rebalance,
)
from tests.keeper.generators import PROPERTY, near_critical, worlds
from tests.keeper.world import HEDGE, World


def _world_result(world: World, call) -> tuple[str | None, World]:
    trial = world.copy()
    try:
        call(trial)
    except ModelRevert as err:
        return str(err), trial
    return None, trial


def _model_result(call) -> tuple[str | None, object]:
    try:
        outcome = call()
    except ModelRevert as err:
        return str(err), None
    return None, outcome


def _same_books(outcome, world: World) -> None:
    state = world.state()
    assert outcome.idle == state.idle
    assert outcome.spot_base == state.spot_base
    assert outcome.short_size == state.short_size
    assert outcome.perp_equity == state.perp_equity
    assert outcome.settled_margin == state.settled_margin
    assert outcome.margin_ratio_bps == state.margin_ratio_bps
    assert outcome.nav_after == state.nav
    assert (outcome.pool_reserve_base, outcome.pool_reserve_asset) == (
        state.pool_reserve_base,
        state.pool_reserve_asset,
    )


def _agree(reason, outcome, expected_reason, after: World) -> None:
    """The model refuses with the transcription's reason, or ends with the same books."""
    assert reason == expected_reason
    if reason is None:
        _same_books(outcome, after)


@PROPERTY
@given(data=st.data())
def test_model_rebalance__matches_the_contract_transcription(data):
    world = data.draw(worlds())
    state = world.state()
    unit = max(state.short_size, state.gross_nav * 10**18 // max(state.size_value(10**18), 1) // 2, 1)
    target_short = unit * data.draw(st.integers(0, 300)) // 100
    target_margin = max(state.settled_margin, state.gross_nav // 3) * data.draw(st.integers(0, 250)) // 100
    slippage = data.draw(st.sampled_from([1, 10, 35, 50, 51]))

    expected_reason, after = _world_result(
        world, lambda w: w.rebalance(target_short, target_margin, slippage)
    )
    reason, outcome = _model_result(lambda: simulate_rebalance(state, target_short, target_margin, slippage))
    if reason is None:
        violations = rule_violations(outcome, state)
        reason = violations[0] if violations else None
    _agree(reason, outcome, expected_reason, after)


@PROPERTY
@given(world=near_critical())
def test_model_emergency_deleverage__matches_the_contract_transcription(world):
    state = world.state()
    expected_reason, after = _world_result(world, World.emergency_deleverage)
    assert emergency_allowed(state) == (expected_reason != "hedge: deleverage not allowed")
    _agree(*_model_result(lambda: simulate_emergency_deleverage(state)), expected_reason, after)


@PROPERTY
@given(world=worlds())
def test_state__position_cost_recovered_exactly_from_the_view(world):
    state = world.state()
    assert state.perp_cost == world.perp.account(HEDGE).cost
    assert state.settled_margin == max(state.perp_margin + state.perp_accrued_funding, 0)
    assert state.gross_nav == state.nav  # no fee recipient: nothing accrues
    assert not state.liquidated


def test_state__pool_signals():
    world = World.new()
    assert world.state().pool_dislocation_bps == 0 and world.state().basis_bps == 0
    world.arb_pool(world.price * 9_950 // BPS)
    state = world.state()
    assert -51 <= state.pool_dislocation_bps <= -49
    assert 49 <= state.basis_bps <= 51  # perp rich to a cheap pool: good for entering
