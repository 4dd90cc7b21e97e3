from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from keeper.bot.funding import estimate, estimate_venue, smooth
from keeper.data.hyperliquid import parse_funding_history
from keeper.data.records import FundingInfo, FundingPoint, FundingView
from tests.fixtures.data import recorded_json

NOW = datetime(2025, 1, 10, 12, tzinfo=UTC)
DAY = timedelta(hours=24)
HALF = Decimal("0.5")
AGE = timedelta(hours=2)


def info(rate: str, venue: str = "onchain", interval: int = 3_600, at: datetime = NOW) -> FundingInfo:
    return FundingInfo(venue, "ETH-USD", Decimal(rate), interval, None, None, None, at)


def point(hours_ago: float, rate: str, interval_h: int = 1) -> FundingPoint:
    r = Decimal(rate)
    return FundingPoint(NOW - timedelta(hours=hours_ago), r, r * interval_h, interval_h * 3_600)


def test_smooth__time_weighted__an_8h_print_weighs_eight_hourly_ones():
    # 8 h at 0.00001/h (one 8-hourly print), 16 hourly prints at 0, live rate 0 for 1 h
    history = (point(16, "0.00001", 8), *(point(h, "0") for h in range(15, -1, -1)))
    mean, coverage = smooth(FundingView(info("0"), history), NOW, DAY)
    assert coverage == 1
    assert mean == Decimal("0.00001") * 8 * 3_600 / (25 * 3_600)


def test_smooth__prints_partly_outside_the_window_count_only_inside():
    history = (point(20, "0.0001", 8),)  # covers 28 h .. 20 h ago: 4 h inside a 24 h window
    mean, coverage = smooth(FundingView(info("0", interval=1), history), NOW, DAY)
    assert coverage == Decimal(4) / 24
    assert mean == Decimal("0.0001") * 4 * 3_600 / (4 * 3_600 + 1)


def test_smooth__live_rate_alone():
    mean, coverage = smooth(FundingView(info("0.00003")), NOW, DAY)
    assert mean == Decimal("0.00003") and coverage == 0


def test_estimate_venue__stale_or_thin__not_usable():
    view = FundingView(
        info("0.00001", at=NOW - timedelta(hours=3)), tuple(point(h, "0.00001") for h in range(24))
    )
    stale = estimate_venue(view, NOW, DAY, HALF, AGE)
    assert not stale.usable and "old" in stale.note
    thin = estimate_venue(FundingView(info("0.00001"), (point(0, "0.00001"),)), NOW, DAY, HALF, AGE)
    assert not thin.usable and "cover 4% of the window" in thin.note


def _flat(venue: str, rate: str) -> FundingView:
    return FundingView(info(rate, venue), tuple(point(h, rate) for h in range(24)))


def test_estimate__lower_of_reference_and_median():
    views = [_flat("onchain", "0.00004"), _flat("hyperliquid", "0.00001"), _flat("dydx", "0.00002")]
    est = estimate(views, "onchain", NOW, DAY, HALF, AGE)
    assert est.consensus_rate_per_hour == Decimal("0.00002")
    assert est.expected_rate_per_hour == Decimal("0.00002")
    assert est.spread_per_hour == Decimal("0.00002")
    views[0] = _flat("onchain", "-0.00001")
    assert estimate(views, "onchain", NOW, DAY, HALF, AGE).expected_rate_per_hour == Decimal("-0.00001")


def test_estimate__reference_alone__is_the_expectation():
    est = estimate([_flat("onchain", "0.00003")], "onchain", NOW, DAY, HALF, AGE)
    assert est.expected_rate_per_hour == Decimal("0.00003") == est.consensus_rate_per_hour


@pytest.mark.parametrize(
    ("views", "note"),
    [
        ([_flat("hyperliquid", "0.00001")], "no view of the reference venue"),
        ([FundingView(info("0.00001")), _flat("hyperliquid", "0.00001")], "reference venue unusable"),
    ],
)
def test_estimate__without_a_usable_reference__unknown(views, note):
    est = estimate(views, "onchain", NOW, DAY, HALF, AGE)
    assert est.expected_rate_per_hour is None and note in est.note


def test_estimate__on_recorded_hyperliquid_history_across_the_switch():
    points = parse_funding_history(
        recorded_json("hyperliquid_fundingHistory_BTC_start1681923833000.json"), "BTC"
    )
    at = datetime(2023, 6, 8, 12, tzinfo=UTC)  # the window holds 8-hourly and hourly prints
    past = tuple(p for p in points if p.time <= at)
    view = FundingView(info(str(past[-1].rate_per_hour), "hyperliquid", at=at), past)
    mean, coverage = smooth(view, at, DAY)
    assert coverage > Decimal("0.95")  # 23 of 24 hours: the 12:00 print lands a few ms after noon
    # the same figure by hand: each print's hourly rate times the hours of it inside the window
    start = at - DAY
    total = sum(
        p.rate_per_hour
        * Decimal(
            (min(p.time, at) - max(p.time - timedelta(seconds=p.interval_seconds), start)).total_seconds()
        )
        for p in past
        if p.time > start
    )
    seconds = sum(
        Decimal(
            (min(p.time, at) - max(p.time - timedelta(seconds=p.interval_seconds), start)).total_seconds()
        )
        for p in past
        if p.time > start
    )
    assert mean == (total + view.info.rate_per_hour * 3_600) / (seconds + 3_600)
    assert Decimal("0") < mean < Decimal("0.0001")
