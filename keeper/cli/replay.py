"""`basis-keeper replay` and `basis-keeper demo`: load the files (their validation reports
go into the output) or build a stress scenario, cut the window, run the chosen mode, and
print the report (and write its JSON and charts)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from keeper.core.errors import UserError
from keeper.core.units import fmt_units
from keeper.data.files import (
    FundingPrint,
    HistoryError,
    PricePoint,
    SeriesReport,
    load_funding,
    load_prices,
    synthetic_history,
)
from keeper.replay.driver import MarketStep, ReplayConfig, ReplayResult, end_price, history_steps
from keeper.replay.exact import run_steps
from keeper.replay.report import build_report, table, to_json
from keeper.replay.scenarios import SCENARIOS

DAY = 86_400


def _moment(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    from keeper.data.files import _parse_time

    try:
        return _parse_time(text, flag)
    except HistoryError as err:
        raise UserError(str(err)) from None


@dataclass
class Inputs:
    steps: list[MarketStep]
    end_price_e8: int | None
    reports: list[SeriesReport]
    notes: list[str]
    scenario: str | None = None
    label: str = ""


def _day(ts: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _span(prints: list[FundingPrint]) -> str:
    if not prints:
        return "no prints"
    return f"{_day(prints[0].time - prints[0].interval)} to {_day(prints[-1].time)} UTC"


def history_inputs(
    prints: list[FundingPrint],
    prices: list[PricePoint] | None,
    config: ReplayConfig,
    reports: list[SeriesReport],
    start: int | None,
    end: int | None,
    notes: list[str] | None = None,
) -> Inputs:
    if start is not None and end is not None and start >= end:
        raise UserError(
            f"--from {_day(start)} is not before --to {_day(end)}: swapped? the file covers {_span(prints)}"
        )
    everything = prints
    prints = [
        p
        for p in prints
        if (start is None or p.time - p.interval >= start) and (end is None or p.time <= end)
    ]
    if not prints:
        raise UserError(f"no funding prints between --from and --to: the file covers {_span(everything)}")
    notes = list(notes or [])
    if prices is None:
        notes.append(f"no price series: the oracle is held at {config.constant_price:g}")
    elif prices[0].time > prints[0].time or prices[-1].time < prints[-1].time - prints[-1].interval:
        notes.append("the price series does not cover the whole window: the nearest price is held")
    steps = history_steps(prints, prices, config.constant_price)
    return Inputs(steps, end_price(prints, prices, config), reports, notes)


def load_inputs(
    funding_path: str,
    prices_path: str | None,
    config: ReplayConfig,
    start: int | None,
    end: int | None,
    utc_shift_hours: int | None = None,
) -> Inputs:
    try:
        prints, funding_report = load_funding(funding_path, utc_shift_hours=utc_shift_hours)
        reports = [funding_report]
        prices = None
        if prices_path:
            prices, price_report = load_prices(prices_path)
            reports.append(price_report)
    except HistoryError as err:
        raise UserError(str(err)) from None
    return history_inputs(prints, prices, config, reports, start, end)


def run(inputs: Inputs, config: ReplayConfig, mode: str, *, progress: bool = True) -> ReplayResult:
    """The replay in `mode`, with a progress bar on stderr for chain mode."""
    kwargs: dict[str, Any] = {
        "reports": inputs.reports,
        "notes": inputs.notes,
        "end_price_e8": inputs.end_price_e8,
        "scenario": inputs.scenario,
    }
    if mode == "model":
        return run_steps(inputs.steps, config, **kwargs)
    from keeper.replay.anvil import project_cwd, run_chain_steps

    project_cwd()
    if not progress:
        return run_chain_steps(inputs.steps, config, **kwargs)
    each = ", ".join(fmt_units(w, config.venue.asset_decimals) for w in config.deposits_wei())
    click.echo(
        f"chain replay: {len(inputs.steps)} steps on a fresh anvil; deploying, then {config.depositors} "
        f"depositors (TEST::5..) deposit {each} ...",
        err=True,
    )
    started = time.monotonic()
    shown = [-1]

    def tick(done: int, total: int) -> None:
        # a line per 10 % (a progress bar draws nothing when stderr is not a terminal, e.g. make)
        tenth = done * 10 // max(total, 1)
        if tenth != shown[0]:
            shown[0] = tenth
            click.echo(
                f"  replaying: {done:,}/{total:,} steps ({tenth * 10} %), {time.monotonic() - started:.0f} s",
                err=True,
            )

    return run_chain_steps(inputs.steps, config, progress=tick, **kwargs)


def scenario_report(result: ReplayResult, config: ReplayConfig) -> dict[str, Any]:
    assert result.scenario is not None
    sc = SCENARIOS[result.scenario]
    verdicts = sc.judge(result, config)
    return {
        "name": sc.name,
        "description": sc.description,
        "passed": all(v.passed for v in verdicts),
        "verdicts": [{"check": v.check, "passed": v.passed, "detail": v.detail} for v in verdicts],
    }


def scenario_table(block: dict[str, Any]) -> str:
    lines = [f"  scenario {block['name']}: {block['description']} -> {'PASS' if block['passed'] else 'FAIL'}"]
    for v in block["verdicts"]:
        lines.append(f"    [{'ok' if v['passed'] else 'FAILED'}] {v['check']}: {v['detail']}")
    return "\n".join(lines)


def emit(
    result: ReplayResult,
    config: ReplayConfig,
    *,
    json_path: str | None,
    charts_dir: str | None,
    label: str = "",
    label_shown: bool = False,
) -> dict[str, Any]:
    """Prints the report (and writes JSON and charts as asked); returns it."""
    report = build_report(result)
    if label:
        report["data_label"] = label
    if result.scenario is not None:
        report["scenario"] = scenario_report(result, config)
    if label and not label_shown:
        click.echo(f"data: {label}")
    click.echo(table(report))
    if result.scenario is not None:
        click.echo(scenario_table(report["scenario"]))
    if charts_dir:
        from keeper.replay.charts import write_charts  # lazy: matplotlib only when asked

        try:
            paths = write_charts(result, report, charts_dir)
        except OSError as err:
            raise UserError(f"--charts {charts_dir}: {err}") from None
        for path in paths:
            click.echo(f"  chart written to {path}")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(to_json(report) + "\n")
        click.echo(f"  report written to {json_path}")
    return report


def run_replay(
    *,
    funding_path: str | None,
    prices_path: str | None,
    scenario: str | None,
    date_from: str | None,
    date_to: str | None,
    mode: str,
    utc_shift_hours: int | None,
    deposit: int,
    depositors: int,
    gas_gwei: float,
    eth_price: float,
    management_fee_bps: int,
    performance_fee_bps: int,
    json_path: str | None,
    charts_dir: str | None = None,
    spot: str = "reference",
) -> None:
    if (funding_path is None) == (scenario is None):
        raise UserError("give either --funding FILE or --scenario NAME")
    if deposit <= 0:
        raise UserError(f"--deposit must be positive, got {deposit}")
    if depositors < 1:
        raise UserError(f"--depositors must be at least 1, got {depositors}")
    if deposit < depositors:
        raise UserError(f"--deposit {deposit} is less than one unit per depositor")
    config = ReplayConfig(
        deposit=deposit, depositors=depositors, gas_gwei=gas_gwei, eth_price_usd=eth_price,
        management_fee_bps=management_fee_bps, performance_fee_bps=performance_fee_bps, spot=spot,
    )  # fmt: skip
    cap = config.rules.deposit_cap_ceiling
    if config.venue.asset_wei(deposit) > cap:
        raise UserError(
            f"--deposit {deposit:,} is above the vault's deposit cap ({cap // config.venue.asset_unit:,})"
        )
    if scenario is not None:
        if scenario not in SCENARIOS:
            raise UserError(f"unknown scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
        if prices_path or date_from or date_to:
            raise UserError("--scenario builds its own market: drop --prices/--from/--to")
        inputs = Inputs(SCENARIOS[scenario].steps(), None, [], ["synthetic stress scenario"], scenario)
    else:
        assert funding_path is not None
        start, end = _moment(date_from, "--from"), _moment(date_to, "--to")
        inputs = load_inputs(funding_path, prices_path, config, start, end, utc_shift_hours)
    result = run(inputs, config, mode)
    emit(result, config, json_path=json_path, charts_dir=charts_dir)


# ----------------------------------------------------------------------------- demo

DEMO_FUNDING = "funding/binance_eth_funding.csv"
DEMO_PRICES = "prices/binance_spot_ETHUSDT_8h_2020-2023_DERIVED_from_4h.csv"
DEMO_WINDOW = ("2023-01-01", "2024-01-01")  # the last year of the recorded Binance history


def data_dir() -> Path:
    """The shared market data: $BASIS_DATA_DIR, else ../shared/data beside the checkout."""
    env = os.environ.get("BASIS_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def run_demo(
    *,
    data: str | None,
    prices_path: str | None,
    date_from: str | None,
    date_to: str | None,
    out_dir: str,
    depositors: int,
    mode: str = "chain",
    spot: str = "reference",
) -> dict[str, Any]:
    """`make demo`: a chain replay on a fresh anvil, three depositors, the real keeper,
    over real history when it is here (else a labelled synthetic one); report, JSON and
    charts under `out_dir`."""
    config = ReplayConfig(depositors=depositors, spot=spot)
    start, end = _moment(date_from, "--from"), _moment(date_to, "--to")
    if data is not None:
        label = f"{data}" + (f" with prices {prices_path}" if prices_path else " (no price series)")
        if start is None and end is None:  # a year at most: the file's last
            prints, _ = _load_or_fail(data)
            start = max(prints[0].time - prints[0].interval, prints[-1].time - 365 * DAY)
        inputs = load_inputs(data, prices_path, config, start, end)
    else:
        root = data_dir()
        funding, prices = root / DEMO_FUNDING, root / DEMO_PRICES
        if funding.is_file() and prices.is_file():
            label = f"real history: Binance ETH 8h funding and spot, {root}"
            start = start if start is not None else _moment(DEMO_WINDOW[0], "--from")
            end = end if end is not None else _moment(DEMO_WINDOW[1], "--to")
            inputs = load_inputs(str(funding), str(prices), config, start, end)
        else:
            label = f"SYNTHETIC history (seed 7, generated by the project; {root} not found)"
            prints, points = synthetic_history(seed=7, days=180)
            inputs = history_inputs(prints, points, config, [], start, end, ["SYNTHETIC data"])
    click.echo(
        f"demo data: {label}" + ("; spot on Uniswap v3 (full range, fee 500)" if spot != "reference" else "")
    )
    result = run(inputs, config, mode)
    out = Path(out_dir)
    return emit(
        result, config, json_path=str(out / "demo.json"), charts_dir=str(out), label=label, label_shown=True
    )


def _load_or_fail(path: str) -> tuple[list[FundingPrint], SeriesReport]:
    try:
        return load_funding(path)
    except HistoryError as err:
        raise UserError(str(err)) from None
