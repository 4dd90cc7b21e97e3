"""The report's trade and basis figures, and the charts: on hand-built results (known
answers) and on short synthetic runs (checked against a computation of their own)."""

from __future__ import annotations

import json
import statistics
from dataclasses import replace

import pytest
from click.testing import CliRunner

from keeper.cli.keeper import cli
from keeper.data.files import synthetic_history
from keeper.replay.charts import DELTA_MIN_SPAN_BPS, FILES, _series, no_local_paths, thin, write_charts
from keeper.replay.driver import Costs, Fill, Liquidation, ReplayConfig, ReplayResult, Step, Swap, Trade
from keeper.replay.exact import run_model
from keeper.replay.report import basis_spread, build_report, cost_basis, entry_basis, table, to_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = 1_700_000_000
E18 = 10**18
E8 = 10**8
USDC = 10**6


def _step(t: int, price: float, pool: float, parked: bool = False) -> Step:
    return Step(
        time=t,
        price_e8=round(price * E8),
        funding_rate_per_hour=0.000_01,
        expected_per_hour=None,
        action="hold",
        reason="",
        nav=1_000_000 * USDC,
        share_price=1.0,
        margin_ratio_bps=None if parked else 5_000,
        delta_bps=0,
        parked=parked,
        pool_price_before_arb_e8=round(pool * E8),
    )


def _result(trades: list[Trade], steps: list[Step] | None = None) -> ReplayResult:
    steps = steps or [_step(T0, 2_000.0, 2_000.0)]
    nav = 1_000_000 * USDC
    supply = nav * 10**6  # DECIMALS_OFFSET 6: share price 1.0
    return ReplayResult(
        config=ReplayConfig(),
        mode="model",
        steps=steps,
        costs=Costs(),
        trades=trades,
        start=steps[0].time,
        end=steps[-1].time + 8 * 3_600,
        nav_start=nav,
        nav_end=nav,
        net_nav_end=nav,
        supply_start=supply,
        supply_end=supply,
        carry_growth=1.0,
        carry_simple=0.0,
        rebalances={},
        reverts=[],
        liquidations=[],
        capped_prints=0,
        parked_seconds=0,
        reports=[],
        notes=[],
        seconds=0.0,
    )


def _buy(base: float, price: float) -> Swap:
    """The vault buys `base` whole units at `price` asset units each (asset in)."""
    return Swap(False, round(base * price * USDC), round(base * E18))


def _sell_perp(base: float, price: float, index: float) -> Fill:
    return Fill(-round(base * E18), round(price * E8), round(index * E8), 0)


HAND_TRADES = [
    Trade(T0, "enter", 2_000 * E8, (_buy(10, 2_002),), (_sell_perp(10, 1_999, 2_000),), 0),
    # selling spot and buying the short back are not part of the cost basis
    Trade(
        T0 + 100,
        "margin_thin",
        2_100 * E8,
        (Swap(True, 2 * E18, 4_190 * USDC),),
        (Fill(2 * E18, 2_101 * E8, 2_100 * E8, 0),),
        0,
    ),
    Trade(T0 + 200, "margin_fat", 2_200 * E8, (_buy(5, 2_205),), (_sell_perp(5, 2_198, 2_200),), 0),
    Trade(T0 + 300, "park", 2_300 * E8, (), (), 0),
    Trade(T0 + 400, "enter", 1_900 * E8, (_buy(30, 1_901),), (_sell_perp(30, 1_899.5, 1_900),), 0),
]


def test_cost_basis__volume_weighted_buys_and_sells() -> None:
    cb = cost_basis(_result(HAND_TRADES))
    spot, short = cb["spot"], cb["short"]
    assert spot["swaps"] == 3 and short["fills"] == 3
    assert spot["base_bought"] == pytest.approx(45) and short["base_sold"] == pytest.approx(45)
    assert spot["avg_price"] == pytest.approx((10 * 2_002 + 5 * 2_205 + 30 * 1_901) / 45, rel=1e-12)
    assert short["avg_price"] == pytest.approx((10 * 1_999 + 5 * 2_198 + 30 * 1_899.5) / 45, rel=1e-12)
    oracle = (10 * 2_000 + 5 * 2_200 + 30 * 1_900) / 45
    assert spot["oracle_avg_price"] == pytest.approx(oracle, rel=1e-12)
    assert short["oracle_avg_price"] == pytest.approx(oracle, rel=1e-12)
    assert spot["vs_oracle_bps"] == pytest.approx((spot["avg_price"] / oracle - 1) * 1e4)
    assert short["vs_oracle_bps"] < 0 < spot["vs_oracle_bps"]


def test_cost_basis__none_without_trades() -> None:
    report = build_report(_result([]))
    assert report["cost_basis"]["spot"]["avg_price"] is None
    assert report["cost_basis"]["short"]["avg_price"] is None
    assert report["basis_at_entry"] == {
        "entries": 0,
        "mean_bps": None,
        "min_bps": None,
        "max_bps": None,
        "first": [],
    }
    text = table(report)
    assert "n/a (no swaps)" in text and "n/a (no fills)" in text and "n/a (no entries)" in text
    json.loads(to_json(report))


