from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from keeper.core.errors import SourceError
from keeper.data.dydx import parse_historical_funding, parse_perpetual_markets
from tests.fixtures.data import fixture_json, mutated, recorded_json

NOW = datetime(2025, 12, 9, 12, 5, tzinfo=UTC)


# --------------------------------------------------------------- perpetualMarkets


def test_perpetual_markets__fixture__hourly_rate_and_oracle_price():
    info = parse_perpetual_markets(fixture_json("dydx_perpetualMarkets.json"), "BTC-USD", NOW)
    assert info.venue == "dydx" and info.market == "BTC-USD"
    assert info.rate_per_hour == Decimal("0.0000095") and info.interval_seconds == 3_600
    assert info.index_price == Decimal("97012.34")
    assert info.mark_price is None and info.basis is None  # the indexer gives no mark
    assert info.next_funding_time == datetime(2025, 12, 9, 13, tzinfo=UTC)


def test_perpetual_markets__negative_rate():
    info = parse_perpetual_markets(fixture_json("dydx_perpetualMarkets.json"), "ETH-USD", NOW)
    assert info.rate_per_hour == Decimal("-0.0000021")


def test_perpetual_markets__not_active__refused():
    with pytest.raises(SourceError, match="status is 'FINAL_SETTLEMENT', not ACTIVE"):
        parse_perpetual_markets(fixture_json("dydx_perpetualMarkets.json"), "LUNA-USD", NOW)


def test_recorded_perpetual_markets():
    body = recorded_json("dydx_v4_perpetualMarkets_BTC-USD_ccxt_static.json")
    info = parse_perpetual_markets(body, "BTC-USD", NOW)
    assert info.rate_per_hour == Decimal("0.00016451111111111111")
    assert info.index_price == Decimal("118700.5426")


def _markets_with(mutate):
    return mutated("dydx_perpetualMarkets.json", mutate, "markets", "BTC-USD")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "response must be an object"),
        ({}, "response.markets missing"),
        ({"markets": []}, "markets must be an object"),
        ({"markets": {}}, "markets.BTC-USD missing"),
        (_markets_with(lambda m: m.pop("status")), "markets.BTC-USD.status missing"),
        (_markets_with(lambda m: m.pop("nextFundingRate")), "markets.BTC-USD.nextFundingRate missing"),
        (_markets_with(lambda m: m.__setitem__("nextFundingRate", None)), "nextFundingRate is null"),
        (
            _markets_with(lambda m: m.__setitem__("nextFundingRate", "1e-5%")),
            "nextFundingRate is not numeric",
        ),
        (_markets_with(lambda m: m.__setitem__("nextFundingRate", {})), "nextFundingRate must be a number"),
        (_markets_with(lambda m: m.__setitem__("oraclePrice", "-3")), "index price must be positive"),
        (_markets_with(lambda m: m.__setitem__("nextFundingRate", "0.2")), r"\|rate\| 0.2/h above"),
    ],
)
def test_perpetual_markets__malformed__refused_with_reason(body, reason):
    with pytest.raises(SourceError, match=reason):
        parse_perpetual_markets(body, "BTC-USD", NOW)


def test_perpetual_markets__null_oracle__none():
    info = parse_perpetual_markets(
        _markets_with(lambda m: m.__setitem__("oraclePrice", None)), "BTC-USD", NOW
    )
    assert info.index_price is None


# ---------------------------------------------------------------- historicalFunding


def test_historical_funding__fixture__newest_first_becomes_oldest_first():
    points = parse_historical_funding(fixture_json("dydx_historicalFunding.json"), "ETH-USD")
    assert [p.time.hour for p in points] == [10, 11, 12]
    assert [p.rate_per_hour for p in points] == [
        Decimal("0.0000041"),
        Decimal("-0.0000013"),
        Decimal("0.0000052"),
    ]
    assert all(p.interval_seconds == 3_600 and p.native_rate == p.rate_per_hour for p in points)
    assert points[0].price == Decimal("3592.05")


def test_historical_funding__wrapped__same_rows():
    wrapped = parse_historical_funding(fixture_json("dydx_historicalFunding_wrapped.json"), "ETH-USD")
    plain = parse_historical_funding(fixture_json("dydx_historicalFunding.json"), "ETH-USD")
    assert wrapped == plain[1:]


