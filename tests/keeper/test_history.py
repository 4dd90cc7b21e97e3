"""History loaders: every format in ../shared/data, on small fixtures the project wrote
(tests/fixtures/history) and on the real files when ../shared/data is present."""

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keeper.data.files import HOUR, HistoryError, load_funding, load_prices, price_at

FIXTURES = Path(__file__).parent.parent / "fixtures" / "history"
DATA = Path(os.environ.get("BASIS_DATA_DIR", Path(__file__).parents[2] / ".." / "shared" / "data"))
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"reference data not found at {DATA} (set BASIS_DATA_DIR)"
)


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_funding__utc_plus_3_venue__shifted_sorted_deduplicated_and_reported():
    prints, report = load_funding(FIXTURES / "binance_eth_funding.csv")
    assert [p.time for p in prints] == [
        ts(t)
        for t in (
            "2020-01-01 00:00",
            "2020-01-01 08:00",
            "2020-01-01 16:00",
            "2020-01-02 00:00",
            "2020-01-02 08:00",
        )
    ]
    assert prints[0].rate == 0.0001 and prints[0].interval == 8 * HOUR
    assert prints[2].rate == 0.0003  # the out-of-order row, in its place
    assert report.utc_shift_hours == 3
    assert report.out_of_order == [ts("2020-01-01 16:00")]
    assert report.duplicates == [ts("2020-01-02 00:00")]
    assert report.rows == 5 and not report.irregular
    assert any("UTC+3" in line for line in report.summary())


def test_funding__utc_venue__gap_and_conflicting_duplicate_reported():
    prints, report = load_funding(FIXTURES / "gate_btc_funding.csv")
    assert prints[0].time == ts("2020-11-30 08:00") and report.utc_shift_hours == 0
    assert report.gaps == [(ts("2021-01-01 00:00"), ts("2021-01-01 00:00") - ts("2020-11-30 16:00"))]
    assert report.conflicting_duplicates == [ts("2021-01-01 08:00")]
    assert prints[-1].rate == 0.0001  # the first of the conflicting rows is kept
    summary = "\n".join(report.summary())
    assert "1 gaps; the longest 752 h" in summary and "different values" in summary


def test_funding__unknown_venue__asks_for_the_timezone():
    with pytest.raises(HistoryError, match=r"unknown venue 'acme'.*UTC offset"):
        load_funding(FIXTURES / "acme_btc_funding.csv")
    _, report = load_funding(FIXTURES / "acme_btc_funding.csv", utc_shift_hours=0)
    assert report.rows == 4


def test_funding__bitmex__daily_then_8h_intervals():
    prints, report = load_funding(FIXTURES / "bitmex_btc_funding.csv")
    assert [p.interval for p in prints] == [24 * HOUR, 24 * HOUR, 8 * HOUR, 8 * HOUR]
    assert prints[0].rate_per_hour == pytest.approx(6.9e-4 / 24)
    # 2016-05-15 12:00 -> 05-16 04:00 is 16 h against the new 8 h interval
    assert report.irregular == [(ts("2016-05-16 04:00"), 16 * HOUR)]
    assert any("rows of 24 h" in n for n in report.notes)


def test_funding__deribit__hourly_out_of_order_sorted():
    prints, report = load_funding(FIXTURES / "deribit_btc_funding_index_1h.csv")
    assert [p.rate for p in prints] == [0.0, -2.3e-05, 2.0e-05, 1.0e-05]
    # the epoch-ms column is the truth (its `time_dt` text is an hour ahead of UTC)
    assert report.out_of_order == [1556625600] and not report.irregular


def test_funding__hyperliquid_json__8h_then_hourly_missing_premium_ok():
    prints, report = load_funding(FIXTURES / "hyperliquid_fundingHistory_BTC.json")
    assert [p.interval for p in prints] == [8 * HOUR, 8 * HOUR, HOUR, HOUR]
    assert all(p.time % 60 == 0 for p in prints)
    # 0.01 %/8h before the switch is the same hourly rate as 0.00125 %/1h after it
    assert prints[2].rate_per_hour == pytest.approx(prints[1].rate_per_hour)
    assert not report.irregular and any("hourly after" in n for n in report.notes)


def test_funding__dydx_v4_json__newest_first_reversed():
    prints, report = load_funding(FIXTURES / "dydx_v4_historicalFunding_ETH-USD.json")
    assert [p.rate for p in prints] == [0.000000625, -0.000000375, 0.000002375]
    assert any("newest first" in n for n in report.notes)


