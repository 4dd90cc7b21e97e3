from datetime import UTC, datetime
from decimal import Decimal

import pytest

from keeper.core.errors import SourceError
from keeper.core.fixed import MAX_FUNDING_RATE
from keeper.data.onchain import history_from_rate_updates, onchain_funding_info, rate_per_hour_from_chain
from keeper.model.markets import rate_per_second

T0 = 1_765_000_000


def test_rate_per_hour__exact_conversion():
    assert rate_per_hour_from_chain(27_777_777_777) == Decimal("0.0000999999999972")
    assert rate_per_hour_from_chain(-(10**14)) == Decimal("-0.36")
    assert rate_per_hour_from_chain(0) == 0
    # the venue model's own conversion round-trips within one unit of the 1e18/s grid
    assert abs(rate_per_hour_from_chain(rate_per_second(0.0001)) - Decimal("0.0001")) < Decimal("4e-15")


def test_onchain_info__from_read_values():
    info = onchain_funding_info(
        funding_rate=27_777_777_777,
        index_price_e8=3_000 * 10**8,
        mark_price_e8=3_000_12345678,
        block_timestamp=T0,
    )
    assert info.venue == "onchain" and info.market == "ETH-USD"
    assert info.rate_per_hour == Decimal("0.0000999999999972")
    assert info.index_price == Decimal(3000) and info.mark_price == Decimal("3000.12345678")
    assert info.interval_seconds == 1 and info.next_funding_time is None
    assert info.observed_at == datetime.fromtimestamp(T0, tz=UTC)


def test_onchain_info__mark_optional():
    info = onchain_funding_info(funding_rate=-5, index_price_e8=1, mark_price_e8=None, block_timestamp=T0)
    assert info.mark_price is None and info.rate_per_hour < 0


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"funding_rate": MAX_FUNDING_RATE + 1}, "beyond the market's bound"),
        ({"index_price_e8": 0}, "index price must be positive"),
        ({"mark_price_e8": -1}, "mark price must be positive"),
        ({"now": datetime.fromtimestamp(T0 + 3 * 3_600, tz=UTC)}, "reading is stale"),
        ({"funding_rate": 10**13}, r"\|rate\| 0.036/h above the 0.01/h bound"),
    ],
)
def test_onchain_info__bad_values__refused(kwargs, reason):
    args = dict(funding_rate=1, index_price_e8=10**11, mark_price_e8=None, block_timestamp=T0) | kwargs
    with pytest.raises(SourceError, match=reason):
        onchain_funding_info(**args)


def test_history__step_function_into_prints():
    points = history_from_rate_updates(
        100, T0, [(T0 + 600, -50), (T0 + 600, 70), (T0 + 4_200, 0)], T0 + 7_200
    )
    assert [(p.interval_seconds, p.native_rate * 10**18) for p in points] == [
        (600, 100),
        (3_600, 70),
        (3_000, 0),
    ]
    assert points[-1].time == datetime.fromtimestamp(T0 + 7_200, tz=UTC)
    assert points[0].rate_per_hour == rate_per_hour_from_chain(100)


def test_history__no_updates__one_print():
    (point,) = history_from_rate_updates(27_777_777_777, T0, [], T0 + 3_600)
    assert point.interval_seconds == 3_600


@pytest.mark.parametrize(
    ("updates", "reason"),
    [
        ([(T0 + 10, 1), (T0 + 5, 2)], "out of order"),
        ([(T0 - 1, 1)], "outside the span"),
        ([(T0 + 10, MAX_FUNDING_RATE * 2)], "beyond the market's bound"),
    ],
)
def test_history__bad_updates__refused(updates, reason):
    with pytest.raises(SourceError, match=reason):
        history_from_rate_updates(0, T0, updates, T0 + 100)


def test_history__empty_span__refused():
    with pytest.raises(SourceError, match="empty span"):
        history_from_rate_updates(0, T0, [], T0)