def test_entry_basis__per_enter_trade() -> None:
    eb = entry_basis(_result(HAND_TRADES))
    first = (1_999 - 2_002) / 2_002 * 1e4
    second = (1_899.5 - 1_901) / 1_901 * 1e4
    assert eb["entries"] == 2
    assert [e["bps"] for e in eb["first"]] == pytest.approx([first, second])
    assert eb["mean_bps"] == pytest.approx((first + second) / 2)
    assert eb["min_bps"] == pytest.approx(min(first, second))
    assert eb["first"][0]["spot_price"] == pytest.approx(2_002)
    assert eb["first"][0]["short_price"] == pytest.approx(1_999)
    assert eb["first"][1]["oracle_price"] == 1_900


def test_basis_spread__perp_mark_against_the_pool_before_arbitrage() -> None:
    marks_pools = [(2_000, 2_000), (2_020, 2_000), (1_990, 2_020), (2_000, 1_990), (2_000, 2_000)]
    steps = [_step(T0 + i * 3_600, m, p) for i, (m, p) in enumerate(marks_pools)]
    expected = [(m - p) / p * 1e4 for m, p in marks_pools]
    bs = basis_spread(_result([], steps))
    assert bs["steps"] == 5
    assert bs["mean_bps"] == pytest.approx(statistics.fmean(expected))
    assert bs["stdev_bps"] == pytest.approx(statistics.stdev(expected))
    assert bs["max_abs_bps"] == pytest.approx(30 / 2_020 * 1e4)  # 1990 vs 2020
    assert bs["max_abs_at"] == "2023-11-15 00:13"  # T0 + 2 h


@pytest.fixture(scope="module")
def synthetic() -> tuple[ReplayResult, dict]:
    prints, prices = synthetic_history(seed=11, days=60)
    result = run_model(prints, prices)
    return result, build_report(result)


def test_synthetic_run__cost_basis_matches_the_trades(synthetic: tuple[ReplayResult, dict]) -> None:
    result, report = synthetic
    buys = [(s, t.oracle_e8) for t in result.trades for s in t.swaps if not s.base_in]
    sells = [(f, t.oracle_e8) for t in result.trades for f in t.fills if f.size_delta < 0]
    assert buys and sells
    base = sum(s.amount_out / E18 for s, _ in buys)
    spot_avg = sum(s.amount_in / USDC for s, _ in buys) / base
    spot_oracle = sum(s.amount_out / E18 * o / E8 for s, o in buys) / base
    size = sum(-f.size_delta / E18 for f, _ in sells)
    short_avg = sum(-f.size_delta / E18 * f.fill_price_e8 / E8 for f, _ in sells) / size
    cb = report["cost_basis"]
    assert cb["spot"]["avg_price"] == pytest.approx(spot_avg, rel=1e-9)
    assert cb["spot"]["oracle_avg_price"] == pytest.approx(spot_oracle, rel=1e-9)
    assert cb["short"]["avg_price"] == pytest.approx(short_avg, rel=1e-9)
    assert cb["spot"]["base_bought"] == pytest.approx(base)
    # the hedge is sized to the spot: the short sold what the spot bought
    assert cb["short"]["base_sold"] == pytest.approx(base, rel=1e-9)
    # the pool fee and impact make the spot dearer than the oracle, the taker's impact the
    # short cheaper: the basis locked in at entry is negative, by about the trading costs
    assert cb["spot"]["vs_oracle_bps"] > 0 > cb["short"]["vs_oracle_bps"]
    entry = report["basis_at_entry"]
    assert entry["entries"] == result.rebalances["enter"] >= 1
    assert entry["mean_bps"] < 0


def test_synthetic_run__basis_spread_and_new_keys_in_table_and_json(
    synthetic: tuple[ReplayResult, dict],
) -> None:
    result, report = synthetic
    spreads = [(s.price_e8 / s.pool_price_before_arb_e8 - 1) * 1e4 for s in result.steps]
    bs = report["basis_spread"]
    assert bs["steps"] == len(result.steps)
    assert bs["mean_bps"] == pytest.approx(statistics.fmean(spreads))
    assert bs["stdev_bps"] == pytest.approx(statistics.stdev(spreads))
    assert bs["max_abs_bps"] == pytest.approx(max(abs(x) for x in spreads))
    assert spreads[0] == 0  # the pool is seeded at the first oracle price
    text = table(report)
    for row in ("spot leg avg cost", "short leg avg price", "basis at entry", "basis spread"):
        assert row in text
    assert "cost: borrow" in text and "nothing borrowed" in text
    data = json.loads(to_json(report))
    for key in (
        "net_apy",
        "gross_carry_apy",
        "capture_ratio",
        "costs",
        "reconciliation",
        "rebalances",
        "time_parked_fraction",
        "min_margin_ratio_bps",
        "max_drawdown",
        "steps_per_second",
        "mode",
        "cost_basis",
        "basis_at_entry",
        "basis_spread",
        "data_label",
    ):
        assert key in data, key
    assert data["costs"]["borrow"] == 0


