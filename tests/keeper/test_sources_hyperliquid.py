import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from keeper.core.errors import SourceError
from keeper.data.hyperliquid import (
    HOURLY_SINCE,
    native_interval_at,
    parse_all_dexs_asset_ctxs,
    parse_funding_history,
    parse_meta_and_asset_ctxs,
)
from keeper.data.records import Limits
from tests.fixtures.data import fixture_json, mutated, recorded_json

NOW = datetime(2025, 12, 9, 12, 20, 5, tzinfo=UTC)


# ----------------------------------------------------------------- metaAndAssetCtxs


def test_meta_and_asset_ctxs__fixture__btc_reading():
    info = parse_meta_and_asset_ctxs(fixture_json("hyperliquid_metaAndAssetCtxs.json"), "BTC", NOW)
    assert info.venue == "hyperliquid" and info.market == "BTC"
    assert info.rate_per_hour == Decimal("0.0000125")
    assert info.interval_seconds == 3_600
    assert info.mark_price == Decimal("97020.0") and info.index_price == Decimal("97000.0")
    assert info.next_funding_time == datetime(2025, 12, 9, 13, tzinfo=UTC)
    assert info.observed_at == NOW
    assert info.basis == (Decimal("97020.0") - Decimal("97000.0")) / Decimal("97000.0")


def test_meta_and_asset_ctxs__negative_funding__kept_signed():
    info = parse_meta_and_asset_ctxs(fixture_json("hyperliquid_metaAndAssetCtxs.json"), "ETH", NOW)
    assert info.rate_per_hour == Decimal("-0.0000031")


def test_meta_and_asset_ctxs__null_mark__none_not_guessed():
    info = parse_meta_and_asset_ctxs(fixture_json("hyperliquid_metaAndAssetCtxs.json"), "SOL", NOW)
    assert info.mark_price is None and info.index_price == Decimal("181.2") and info.basis is None


def test_meta_and_asset_ctxs__delisted__refused():
    with pytest.raises(SourceError, match="MATIC is delisted"):
        parse_meta_and_asset_ctxs(fixture_json("hyperliquid_metaAndAssetCtxs.json"), "MATIC", NOW)


def test_meta_and_asset_ctxs__unknown_coin__refused():
    with pytest.raises(SourceError, match=r"DOGE not in meta\.universe"):
        parse_meta_and_asset_ctxs(fixture_json("hyperliquid_metaAndAssetCtxs.json"), "DOGE", NOW)


def _with(mutate):
    return mutated("hyperliquid_metaAndAssetCtxs.json", mutate)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "metaAndAssetCtxs must be a list"),
        ([], r"must be \[meta, assetCtxs\], got 0"),
        (_with(lambda b: b.pop()), r"must be \[meta, assetCtxs\], got 1"),
        (_with(lambda b: b[0].pop("universe")), "meta.universe must be a list"),
        (_with(lambda b: b[0]["universe"][0].pop("name")), r"meta.universe\[0\].name missing"),
        (_with(lambda b: b[1].pop()), "assetCtxs has 3 entries for a universe of 4"),
        (_with(lambda b: b[1].__setitem__(0, "ctx")), r"assetCtxs\[0\] must be an object"),
        (_with(lambda b: b[1][0].pop("funding")), r"assetCtxs\[0\].funding missing"),
        (_with(lambda b: b[1][0].__setitem__("funding", None)), r"assetCtxs\[0\].funding is null"),
        (_with(lambda b: b[1][0].__setitem__("funding", "n/a")), r"assetCtxs\[0\].funding is not numeric"),
        (_with(lambda b: b[1][0].__setitem__("funding", "NaN")), r"assetCtxs\[0\].funding is not finite"),
        (_with(lambda b: b[1][0].__setitem__("funding", True)), r"assetCtxs\[0\].funding must be a number"),
        (_with(lambda b: b[1][0].__setitem__("funding", ["1"])), r"assetCtxs\[0\].funding must be a number"),
        (_with(lambda b: b[1][0].pop("markPx")), r"assetCtxs\[0\].markPx missing"),
        (_with(lambda b: b[1][0].__setitem__("oraclePx", "0")), "index price must be positive"),
        (_with(lambda b: b[1][0].__setitem__("markPx", "-1")), "mark price must be positive"),
        (_with(lambda b: b[1][0].__setitem__("funding", "0.05")), r"\|rate\| 0.05/h above the 0.01/h bound"),
    ],
)
def test_meta_and_asset_ctxs__malformed__refused_with_reason(body, reason):
    with pytest.raises(SourceError, match=reason) as err:
        parse_meta_and_asset_ctxs(body, "BTC", NOW)
    assert err.value.venue == "hyperliquid"


