"""`basis-keeper replay`: load the files (their validation reports go into the output),
cut the window, run the chosen mode and print the report (and write its JSON)."""

from __future__ import annotations

from pathlib import Path

import click

from keeper.errors import UserError
from keeper.history import HistoryError, load_funding, load_prices
from keeper.replay.model import ReplayConfig, run_model
from keeper.replay.report import build_report, table, to_json


def _moment(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    from keeper.history import _parse_time

    try:
        return _parse_time(text, flag)
    except HistoryError as err:
        raise UserError(str(err)) from None


def run_replay(
    *,
    funding_path: str,
    prices_path: str | None,
    date_from: str | None,
    date_to: str | None,
    mode: str,
    utc_shift_hours: int | None,
    deposit: int,
    gas_gwei: float,
    eth_price: float,
    management_fee_bps: int,
    performance_fee_bps: int,
    json_path: str | None,
    charts_dir: str | None = None,
) -> None:
    if mode == "chain":
        raise UserError("--mode chain is not available yet: use --mode model")
    start, end = _moment(date_from, "--from"), _moment(date_to, "--to")
    try:
        prints, funding_report = load_funding(funding_path, utc_shift_hours=utc_shift_hours)
        reports = [funding_report]
        prices = None
        if prices_path:
            prices, price_report = load_prices(prices_path)
            reports.append(price_report)
    except HistoryError as err:
        raise UserError(str(err)) from None
    prints = [
        p
        for p in prints
        if (start is None or p.time - p.interval >= start) and (end is None or p.time <= end)
    ]
    if not prints:
        raise UserError("no funding prints in the window --from/--to")
    notes = []
    if prices and (
        prices[0].time > prints[0].time or prices[-1].time < prints[-1].time - prints[-1].interval
    ):
        notes.append("the price series does not cover the whole window: the nearest price is held")
    config = ReplayConfig(
        deposit=deposit,
        gas_gwei=gas_gwei,
        eth_price_usd=eth_price,
        management_fee_bps=management_fee_bps,
        performance_fee_bps=performance_fee_bps,
    )
    result = run_model(prints, prices, config, reports=reports, notes=notes)
    report = build_report(result)
    click.echo(table(report))
    if json_path:
        Path(json_path).write_text(to_json(report) + "\n")
        click.echo(f"  report written to {json_path}")
    if charts_dir:
        from keeper.replay.charts import write_charts  # lazy: matplotlib only when asked

        try:
            paths = write_charts(result, report, charts_dir)
        except OSError as err:
            raise UserError(f"--charts {charts_dir}: {err}") from None
        for path in paths:
            click.echo(f"  chart written to {path}")
