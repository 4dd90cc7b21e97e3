"""Hypothesis generators for the keeper's property tests: worlds (a vault on the
reference venue some time after a hedge was opened) and funding views."""

from __future__ import annotations

import os
from decimal import Decimal

from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st

from keeper.bot.strategy import Settings
from keeper.core.fixed import BPS, PRICE_UNIT
from keeper.model.markets import ModelRevert
from tests.keeper.world import World, flat_view

USDC = 10**6

# CI: 300 fixed examples per property. A local soak: KEEPER_STRESS_EXAMPLES=5000 draws that
# many fresh random examples instead.
_STRESS = int(os.environ.get("KEEPER_STRESS_EXAMPLES", "0"))
PROPERTY = settings(
    max_examples=_STRESS or 300,
    deadline=None,
    derandomize=not _STRESS,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)

# Episodes run dozens of ticks each: fewer of them.
PROPERTY_EPISODES = settings(PROPERTY, max_examples=_STRESS or 60)

RATES = ["-0.0002", "-0.00001", "-0.000001", "0", "0.000002", "0.000005", "0.00001", "0.00003", "0.0002"]
SETTINGS = [Settings(), Settings(target_leverage=Decimal("1.5")), Settings(target_leverage=Decimal(3))]


def _venue(draw) -> World:
    price = draw(st.integers(200, 20_000)) * PRICE_UNIT
    world = World.new(
        price,
        pool_asset=draw(st.sampled_from([20_000_000, 200_000_000, 1_000_000_000])) * USDC,
        pool_fee_bps=draw(st.sampled_from([5, 5, 30])),
        depth=draw(st.sampled_from([500_000_000, 5_000_000_000])) * USDC,
        taker_fee_ppm=draw(st.sampled_from([0, 450, 1_000])),
    )
    world.fund(draw(st.integers(10_000, 3_000_000)) * USDC)
    return world


def _open(world: World, leverage: int) -> None:
    """A hedge at about `leverage` x, halved until the vault takes it (a shallow, costly
    pool cannot take a large one in one go)."""
    for attempt in range(6):
        trial = world.copy()
        try:
            trial.open_hedge(leverage / 2**attempt)
        except ModelRevert:
            continue
        world.__dict__.update(trial.__dict__)
        return


@st.composite
def worlds(draw, *, leverage=None, move=None, arbed=None, fresh=False):
    """A vault some time after a hedge (or none) was opened: funding accrued, the price
    moved (by `move` bps), the pool arbitraged back near the oracle or not, more deposits
    waiting, sometimes spot off the short. Mostly states a keeper meets (arbitraged pool,
    fresh oracle); sometimes the ones it must refuse to trade in."""
    world = _venue(draw)
    lev = draw(st.sampled_from([0, 1, 2, 2, 3]) if leverage is None else leverage)
    if lev:
        _open(world, lev)
    world.set_funding_rate(draw(st.integers(-20_000_000_000, 60_000_000_000)))
    world.warp(draw(st.integers(0, 3 * 86_400)))
    step = draw(st.one_of(st.integers(-800, 800), st.integers(-4_000, 4_000)) if move is None else move)
    world.push_price(max(world.price * (BPS + step) // BPS, PRICE_UNIT))
    arb = draw(st.sampled_from([True, True, True, True, False])) if arbed is None else arbed
    if arb:
        world.arb_pool(world.price * (BPS + draw(st.integers(-40, 40))) // BPS)
    world.fund(draw(st.integers(0, 1_000_000)) * USDC * draw(st.integers(0, 1)))
    world.warp(
        draw(st.integers(0, 1_800) if fresh else st.one_of(st.integers(0, 1_800), st.integers(0, 4 * 3_600)))
    )
    if draw(st.integers(0, 9)) == 0:
        world.spot_base = world.spot_base * draw(st.integers(9_500, 10_500)) // BPS
    return world


@st.composite
def near_critical(draw):
    """A hedge whose margin ratio the price has pushed to between 1 % and critical + buffer,
    with the pool arbitraged to within 20 bps of the oracle and a fresh oracle."""
    world = _venue(draw)
    _open(world, draw(st.sampled_from([2, 3])))
    state = world.state()
    assume(state.short_size > 0)
    leverage = state.short_value / state.perp_equity
    ratio = (
        draw(st.integers(100, state.rules.critical_margin_ratio_bps + Settings().critical_buffer_bps - 1))
        / BPS
    )
    # equity / notional after a rise x: (1/L - x) / (1 + x) = ratio
    rise = (1 / leverage - ratio) / (1 + ratio)
    world.warp(draw(st.integers(60, 3_600)))
    world.push_price(int(world.price * (1 + rise)))
    world.arb_pool(world.price * (BPS + draw(st.integers(-15, 15))) // BPS)
    return world


@st.composite
def views_for(draw, world):
    hours = draw(st.sampled_from([48, 48, 48, 6, 0]))
    views = [flat_view(world.now, draw(st.sampled_from(RATES)), "onchain", hours)]
    for venue in ("hyperliquid", "dydx")[: draw(st.integers(0, 2))]:
        views.append(flat_view(world.now, draw(st.sampled_from(RATES)), venue))
    return views