def test_meta_and_asset_ctxs__rate_bound_is_configurable():
    body = _with(lambda b: b[1][0].__setitem__("funding", "0.05"))
    info = parse_meta_and_asset_ctxs(body, "BTC", NOW, Limits(max_abs_rate_per_hour=Decimal("0.1")))
    assert info.rate_per_hour == Decimal("0.05")


# ------------------------------------------------------- recorded asset contexts


def test_recorded_ws_asset_ctxs__btc_negative_funding():
    meta = recorded_json("hyperliquid_meta_2023-07-17.json")
    message = recorded_json("hyperliquid_ws_allDexsAssetCtxs_EXCERPT_first4.json")
    info = parse_all_dexs_asset_ctxs(message, meta, "BTC", NOW)
    assert info.rate_per_hour == Decimal("-0.0000015186")
    assert info.mark_price == Decimal("77562.0") and info.index_price == Decimal("77605.0")
    assert info.basis is not None and info.basis < 0


def test_recorded_ws_asset_ctxs__inactive_market_with_null_premium__parses():
    meta = recorded_json("hyperliquid_meta_2023-07-17.json")
    message = recorded_json("hyperliquid_ws_allDexsAssetCtxs_EXCERPT_first4.json")
    # universe index 3 (MATIC): premium, midPx and impactPxs are null, funding 0
    info = parse_all_dexs_asset_ctxs(message, meta, "MATIC", NOW)
    assert info.rate_per_hour == 0 and info.index_price == Decimal("0.3754")


def test_recorded_ws_asset_ctxs__coin_beyond_the_excerpt__refused():
    meta = recorded_json("hyperliquid_meta_2023-07-17.json")
    message = recorded_json("hyperliquid_ws_allDexsAssetCtxs_EXCERPT_first4.json")
    with pytest.raises(SourceError, match=r"no context at index 4 \(DYDX\)"):
        parse_all_dexs_asset_ctxs(message, meta, "DYDX", NOW)
    with pytest.raises(SourceError, match="no contexts for dex 'xyz'"):
        parse_all_dexs_asset_ctxs(message, meta, "BTC", NOW, dex="xyz")


def test_recorded_meta_with_excerpt_ctxs__length_mismatch_refused():
    # The 28-asset universe next to a 4-context excerpt is a truncated answer.
    meta = recorded_json("hyperliquid_meta_2023-07-17.json")
    ctxs = recorded_json("hyperliquid_ws_allDexsAssetCtxs_EXCERPT_first4.json")["data"]["ctxs"][0][1]
    with pytest.raises(SourceError, match="assetCtxs has 4 entries for a universe of 28"):
        parse_meta_and_asset_ctxs([meta, ctxs], "BTC", NOW)


def test_ws_message__wrong_channel__refused():
    meta = fixture_json("hyperliquid_metaAndAssetCtxs.json")[0]
    with pytest.raises(SourceError, match="not 'allDexsAssetCtxs'"):
        parse_all_dexs_asset_ctxs({"channel": "trades", "data": {}}, meta, "BTC", NOW)


# ------------------------------------------------------------------ fundingHistory


def test_funding_history__fixture__8h_rows_divided_hourly_rows_kept():
    points = parse_funding_history(fixture_json("hyperliquid_fundingHistory_switch.json"), "ETH")
    assert [p.interval_seconds for p in points] == [28_800] * 3 + [3_600] * 3
    assert points[1].native_rate == Decimal("-0.00008")
    assert points[1].rate_per_hour == Decimal("-0.00001")
    # 0.01 %/8h before the switch is the same 0.00125 %/h after it
    assert points[2].rate_per_hour == points[3].rate_per_hour == Decimal("0.0000125")
    assert points[5].rate_per_hour == Decimal("-0.0000043")  # the row without premium
    assert points[0].time == datetime(2023, 6, 7, 8, 0, 0, 31_000, tzinfo=UTC)


def test_funding_history__interval_from_the_calendar():
    assert native_interval_at(HOURLY_SINCE - timedelta(seconds=1)) == 28_800
    assert native_interval_at(HOURLY_SINCE) == 3_600