def _assert_pngs(paths: list, out) -> None:
    assert [p.name for p in paths] == list(FILES)
    for p in paths:
        assert p.parent == out
        blob = p.read_bytes()
        assert len(blob) > 0 and blob.startswith(PNG_SIGNATURE), p


def test_charts__three_pngs(synthetic: tuple[ReplayResult, dict], tmp_path) -> None:
    result, report = synthetic
    out = tmp_path / "charts"
    _assert_pngs(write_charts(result, report, out), out)


def test_charts__carry_curve_ends_at_the_drivers_gross_carry(synthetic: tuple[ReplayResult, dict]) -> None:
    result, _ = synthetic
    series = _series(result)
    assert series["carry"][-1] == pytest.approx(result.carry_growth, rel=1e-9)
    assert series["share"][0] == pytest.approx(result.steps[0].share_price / result.share_price_start)
    assert (series["parked"] * (series["ends"] - series["t"])).sum() == result.parked_seconds


def test_charts__thinning_keeps_the_extremes_and_gaps() -> None:
    import numpy as np

    y = np.sin(np.arange(100_000) / 500.0)
    y[12_345] = 50.0
    y[54_321] = -50.0
    y[70_000:80_000] = np.nan
    x = np.arange(len(y))
    tx, ty = thin(x, y, 1_000)
    assert len(tx) <= 1_000
    assert list(tx) == sorted(tx)
    assert ty[np.nanargmax(ty)] == 50.0 and tx[np.nanargmax(ty)] == 12_345
    assert ty[np.nanargmin(ty)] == -50.0
    assert np.isnan(ty).any()  # the all-NaN buckets stay a gap
    small_x, _ = thin(x[:10], y[:10], 1_000)
    assert list(small_x) == list(x[:10])


def test_cli__charts_option_writes_and_prints_the_paths(tmp_path) -> None:
    funding = tmp_path / "binance_eth_funding.csv"
    rows = ["Symbol,Date,Funding Rate"]
    for day in range(1, 11):
        for hour in (3, 11, 19):
            rows.append(f"ETH-USDT,2021-01-{day:02d} {hour:02d}:00:00.000,0.0001")
    funding.write_text("\n".join(rows) + "\n")
    out = tmp_path / "charts"
    result = CliRunner().invoke(
        cli, ["replay", "--funding", str(funding), "--mode", "model", "--charts", str(out)]
    )
    assert result.exit_code == 0, result.output
    for name in FILES:
        assert f"chart written to {out / name}" in result.output
    _assert_pngs([out / name for name in FILES], out)


def test_report__liquidations_listed_and_the_longest_unhedged_stretch() -> None:
    """`max_unhedged_hours` is the longest run of steps with the delta above the rule
    while not flat: two runs of 3 h and 1 h here (a flat step and an in-rule one between)."""
    flags = [False, True, True, True, False, True, False]
    steps = [replace(_step(T0 + h * 3_600, 2_000.0, 2_000.0), unhedged=u) for h, u in enumerate(flags)]
    result = _result([], steps)
    result.end = steps[-1].time + 3_600
    result.liquidations = [Liquidation(T0 + 3_600, 150 * E18, 12_345 * USDC)]
    assert result.max_unhedged_hours == 3
    report = build_report(result)
    assert report["liquidations"] == [
        {"time": T0 + 3_600, "when": "2023-11-14 23:13", "size": 150.0, "loss": 12_345.0}
    ]
    assert report["max_unhedged_hours"] == 3
    assert json.loads(to_json(report))["liquidations"][0]["loss"] == 12_345.0
    text = table(report)
    assert "150 closed, NAV -12,345.00" in text and "longest unhedged stretch" in text


def test_charts__no_local_paths_and_a_delta_panel_that_does_not_magnify_rounding(
    synthetic: tuple[ReplayResult, dict], tmp_path, monkeypatch
) -> None:
    # item 11 of the first-run issue: subtitles showed /home/... paths; a 1e-8 bps delta filled the panel
    from matplotlib.figure import Figure

    assert no_local_paths("Binance ETH (/work/shared/data/funding/eth.csv, /tmp/p.csv)") == (
        "Binance ETH (eth.csv, p.csv)"
    )
    saved: list[Figure] = []
    original = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (saved.append(fig), original(fig, *a, **k)))
    result, report = synthetic
    write_charts(result, {**report, "data_label": "ETH (/home/me/data/eth.csv)"}, tmp_path)
    titles = [text.get_text() for fig in saved for text in fig.texts] + [
        fig._suptitle.get_text() for fig in saved if fig._suptitle is not None
    ]
    assert titles and not any("/home/me" in t for t in titles)
    low, high = saved[2].axes[1].get_ylim()
    assert low <= -DELTA_MIN_SPAN_BPS and high >= DELTA_MIN_SPAN_BPS
