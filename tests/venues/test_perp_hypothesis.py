"""PerpMarket against its exact Python model over random histories.

Each example is a sequence of funding-rate changes, premium changes (the mark moves off
the index), time warps, oracle moves, margin flows, trades and liquidation attempts by two
traders (some at the exact oracle price or premium that makes one liquidatable). After
every step the harness compares the funding index, the mark, every account's margin, PnL,
accrued funding, equity, notional, margin ratio and liquidatability, the pool's liquidity
and value, and the solvency identity, to the wei.
A step the model rejects must revert on chain with the same reason.
"""

import copy

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from keeper.core.fixed import MAX_FUNDING_RATE, MAX_PREMIUM
from tests.fixtures.perp_harness import PerpHarness
from tests.units import E8, SIZE, SOAK, USDC

TRADERS = ("alice", "bob")

rates = st.one_of(
    st.integers(-MAX_FUNDING_RATE, MAX_FUNDING_RATE),
    # realistic: up to +-0.05 % per hour
    st.integers(-138_888_888_888, 138_888_888_888),
    st.just(0),
)
premiums = st.one_of(
    st.integers(-MAX_PREMIUM, MAX_PREMIUM),
    # realistic: within +-0.5 %
    st.integers(-5 * 10**15, 5 * 10**15),
    st.sampled_from((0, 10**16, -(10**16), MAX_PREMIUM, -MAX_PREMIUM)),
    # beyond the bound: must revert
    st.sampled_from((MAX_PREMIUM + 1, -MAX_PREMIUM - 1)),
)
ops = st.one_of(
    st.tuples(st.just("rate"), rates),
    st.tuples(st.just("premium"), premiums),
    st.tuples(st.just("warp"), st.integers(1, 2 * 86_400)),
    # bps move of the oracle: hypothesis favours small integers, so add real shocks
    st.tuples(
        st.just("price"),
        st.one_of(st.integers(-3_000, 3_000), st.sampled_from((-3_000, -1_500, -600, 600, 1_500, 3_000))),
    ),
    st.tuples(st.just("deposit"), st.sampled_from(TRADERS), st.integers(1, 200_000 * USDC)),
    st.tuples(st.just("withdraw"), st.sampled_from(TRADERS), st.integers(1, 200_000 * USDC)),
    # a trade whose notional is `leverage_bps` of the trader's equity (21x overshoots IM)
    st.tuples(
        st.just("trade"),
        st.sampled_from(TRADERS),
        st.one_of(st.integers(1, 210_000), st.sampled_from((50_000, 150_000, 205_000))),
        st.sampled_from((1, -1)),
    ),
    st.tuples(st.just("dust"), st.sampled_from(TRADERS), st.integers(-SIZE, SIZE)),
    st.tuples(st.just("close"), st.sampled_from(TRADERS)),
    st.tuples(st.just("liquidate"), st.sampled_from(TRADERS)),
    # move the oracle to a trader's liquidation price, +-offset in 1e-8 USD, then liquidate
    st.tuples(st.just("to_liquidation"), st.sampled_from(TRADERS), st.integers(-2, 2)),
    # move the premium (the mark, not the index) to where a trader first becomes
    # liquidatable, +-offset in 1e-18, then liquidate
    st.tuples(st.just("premium_to_liquidation"), st.sampled_from(TRADERS), st.integers(-1, 1)),
)


def _first_liquidating(
    h: PerpHarness, who, field: str, unsafe_for_short: int, unsafe_for_long: int
) -> int | None:
    """The value of the model's `field` at which `who` first becomes liquidatable, by
    bisection on a copy of the model between its value now and the unsafe end for the
    account's side; None when flat, already liquidatable or safe even there."""
    m = copy.deepcopy(h.model)
    size = m.account(who.address).size
    if size == 0:
        return None

    def liquidatable(x: int) -> bool:
        setattr(m, field, x)
        return m.is_liquidatable(who.address)

    safe, unsafe = getattr(h.model, field), unsafe_for_short if size < 0 else unsafe_for_long
    if liquidatable(safe) or not liquidatable(unsafe):
        return None
    while abs(unsafe - safe) > 1:
        mid = (safe + unsafe) // 2
        if liquidatable(mid):
            unsafe = mid
        else:
            safe = mid
    return unsafe


def liquidation_premium(h: PerpHarness, who) -> int | None:
    """The premium (1e18 = 100 %) at which `who` first becomes liquidatable at the current
    index (a short loses as the mark rises, a long as it falls), within the market's bound."""
    return _first_liquidating(h, who, "premium", MAX_PREMIUM, -MAX_PREMIUM)