def test_historical_funding__failed_wrapper__refused():
    body = fixture_json("dydx_historicalFunding_wrapped.json")
    body["status"] = "error"
    with pytest.raises(SourceError, match="wrapped response has status 'error'"):
        parse_historical_funding(body, "ETH-USD")


def test_recorded_historical_funding__nautilus__newest_first():
    points = parse_historical_funding(
        recorded_json("dydx_v4_historicalFunding_BTC-USD_nautilus.json"), "BTC-USD"
    )
    assert [p.time for p in points] == [
        datetime(2025, 12, 8, 14, 0, 0, 112_000, tzinfo=UTC),
        datetime(2025, 12, 8, 15, 0, 0, 586_000, tzinfo=UTC),
        datetime(2025, 12, 8, 16, 0, 0, 219_000, tzinfo=UTC),
    ]
    assert points[-1].rate_per_hour == Decimal("0.000002375")


def test_recorded_historical_funding__wrapped_equals_raw_body():
    raw = parse_historical_funding(
        recorded_json("dydx_v4_historicalFunding_BTC-USD_nautilus.json"), "BTC-USD"
    )
    wrapped_body = recorded_json("dydx_v4_historicalFunding_BTC-USD_nautilus_wrapped.json")
    recorded_at = datetime.fromisoformat(wrapped_body["isoTimestamp"].replace("Z", "+00:00"))
    assert parse_historical_funding(wrapped_body, "BTC-USD", now=recorded_at) == raw
    with pytest.raises(SourceError, match="BTC-USD history is stale"):
        parse_historical_funding(wrapped_body, "BTC-USD", now=recorded_at + timedelta(hours=4))


def test_recorded_historical_funding__ccxt__hot_market_still_hourly():
    # 1.76e-4/h (a hot July 2025 market, ~100x the December sample): hourly, within bounds.
    (point,) = parse_historical_funding(
        recorded_json("dydx_v4_historicalFunding_BTC-USD_ccxt_static.json"), "BTC-USD"
    )
    assert point.rate_per_hour == Decimal("0.000176") and point.price == Decimal("118536.67532")


def _hist_with(mutate):
    return mutated("dydx_historicalFunding.json", mutate, "historicalFunding")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"historicalFunding": {}}, "historicalFunding must be a list"),
        ({"funding": []}, "response.historicalFunding missing"),
        (_hist_with(lambda r: r.__setitem__(0, [])), r"historicalFunding\[0\] must be an object"),
        (_hist_with(lambda r: r[0].pop("rate")), r"historicalFunding\[0\].rate missing"),
        (
            _hist_with(lambda r: r[0].__setitem__("rate", "abc")),
            r"historicalFunding\[0\].rate is not numeric",
        ),
        (
            _hist_with(lambda r: r[1].__setitem__("ticker", "BTC-USD")),
            "ticker is 'BTC-USD', asked for 'ETH-USD'",
        ),
        (_hist_with(lambda r: r[1].pop("effectiveAt")), r"historicalFunding\[1\].effectiveAt must be an ISO"),
        (_hist_with(lambda r: r[1].__setitem__("effectiveAt", "yesterday")), "is not an ISO timestamp"),
        (_hist_with(lambda r: r[1].__setitem__("effectiveAt", "2025-12-09T11:00:00")), "has no timezone"),
        (_hist_with(lambda r: r[1].__setitem__("effectiveAtHeight", "7e7")), "is not a block height"),
        (
            _hist_with(lambda r: r[1].__setitem__("effectiveAtHeight", "80000000")),
            "heights disagree with times",
        ),
        (_hist_with(lambda r: r[2].__setitem__("price", "0")), r"history\[0\] price must be positive"),
        (_hist_with(lambda r: r[2].__setitem__("rate", "0.03")), r"\|rate\| 0.03/h above"),
    ],
)
def test_historical_funding__malformed__refused_with_reason(body, reason):
    with pytest.raises(SourceError, match=reason):
        parse_historical_funding(body, "ETH-USD")


def test_historical_funding__empty__no_prints():
    assert parse_historical_funding({"historicalFunding": []}, "ETH-USD") == ()
