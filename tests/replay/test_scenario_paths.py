"""The new scenarios' market paths and the asset feed's schedule, without running a replay."""

from __future__ import annotations

from datetime import UTC, datetime

from keeper.replay.driver import ASSET_FEED_REFRESH, MarketStep, with_asset_pushes
from keeper.replay.scenarios import (
    DEPEG_START,
    LIQ_DOWN_FROM,
    LIQ_DOWN_HOURS,
    LIQ_JUMP_HOUR,
    SCENARIOS,
    START,
    usdc_march_2023,
)

HOUR = 3_600
E8 = 10**8


def test_asset_feed__pushed_on_every_move_and_at_least_every_6_hours() -> None:
    steps = [MarketStep(START + h * HOUR, 3_000 * E8, 0, HOUR) for h in range(20)]
    steps[9] = MarketStep(START + 9 * HOUR, 3_000 * E8, 0, HOUR, asset_price_e8=99_000_000)
    pushed = [s.time for s in with_asset_pushes(steps, START) if s.push_asset]
    # 6 h after deploy; the move at 9 h and the return at 10 h; then 6 h after that
    assert pushed == [START + h * HOUR for h in (6, 9, 10, 16)]
    gaps = [b - a for a, b in zip([START, *pushed], pushed, strict=False)]
    assert max(gaps) <= ASSET_FEED_REFRESH


def test_depeg__usdc_march_2023_path() -> None:
    assert datetime.fromtimestamp(DEPEG_START, UTC) == datetime(2023, 3, 10, tzinfo=UTC)
    hourly = [usdc_march_2023(h) for h in range(24 * 4)]
    low = min(hourly)
    assert low == 0.88 and hourly.index(low) == 32  # 11 March 08:00 UTC
    assert hourly[0] == 1.0 and abs(hourly[24 * 3 + 18] - 1.0) < 1e-9  # back by 13 March
    steps = SCENARIOS["depeg"].steps()
    assert min(s.asset_price_e8 for s in steps) == 88_000_000
    assert all(s.probe for s in steps if s.asset_price_e8 != E8)
    assert steps[0].time == DEPEG_START - 48 * HOUR


def test_liquidation__keeper_down_across_a_jump_past_the_shorts_bankruptcy() -> None:
    steps = SCENARIOS["liquidation"].steps()
    down = [h for h, s in enumerate(steps) if not s.keeper]
    assert down == list(range(LIQ_DOWN_FROM, LIQ_DOWN_FROM + LIQ_DOWN_HOURS))
    before, after = steps[LIQ_JUMP_HOUR - 1].price_e8, steps[LIQ_JUMP_HOUR].price_e8
    # hedged 2x the margin ratio is 50 %: a +50 % move leaves no equity; this is +60 %
    assert after * 10 == before * 16
    assert steps[-1].price_e8 == steps[0].price_e8
