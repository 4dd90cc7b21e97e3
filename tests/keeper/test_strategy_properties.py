"""Hypothesis properties of `decide`, checked on the tests' own vault transcription
(`tests.keeper.world`), never on the strategy's arithmetic:

- every proposal passes the vault's rules, at the state it was made from and a couple of
  blocks later;
- no flapping: the decision on the state a proposal leads to is never the reverse move,
  and funding anywhere between the park and re-entry rates never changes the posture;
- a margin ratio near critical always produces an action (where one is possible at all).
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import assume, event, given
from hypothesis import strategies as st

from keeper.bot.strategy import EmergencyDeleverage, Hold, Intent, Rebalance, Settings, decide
from keeper.core.fixed import BPS
from keeper.core.rules import VaultRules
from keeper.model.markets import ModelRevert
from tests.keeper.generators import PROPERTY, SETTINGS, near_critical, views_for, worlds
from tests.keeper.world import World, apply, flat_view

REVERSE = {
    Intent.ENTER: {Intent.PARK},
    Intent.DEPLOY: {Intent.PARK},
    Intent.PARK: {Intent.ENTER, Intent.DEPLOY},
    Intent.MARGIN_THIN: {Intent.MARGIN_FAT},
    Intent.MARGIN_FAT: {Intent.MARGIN_THIN, Intent.CRITICAL},
    Intent.CRITICAL: {Intent.MARGIN_FAT},
    Intent.REHEDGE: {Intent.REHEDGE},
}


def drawn_decision(data):
    """A random world, its venues' views and settings, and the action `decide` takes there
    (its kind recorded as a hypothesis event)."""
    world = data.draw(worlds())
    views = data.draw(views_for(world))
    config = data.draw(st.sampled_from(SETTINGS))
    action = decide(world.state(), views, config).action
    event(type(action).__name__)
    return world, views, config, action


def accepted(world: World, action) -> bool:
    try:
        apply(world.copy(), action)
    except ModelRevert:
        return False
    return True


@PROPERTY
@given(data=st.data())
def test_every_proposal_passes_the_vaults_rules(data):
    world, _, _, action = drawn_decision(data)
    if isinstance(action, Hold):
        return
    apply(world.copy(), action)  # raises the vault's revert reason if the rules refuse it
    later = world.copy()
    later.warp(24)  # two blocks of funding and time before it lands
    assert accepted(later, action)
    pushed = later.copy()
    pushed.push_price(pushed.price * (BPS + data.draw(st.integers(-5, 5))) // BPS)  # and a small oracle push
    assert accepted(pushed, action)


@PROPERTY
@given(data=st.data())
def test_no_flapping__the_next_decision_is_never_the_reverse_move(data):
    world, views, config, first = drawn_decision(data)
    if not isinstance(first, Rebalance):
        return
    after = world.copy()
    apply(after, first)
    after.warp(12)
    second = decide(after.state(), views, config).action
    if isinstance(second, Rebalance):
        assert second.intent not in REVERSE[first.intent], (first.reason, second.reason)
        if second.intent == first.intent:  # only a batch is followed by the next batch
            assert "of the way" in first.reason, (first.reason, second.reason)


@PROPERTY
@given(data=st.data(), rate=st.decimals(min_value=Decimal(0), max_value=Decimal("0.000005"), places=9))
def test_no_flapping__between_the_thresholds_the_posture_holds(data, rate):
    config = Settings()
    assume(config.park_rate_per_hour <= rate < config.reentry_rate_per_hour)
    world = data.draw(
        worlds(leverage=st.sampled_from([0, 2]), move=st.integers(-500, 500), arbed=True, fresh=True)
    )
    action = decide(world.state(), [flat_view(world.now, rate)], config).action
    if isinstance(action, Rebalance):
        assert action.intent not in {Intent.ENTER, Intent.PARK, Intent.DEPLOY}, action.reason


@PROPERTY
@given(data=st.data())
def test_critical_margin_always_produces_an_action(data):
    world = data.draw(near_critical())
    state = world.state()
    config = Settings()
    ratio = state.margin_ratio_bps
    assume(
        ratio is not None and 0 < ratio < state.rules.critical_margin_ratio_bps + config.critical_buffer_bps
    )
    assume(abs(state.pool_dislocation_bps) <= 20 and not state.liquidated)
    decision = decide(state, [flat_view(world.now, "0.00001")], config)
    assert isinstance(decision.action, Rebalance | EmergencyDeleverage), decision.reason
    assert accepted(world, decision.action)
    after = world.copy()
    apply(after, decision.action)
    assert after.state().margin_ratio_bps is None or after.state().margin_ratio_bps > ratio


def test_rules_defaults_leave_room_for_the_default_settings():
    assert Settings().problems(VaultRules()) == []
