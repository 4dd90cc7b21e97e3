"""The strategy over time on the model world: a keeper ticking every few minutes while the
market moves, every proposal executed by the tests' vault transcription. The same
scenarios the anvil integration runs, at model speed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keeper.bot.strategy import Hold, Intent, Rebalance, Settings, decide
from keeper.core.fixed import BPS, PRICE_UNIT
from tests.keeper.generators import PROPERTY_EPISODES
from tests.keeper.world import World, apply, flat_view, path_view

USDC = 10**6
DEFAULT = Settings()


def keeper_tick(world: World, rate: str, settings: Settings = DEFAULT) -> Intent | None:
    decision = decide(world.state(), [flat_view(world.now, rate)], settings)
    apply(world, decision.action)  # the vault must accept every proposal
    return None if isinstance(decision.action, Hold) else getattr(decision.action, "intent", "emergency")


def market_step(world: World, seconds: int, move_bps: int) -> None:
    """Time passes, the feeder pushes a price, arbitrageurs level the pool."""
    world.warp(seconds)
    world.push_price(max(world.price * (BPS + move_bps) // BPS, PRICE_UNIT))
    world.arb_pool()


def entered_world(deposit: int = 1_000_000) -> World:
    world = World.new()
    world.fund(deposit * USDC)
    world.set_funding_rate(5_555_555_555)  # 0.002 %/h
    assert keeper_tick(world, "0.00002") is Intent.ENTER
    return world


def test_episode__30pct_rally_within_an_hour__no_liquidation_and_back_in_band():
    world = entered_world()
    for _ in range(12):  # +30 % in twelve 5-minute steps (2.22 % each)
        market_step(world, 300, 222)
        keeper_tick(world, "0.00002")
        assert not world.liquidatable()
    assert world.price >= 3_000 * PRICE_UNIT * 13 // 10
    ratio = world.state().margin_ratio_bps
    assert DEFAULT.margin_ratio_low_bps <= ratio <= DEFAULT.margin_ratio_high_bps


def test_episode__30pct_drop_within_an_hour__back_in_band():
    world = entered_world()
    for _ in range(12):  # -30 % in twelve steps (-2.94 % each)
        market_step(world, 300, -294)
        keeper_tick(world, "0.00002")
    assert world.price <= 3_000 * PRICE_UNIT * 7 // 10
    ratio = world.state().margin_ratio_bps
    assert DEFAULT.margin_ratio_low_bps <= ratio <= DEFAULT.margin_ratio_high_bps


def test_episode__sustained_negative_funding_parks__recovery_reenters__once_each():
    """Three days of shorts paying -0.16 %/8h after a calm week: the keeper parks once the
    funding of the spell so far, at the measured persistence, beats a round trip (~0.37 %
    of a 1M vault's short: 42 h in), stays parked through it, and re-enters once within a
    day of the recovery, when the day's mean clears the re-entry rate."""
    world = entered_world()
    rates = ["0.00002"] * 7 * 24  # the week before, as the keeper's history shows it
    actions = []
    for hour in range(144):
        rates.append("-0.0002" if 24 <= hour < 96 else "0.00002")
        market_step(world, 3_600, 0)
        view = path_view(world.now, *((1, r) for r in rates))
        decision = decide(world.state(), [view], DEFAULT)
        apply(world, decision.action)
        actions.append(None if isinstance(decision.action, Hold) else decision.action.intent)
    taken = [a for a in actions if a is not None]
    assert taken == [Intent.PARK, Intent.ENTER]
    assert 24 + 24 < actions.index(Intent.PARK) < 24 + 48  # a day or two into the spell
    assert 96 < actions.index(Intent.ENTER) < 96 + 24
    assert world.short_size > 0


def test_episode__a_mild_negative_week__ridden_out_hedged():
    """A week of -0.01 %/8h (the venues' resting rate, reversed): paying it costs less than
    a park and re-entry would, at the persistence such spells showed; the keeper holds."""
    world = entered_world()
    rates = ["0.00002"] * 7 * 24
    for hour in range(9 * 24):
        rates.append("-0.0000125" if 24 <= hour < 8 * 24 else "0.00002")
        market_step(world, 3_600, 0)
        decision = decide(world.state(), [path_view(world.now, *((1, r) for r in rates))], DEFAULT)
        assert isinstance(decision.action, Hold), decision.reason


@PROPERTY_EPISODES
@given(
    moves=st.lists(st.integers(-400, 400), min_size=24, max_size=48),
    rates=st.lists(st.sampled_from(["-0.00001", "0.000002", "0.00002"]), min_size=1, max_size=4),
)
def test_episode__random_walk__every_action_accepted_and_never_liquidatable(moves, rates):
    world = entered_world(deposit=300_000)
    for i, move in enumerate(moves):
        market_step(world, 900, move)
        keeper_tick(world, rates[i * len(rates) // len(moves)])
        assert not world.liquidatable()
        state = world.state()
        if state.short_size:
            assert state.margin_ratio_bps > state.rules.critical_margin_ratio_bps


def test_episode__restart_does_not_repeat_an_action():
    """A keeper that acted, died and came back decides from chain state alone."""
    world = entered_world()
    market_step(world, 600, 1_800)  # +18 %: margin thin
    state = world.state()
    first = decide(state, [flat_view(world.now, "0.00002")], DEFAULT).action
    assert isinstance(first, Rebalance) and first.intent is Intent.MARGIN_THIN
    apply(world, first)
    # a fresh process, no memory: the same views, the chain as it is now
    again = decide(world.state(), [flat_view(world.now, "0.00002")], Settings()).action
    assert isinstance(again, Hold)
