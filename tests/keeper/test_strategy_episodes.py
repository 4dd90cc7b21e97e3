"""The strategy over time on the model world: a keeper ticking every few minutes while the
market moves, every proposal executed by the tests' vault transcription. The same
scenarios the anvil integration runs, at model speed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keeper.bot.strategy import Hold, Intent, Rebalance, Settings, decide
from keeper.core.fixed import BPS, PRICE_UNIT
from tests.keeper.generators import PROPERTY_EPISODES
from tests.keeper.world import World, apply, flat_view

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
    world = entered_world()
    actions = []
    for hour in range(96):
        # a day and a half of shorts paying -3e-5/h (26 % a year), well past the park hurdle
        # (the round trip, ~0.3 % of the short, over two weeks: about -9e-6/h)
        rate = "-0.00003" if 24 <= hour < 60 else "0.00002"
        market_step(world, 3_600, 0)
        actions.append(keeper_tick(world, rate))
    taken = [a for a in actions if a is not None]
    assert taken == [Intent.PARK, Intent.ENTER]
    assert actions.index(Intent.PARK) == 24 and actions.index(Intent.ENTER) == 60
    assert world.short_size > 0


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