def liquidation_price(h: PerpHarness, who) -> int | None:
    """The price (8 decimals) at which `who` first becomes liquidatable (shorts above, longs
    below), within a 10x move."""
    return _first_liquidating(h, who, "price_e8", h.model.price_e8 * 10, 1)


leverages = st.one_of(
    st.integers(1_000, 200_000), st.sampled_from((10_000, 30_000, 100_000, 150_000, 190_000))
)


def trade_size(h: PerpHarness, who, leverage_bps: int, sign: int) -> int:
    equity = max(h.model.equity(who.address), 1_000 * USDC)
    notional = equity * leverage_bps // 10_000
    return sign * max(1, notional * SIZE * E8 // (h.model.price_e8 * USDC))


@pytest.fixture(scope="module")
def funded_traders(venue, alice, bob, perp):
    for t in (alice, bob):
        for _ in range(3):
            venue.asset.mint(t, 1_000_000 * USDC, sender=t)
        venue.asset.approve(perp, 2**256 - 1, sender=t)
    return {"alice": alice, "bob": bob}


@settings(
    max_examples=25 * SOAK,  # `make soak`: more
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(
    opening=st.tuples(
        st.integers(10_000 * USDC, 1_000_000 * USDC),  # alice's margin
        st.integers(10_000 * USDC, 1_000_000 * USDC),  # bob's margin
        leverages,  # alice's opening leverage, bps of equity
        leverages,
        st.sampled_from((1, -1)),
        st.sampled_from((1, -1)),
        premiums,  # the premium the traders open at
    ),
    steps=st.lists(ops, min_size=5, max_size=12),
)
def test_perp_market_matches_model(
    chain, venue, feeder, operator, liquidator, funded_traders, opening, steps
):
    # Not `chain.isolate()`: it swallows exceptions, so a failing example would pass.
    snapshot = chain.snapshot()
    try:
        h = PerpHarness(chain, venue, feeder, operator, list(funded_traders.values()))
        alice, bob = funded_traders["alice"], funded_traders["bob"]
        h.deposit(alice, opening[0])
        h.deposit(bob, opening[1])
        h.set_premium(opening[6])
        h.trade(alice, trade_size(h, alice, opening[2], opening[4]))
        h.trade(bob, trade_size(h, bob, opening[3], opening[5]))
        h.check()
        for step in steps:
            kind = step[0]
            who = funded_traders[step[1]] if len(step) > 1 and step[1] in TRADERS else None
            if kind == "rate":
                h.set_funding_rate(step[1])
            elif kind == "premium":
                h.set_premium(step[1])
                event(f"premium {'reverted' if isinstance(h.last_result, Exception) else 'set'}")
            elif kind == "warp":
                h.warp(step[1])
            elif kind == "price":
                h.set_price(max(E8, h.model.price_e8 * (10_000 + step[1]) // 10_000))
            elif kind == "deposit":
                h.deposit(who, step[2])
            elif kind == "withdraw":
                h.withdraw(who, step[2])
            elif kind in ("trade", "dust", "close"):
                if kind == "trade":
                    size = trade_size(h, who, step[2], step[3])
                elif kind == "dust":
                    size = step[2]
                else:
                    size = -h.model.account(who.address).size
                if size == 0:
                    continue
                h.trade(who, size)
                event(f"{kind} {'reverted' if isinstance(h.last_result, Exception) else 'executed'}")
            elif kind == "to_liquidation":
                price = liquidation_price(h, who)
                if price is None:
                    continue
                h.set_price(max(1, price + step[2]), dt=0)
                h.liquidate(who, liquidator)
                outcome = "reverted" if isinstance(h.last_result, Exception) else "executed"
                event(f"at threshold: liquidate {outcome}")
            elif kind == "premium_to_liquidation":
                premium = liquidation_premium(h, who)
                if premium is None:
                    continue
                h.set_premium(max(-MAX_PREMIUM, min(MAX_PREMIUM, premium + step[2])), dt=0)
                h.liquidate(who, liquidator)
                outcome = "reverted" if isinstance(h.last_result, Exception) else "executed"
                event(f"at premium threshold: liquidate {outcome}")
            elif kind == "liquidate":
                h.liquidate(who, liquidator)
                event(f"liquidate {'reverted' if isinstance(h.last_result, Exception) else 'executed'}")
            h.check()
    finally:
        chain.restore(snapshot)
