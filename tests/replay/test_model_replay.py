"""Model-mode replay and its report, end to end on short windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from keeper.cli.keeper import cli
from keeper.data.files import FundingPrint, PricePoint, load_funding, load_prices, synthetic_history
from keeper.replay.exact import run_model
from keeper.replay.report import build_report, table
from tests.fixtures.data import data_file

HOUR = 3_600


@pytest.fixture(scope="module")
def synthetic_report() -> dict:
    prints, prices = synthetic_history(seed=11, days=60)
    return build_report(run_model(prints, prices))


def test_synthetic_window__deterministic_and_hedged() -> None:
    prints, prices = synthetic_history(seed=11, days=30)
    first, second = run_model(prints, prices), run_model(prints, prices)
    assert [s.share_price for s in first.steps] == [s.share_price for s in second.steps]
    assert first.costs == second.costs
    assert first.rebalances.get("enter", 0) >= 1
    assert first.liquidations == [] and first.reverts == []
    assert any(not s.parked for s in first.steps)


def test_reconciliation__items_add_up_to_the_share_price(synthetic_report: dict) -> None:
    rec = synthetic_report["reconciliation"]
    assert rec["ok"], rec
    assert abs(rec["residual_bps"]) < 1
    assert abs(rec["share_price_residual_bps"]) < 1


def test_costs__non_negative_and_borrow_zero(synthetic_report: dict) -> None:
    for name, amount in synthetic_report["costs"].items():
        assert amount >= 0, name
    assert synthetic_report["costs"]["borrow"] == 0
    assert "borrow costs 0" in synthetic_report["borrow_note"]
    assert synthetic_report["costs"]["spot_pool_fees"] > 0
    assert synthetic_report["costs"]["perp_taker_fees"] > 0


def test_reconciliation__holds_with_vault_fees() -> None:
    from keeper.replay.exact import ReplayConfig

    prints, prices = synthetic_history(seed=3, days=45)
    config = ReplayConfig(management_fee_bps=200, performance_fee_bps=1_000)
    report = build_report(run_model(prints, prices, config))
    assert report["costs"]["vault_fees"] > 0
    assert report["reconciliation"]["ok"], report["reconciliation"]


def _flat_then_negative(
    days_positive: int, days_negative: int, negative: float = -0.000_1
) -> tuple[list[FundingPrint], list[PricePoint]]:
    start = 1_700_000_000 - 1_700_000_000 % (8 * HOUR)
    prints, prices = [], []
    for i in range((days_positive + days_negative) * 3):
        t = start + i * 8 * HOUR
        rate = 0.000_15 if i < days_positive * 3 else negative
        prints.append(FundingPrint(t + 8 * HOUR, rate, 8 * HOUR))
        prices.append(PricePoint(t, 2_000.0 * (1 + 0.001 * (i % 5))))
    return prints, prices


def test_deeply_negative_funding_for_long__parks_and_stays_parked() -> None:
    prints, prices = _flat_then_negative(10, 20, -0.001)
    result = run_model(prints, prices)
    report = build_report(result)
    assert result.rebalances.get("park", 0) == 1
    # -0.1 %/8h: parked once what the spell has cost, at the measured persistence, beats a
    # round trip (about 0.37 % of the short): within four days of the flip, and for the
    # rest of the negative stretch
    flip = prints[10 * 3].time - 8 * HOUR
    first = next(s.time for s in result.steps if s.time > flip and s.parked)
    assert first - flip <= 4 * 24 * HOUR
    assert all(s.parked for s in result.steps if s.time >= first)
    assert report["time_parked_fraction"] > 0.5
    # funding paid while negative is bounded by the days it took to park
    assert report["funding"]["paid"] < 0.01 * report["deposit"]
    assert report["reconciliation"]["ok"]


def test_mildly_negative_funding_for_long__ridden_out_hedged() -> None:
    """-0.01 %/8h for twenty days: a park and re-entry would cost more than such spells
    went on to cost on the recorded histories, so the vault pays it and stays hedged."""
    prints, prices = _flat_then_negative(10, 20)
    result = run_model(prints, prices)
    assert result.rebalances.get("park", 0) == 0
    assert not any(s.parked for s in result.steps[10 * 3 :])


def test_table_and_json__show_the_loaders_validation(tmp_path) -> None:
    funding = tmp_path / "binance_eth_funding.csv"
    rows = ["Symbol,Date,Funding Rate"]
    for day in range(1, 11):
        for hour in (3, 11, 19):  # UTC+3 file: 00/08/16 UTC
            if (day, hour) == (5, 11):
                continue  # a gap
            rows.append(f"ETH-USDT,2021-01-{day:02d} {hour:02d}:00:00.000,0.0001")
    rows.append("ETH-USDT,2021-01-02 03:00:00.000,0.0001")  # a duplicate
    funding.write_text("\n".join(rows) + "\n")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli, ["replay", "--funding", str(funding), "--mode", "model", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "1 duplicate rows kept once" in result.output
    assert "1 gaps; the longest 16 h" in result.output
    assert "shifted -3 h to UTC" in result.output
    assert "no price series" in result.output
    report = json.loads(out.read_text())
    assert any("duplicate" in line for line in report["data"])
    assert report["reconciliation"]["ok"]


@pytest.mark.chain  # chain mode starts its own anvil: a chain test though it asks for no ape fixture
def test_cli__chain_mode_is_the_default(tmp_path) -> None:
    funding = tmp_path / "binance_eth_funding.csv"
    rows = "".join(
        f"ETH-USDT,2021-01-{d:02d} {h:02d}:00:00.000,0.0001\n" for d in (1, 2) for h in (3, 11, 19)
    )
    funding.write_text("Symbol,Date,Funding Rate\n" + rows)
    result = CliRunner().invoke(cli, ["replay", "--funding", str(funding), "--depositors", "2"])
    assert result.exit_code == 0, result.output
    assert "chain replay:" in result.output and "reconciliation" in result.output
    # what make demo shows while it runs (first-run issue, item 11): who deposits, then progress
    assert "then 2 depositors (TEST::5..) deposit" in result.output
    assert "replaying: 48/48 steps (100 %)" in result.output  # 6 prints of 8 h, stepped hourly


def test_binance_eth_30_days__sane_apy() -> None:
    funding = data_file("funding/binance_eth_funding.csv")
    prices_path = data_file("prices/binance_spot_ETHUSDT_8h_2020-2023_DERIVED_from_4h.csv")
    prints, _ = load_funding(funding)
    prices, _ = load_prices(prices_path)
    start = int(datetime(2021, 3, 1, tzinfo=UTC).timestamp())
    window = [p for p in prints if start <= p.time - p.interval and p.time <= start + 30 * 86_400]
    assert len(window) == 90
    report = build_report(run_model(window, prices))
    assert report["reconciliation"]["ok"], report["reconciliation"]
    assert report["liquidations"] == [] and report["max_unhedged_hours"] == 0
    assert 0 < report["net_apy"] < 2 * report["gross_carry_apy"] + 0.05
    assert report["capture_ratio"] is not None and report["capture_ratio"] > 0.5
    assert "net APY" in table(report)


def test_cli__from_after_to__names_the_swap_and_the_files_range(tmp_path) -> None:
    # item 15 of the first-run issue: this used to read "no funding prints in the window"
    funding = tmp_path / "binance_eth_funding.csv"
    rows = "".join(
        f"ETH-USDT,2021-01-{d:02d} {h:02d}:00:00.000,0.0001\n" for d in (1, 2, 3) for h in (3, 11, 19)
    )
    funding.write_text("Symbol,Date,Funding Rate\n" + rows)
    base = ["replay", "--funding", str(funding), "--mode", "model"]
    swapped = CliRunner().invoke(cli, [*base, "--from", "2021-01-03", "--to", "2021-01-02"])
    assert swapped.exit_code == 1
    assert (
        "--from 2021-01-03 00:00 is not before --to 2021-01-02 00:00: swapped? "
        "the file covers 2020-12-31 16:00 to 2021-01-03 16:00 UTC"
    ) in swapped.output
    outside = CliRunner().invoke(cli, [*base, "--from", "2022-01-01", "--to", "2022-02-01"])
    assert outside.exit_code == 1
    assert "no funding prints between --from and --to: the file covers 2020-12-31 16:00" in outside.output