def test_prices__bar_open_at_its_time_gap_reported():
    points, report = load_prices(FIXTURES / "binance_spot_ETHUSDT_8h.csv")
    assert [p.price for p in points] == [129.16, 130.24, 132.08, 131.50]
    assert report.interval == 8 * HOUR and report.gaps == [(ts("2020-01-02 08:00"), 16 * HOUR)]
    assert price_at(points, ts("2020-01-01 12:00")) == 130.24
    assert price_at(points, ts("2019-12-31 00:00")) == 129.16
    gecko, _ = load_prices(FIXTURES / "coingecko_ETH-USD_daily.csv")
    assert gecko[1].time == ts("2020-01-02 00:00")


@pytest.mark.parametrize(
    "loader,name,message",
    [
        (load_funding, "gate_malformed_funding.csv", r"gate_malformed_funding.csv:3: 'abc' is not a number"),
        (load_prices, "bad_price.csv", r"bad_price.csv:2: price '0' is not positive"),
        (load_prices, "gate_btc_funding.csv", "not a price series"),
        (load_funding, "coingecko_ETH-USD_daily.csv", "not a funding history"),
        (load_funding, "missing.csv", "no such file"),
    ],
)
def test_loaders__bad_files__one_clear_error(loader, name, message):
    with pytest.raises(HistoryError, match=message):
        loader(FIXTURES / name)


def test_loaders__json_not_a_history(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(HistoryError, match="not a Hyperliquid fundingHistory or dYdX v4"):
        load_funding(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("[{")
    with pytest.raises(HistoryError, match="not JSON"):
        load_funding(tmp_path / "y.json")


# ----------------------------------------------------------------------------- the real files


@needs_data
def test_real__binance_eth__matches_sources_md():
    prints, report = load_funding(DATA / "funding" / "binance_eth_funding.csv")
    assert report.rows == 4383 and not report.irregular and not report.duplicates
    assert (prints[0].time, prints[-1].time) == (ts("2020-01-01 00:00"), ts("2023-12-31 16:00"))
    by_year = {}
    for p in prints:
        year = datetime.fromtimestamp(p.time, UTC).year
        by_year[year] = by_year.get(year, 0) + p.rate
    # SOURCES.md: calendar-year simple sums 27.5 / 37.5 / 0.8 / 8.3 %
    assert [round(by_year[y] * 100, 1) for y in (2020, 2021, 2022, 2023)] == [27.5, 37.5, 0.8, 8.3]
    # the 8h spot bars line up one-to-one with the prints after the UTC shift
    spot, _ = load_prices(DATA / "prices" / "binance_spot_ETHUSDT_8h_2020-2023_DERIVED_from_4h.csv")
    assert [s.time for s in spot] == [p.time for p in prints]


@needs_data
def test_real__known_traps_are_reported():
    _, gate = load_funding(DATA / "funding" / "gate_btc_funding.csv")
    assert max(step for _, step in gate.gaps) == 752 * HOUR
    _, htx = load_funding(DATA / "funding" / "htx_btc_funding.csv")
    assert htx.irregular  # the 5/6/10 h steps
    _, deribit = load_funding(DATA / "funding" / "deribit_btc_funding_index_1h.csv")
    assert deribit.out_of_order or deribit.duplicates or deribit.conflicting_duplicates
    hl, hl_report = load_funding(DATA / "api" / "hyperliquid_fundingHistory_BTC_start1681923833000.json")
    assert hl_report.rows == 1038
    assert {p.interval for p in hl} == {HOUR, 8 * HOUR}
    _, spot4h = load_prices(DATA / "prices" / "binance_spot_BTCUSDT_4h_2020-2023.csv")
    assert spot4h.gaps == [(ts("2020-02-19 16:00"), 8 * HOUR)]  # the missing 12:00 bar


FUNDING_FILES = sorted(p.name for p in (DATA / "funding").glob("*_funding*.csv") if "perptrade" not in p.name)


@needs_data
@pytest.mark.parametrize("name", FUNDING_FILES)
def test_real__every_funding_file_loads(name):
    prints, report = load_funding(DATA / "funding" / name)
    assert report.rows > 1_000 and all(abs(p.rate) < 0.05 for p in prints)


def test_synthetic__seeded_plausible_and_switching_regimes():
    from keeper.data.files import synthetic_history

    prints, points = synthetic_history(seed=3, days=365)
    again, _ = synthetic_history(seed=3, days=365)
    assert prints == again and len(prints) == len(points) == 3 * 365
    assert [p.time for p in points] == [p.time - p.interval for p in prints]
    rates = [p.rate for p in prints]
    carry = sum(rates)  # simple yearly carry, per unit of exposure
    assert 0.0 < carry < 1.0 and min(rates) < 0 < max(rates)
    assert all(abs(r) <= 0.003 for r in rates) and all(p.price > 0 for p in points)
    assert synthetic_history(seed=4, days=30)[0] != synthetic_history(seed=3, days=30)[0]