def test_recorded_funding_history__crosses_the_8h_to_1h_switch():
    rows = recorded_json("hyperliquid_fundingHistory_BTC_start1681923833000.json")
    points = parse_funding_history(rows, "BTC")
    assert len(points) == len(rows) == 1_038
    assert all(a.time < b.time for a, b in itertools.pairwise(points))
    last_8h = max(i for i, p in enumerate(points) if p.interval_seconds == 28_800)
    assert points[last_8h].time.replace(microsecond=0) == datetime(2023, 6, 8, tzinfo=UTC)
    assert points[last_8h + 1].time.replace(microsecond=0) == datetime(2023, 6, 8, 1, tzinfo=UTC)
    assert all(p.interval_seconds == 3_600 for p in points[last_8h + 1 :])
    # the baseline 0.01 %/8h and 0.00125 %/h are the same hourly rate either side
    assert points[last_8h].rate_per_hour == points[last_8h + 1].rate_per_hour == Decimal("0.0000125")
    # every row is an exact per-hour normalisation of the venue's own figure
    for p in points:
        assert p.rate_per_hour * p.interval_seconds == p.native_rate * 3_600


def test_recorded_funding_history__fresh_at_recording_time_stale_a_day_later():
    rows = recorded_json("hyperliquid_fundingHistory_BTC_start1681923833000.json")
    recorded_at = datetime(2023, 7, 17, 21, 43, tzinfo=UTC)
    assert parse_funding_history(rows, "BTC", now=recorded_at)[-1].time < recorded_at
    with pytest.raises(SourceError, match="BTC history is stale"):
        parse_funding_history(rows, "BTC", now=recorded_at + timedelta(days=1))


def test_recorded_funding_history__8h_era_window():
    rows = recorded_json("hyperliquid_fundingHistory_BTC_start1681923833000_end1684811870000.json")
    points = parse_funding_history(rows, "BTC")
    assert len(points) == 34 and all(p.interval_seconds == 28_800 for p in points)
    assert points[0].rate_per_hour == Decimal("-0.00061334") / 8


def test_recorded_funding_history__row_without_premium():
    rows = recorded_json("hyperliquid_fundingHistory_BTC_nautilus_3rows_missing_premium.json")
    assert "premium" not in rows[2]
    points = parse_funding_history(rows, "BTC")
    assert [p.rate_per_hour for p in points] == [
        Decimal("0.0000125"),
        Decimal("-0.0000081"),
        Decimal("0.0000033"),
    ]


def _hist_with(mutate):
    return mutated("hyperliquid_fundingHistory_switch.json", mutate)


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ({"rows": []}, "fundingHistory must be a list"),
        (_hist_with(lambda r: r.__setitem__(1, None)), r"fundingHistory\[1\] must be an object"),
        (_hist_with(lambda r: r[0].pop("fundingRate")), r"fundingHistory\[0\].fundingRate missing"),
        (
            _hist_with(lambda r: r[0].__setitem__("fundingRate", "")),
            r"fundingHistory\[0\].fundingRate is not numeric",
        ),
        (
            _hist_with(lambda r: r[0].__setitem__("premium", "high")),
            r"fundingHistory\[0\].premium is not numeric",
        ),
        (
            _hist_with(lambda r: r[2].__setitem__("time", "1686182400254")),
            r"fundingHistory\[2\].time must be integer",
        ),
        (_hist_with(lambda r: r[2].__setitem__("time", -5)), r"fundingHistory\[2\].time must be positive"),
        (_hist_with(lambda r: r[2].pop("time")), r"fundingHistory\[2\].time must be integer"),
        (
            _hist_with(lambda r: r[3].__setitem__("coin", "BTC")),
            r"fundingHistory\[3\].coin is 'BTC', asked for 'ETH'",
        ),
        (_hist_with(lambda r: r[4].__setitem__("time", r[3]["time"])), "two prints at"),
        (_hist_with(lambda r: r[4].__setitem__("fundingRate", "-0.02")), r"\|rate\| -0.02/h above"),
    ],
)
def test_funding_history__malformed__refused_with_reason(rows, reason):
    with pytest.raises(SourceError, match=reason):
        parse_funding_history(rows, "ETH")


def test_funding_history__empty__no_prints():
    assert parse_funding_history([], "ETH") == ()


def test_funding_history__out_of_order_rows__sorted():
    rows = list(reversed(fixture_json("hyperliquid_fundingHistory_switch.json")))
    points = parse_funding_history(rows, "ETH")
    assert [p.time for p in points] == sorted(p.time for p in points)
