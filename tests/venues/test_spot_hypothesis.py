"""SpotPool over random swap / add / remove sequences, against `SpotPoolModel`.

Invariants after every step: the quote taken before a swap is exactly what it paid (its
`Swap` event and the trader's balance); the reserves match the model; k never decreases on a
swap; the value of one LP share (sqrt(k) / supply, compared exactly) never decreases; the pool
holds at least its reserves. The views each step checks are read in one JSON-RPC batch.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keeper.chain.abi import Call
from keeper.model.markets import SpotPoolModel
from tests.fixtures.chain import BatchReader
from tests.units import SOAK, USDC, WETH

ops = st.one_of(
    st.tuples(st.just("swap"), st.booleans(), st.integers(1, 10**6)),  # ppm of the input reserve
    st.tuples(st.just("swap"), st.booleans(), st.integers(1, 10**12)),  # dust, raw wei
    st.tuples(st.just("add"), st.integers(1, 10**6), st.integers(1, 10**6)),  # ppm of reserves
    st.tuples(st.just("remove"), st.integers(1, 10**6)),  # ppm of the trader's shares
)


@pytest.fixture(scope="module")
def small_pool(project, deployer, alice, usdc, weth):
    p = deployer.deploy(project.SpotPool, weth, usdc, 5)
    for who in (deployer, alice):
        for _ in range(3):
            usdc.mint(who, 1_000_000 * USDC, sender=who)
            weth.mint(who, 1_000 * WETH, sender=who)
        usdc.approve(p, 2**256 - 1, sender=who)
        weth.approve(p, 2**256 - 1, sender=who)
    p.add_liquidity(100 * WETH, 300_000 * USDC, 0, deployer, sender=deployer)
    return p


def read_pool(reader, pool, alice, usdc, weth):
    """Everything a step checks, in one batch at the head block."""
    p, a = pool.address, alice.address
    calls = [
        Call("reserves", p, "get_reserves()", (), ("uint256", "uint256")),
        Call("supply", p, "totalSupply()"),
        Call("pool_base", weth.address, "balanceOf(address)", (p,)),
        Call("pool_asset", usdc.address, "balanceOf(address)", (p,)),
        Call("alice_base", weth.address, "balanceOf(address)", (a,)),
        Call("alice_asset", usdc.address, "balanceOf(address)", (a,)),
        Call("alice_shares", p, "balanceOf(address)", (a,)),
    ]
    return dict(zip((c.name for c in calls), reader.read(calls)[1], strict=True))


# 20 histories in `make test` (`make soak` runs more): the pool has four operations
# on two reserves and one share supply, every step is compared to the model exactly, and
# test_spot_pool.py pins the edges (dust, rounding, bad arguments).
@settings(
    max_examples=20 * SOAK,  # `make soak`: more
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(steps=st.lists(ops, min_size=3, max_size=12))
def test_spot_pool_matches_model(chain, small_pool, alice, usdc, weth, steps):
    pool = small_pool
    reader = BatchReader(chain)
    snapshot = chain.snapshot()  # not chain.isolate(): it swallows assertion errors
    try:
        state = read_pool(reader, pool, alice, usdc, weth)
        model = SpotPoolModel(*state["reserves"], pool.fee_bps())
        for step in steps:
            k_before = model.reserve_base * model.reserve_asset
            supply_before = state["supply"]
            before = state
            if step[0] == "swap":
                _, base_in, amount = step
                r_in = model.reserve_base if base_in else model.reserve_asset
                amount_in = max(1, r_in * amount // 10**6) if amount <= 10**6 else amount
                token = weth if base_in else usdc
                quote = pool.get_amount_out(token, amount_in)
                assert quote == model.amount_out(base_in, amount_in)
                if quote == 0:
                    continue
                tx = pool.swap(token, amount_in, quote, alice, sender=alice)
                # What it paid: the event's amount (the variable `swap` returns) and the
                # trader's balance (read below), without tracing the call for its return.
                (swapped,) = tx.events.filter(pool.Swap)
                assert swapped.amount_out == quote == model.swap(base_in, amount_in, quote)
                assert model.reserve_base * model.reserve_asset >= k_before
            elif step[0] == "add":
                base_max = max(1, model.reserve_base * step[1] // 10**6)
                asset_max = max(1, model.reserve_asset * step[2] // 10**6)
                supply = supply_before
                shares = min(
                    base_max * supply // model.reserve_base, asset_max * supply // model.reserve_asset
                )
                if shares == 0:
                    continue
                pool.add_liquidity(base_max, asset_max, shares, alice, sender=alice)
                model.reserve_base += -(-shares * model.reserve_base // supply)
                model.reserve_asset += -(-shares * model.reserve_asset // supply)
            else:
                shares = state["alice_shares"] * step[1] // 10**6
                supply = supply_before
                if shares * model.reserve_base // supply == 0 or shares * model.reserve_asset // supply == 0:
                    continue
                pool.remove_liquidity(shares, 0, 0, alice, sender=alice)
                model.reserve_base -= shares * model.reserve_base // supply
                model.reserve_asset -= shares * model.reserve_asset // supply
            state = read_pool(reader, pool, alice, usdc, weth)
            if step[0] == "swap":
                got = (
                    state["alice_asset"] - before["alice_asset"]
                    if base_in
                    else state["alice_base"] - before["alice_base"]
                )
                assert got == quote
            assert state["reserves"] == (model.reserve_base, model.reserve_asset)
            # sqrt(k) / supply never decreases, compared exactly: k' * S^2 >= k * S'^2.
            k_after = model.reserve_base * model.reserve_asset
            assert k_after * supply_before**2 >= k_before * state["supply"] ** 2
            assert state["pool_base"] >= model.reserve_base
            assert state["pool_asset"] >= model.reserve_asset
    finally:
        chain.restore(snapshot)
