"""The full-range Uniswap v3 model and the v3 price math the deploy uses (no chain: the
chain tests hold both to the real pool, tests/venues/test_uniswap_v3_spot.py and
tests/replay/test_chain_replay_uniswap_v3.py)."""

from keeper.core.rules import VenueParams
from keeper.model.markets import SpotPoolModel, UniswapV3FullRangeModel
from keeper.ops.uniswap_v3 import range_ticks, sqrt_price_x96, sqrt_ratio_at_tick, tick_at_sqrt_ratio


def test_v3_model__quotes_as_x_y_but_the_fee_stays_out_of_the_curve():
    v = VenueParams()
    ref = SpotPoolModel.seeded(v, v.price_e8)
    v3 = UniswapV3FullRangeModel.seeded(v, v.price_e8)
    k = v3.reserve_base * v3.reserve_asset
    assert v3.amount_out(False, 3_000 * 10**6) == ref.amount_out(False, 3_000 * 10**6)  # same curve
    for base_in, amount in ((False, 3_000_000 * 10**6), (True, 1_000 * 10**18), (False, 10**6)):
        assert v3.swap(base_in, amount) > 0 and ref.swap(base_in, amount) > 0
    # v2 keeps the fee in its reserves (k grows); v3 pays it to the position (L stays put,
    # but for the output's rounding down, which leaves the curve a hair above k)
    assert ref.reserve_base * ref.reserve_asset > v3.reserve_base * v3.reserve_asset >= k
    assert (v3.reserve_base * v3.reserve_asset - k) * 10**12 < k


def test_v3_price_math__sqrt_price_and_ranges():
    # 3,000 USDC (6 decimals) per WETH (18) with USDC as token0: 1e12 / 3e9 WETH wei per USDC wei
    sqrt_x96 = sqrt_price_x96(3_000 * 10**8, 18, 6, base_is_token0=False)
    assert abs(sqrt_x96**2 * 3_000 * 10**6 // 2**192 - 10**18) < 10**9
    tick = tick_at_sqrt_ratio(sqrt_x96)
    assert sqrt_ratio_at_tick(tick) <= sqrt_x96 < sqrt_ratio_at_tick(tick + 1)
    lower, upper = range_ticks(3_000 * 10**8, 500, 500, 18, 6, base_is_token0=False)
    assert lower % 10 == upper % 10 == 0 and lower < tick < upper
    assert 900 < upper - lower < 1_100  # +/- 5 % is ~ +/- 488 ticks
