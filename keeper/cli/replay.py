"""`basis-keeper replay` and `basis-keeper demo`: load the files (their validation reports
go into the output) or build a stress scenario, cut the window, run the chosen mode, and
print the report (and write its JSON and charts)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from keeper.bot.strategy import Settings
from keeper.core.errors import UserError
from keeper.core.rules import VenueParams
from keeper.core.units import fmt_units
from keeper.data.files import (
    FundingPrint,
    HistoryError,
    SeriesReport,
    data_dir,
    load_funding,
    synthetic_history,
)
from keeper.data.premium import modelled_premium
from keeper.ops.config import VenueDeployConfig
from keeper.ops.uniswap_v3 import FEE_TIERS
from keeper.replay.driver import ReplayConfig, ReplayResult
from keeper.replay.exact import run_steps
from keeper.replay.inputs import Inputs, _moment, check_venue, history_inputs, load_inputs, read_yaml
from keeper.replay.report import build_report, table, to_json
from keeper.replay.scenarios import SCENARIOS

DAY = 86_400


def run(inputs: Inputs, config: ReplayConfig, mode: str, *, progress: bool = True) -> ReplayResult:
    """The replay in `mode`, with a progress bar on stderr for chain mode."""
    kwargs: dict[str, Any] = {
        "reports": inputs.reports,
        "notes": inputs.notes,
        "end_price_e8": inputs.end_price_e8,
        "scenario": inputs.scenario,
        "gaps": inputs.gaps,
        "premium": inputs.premium,
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


# ----------------------------------------------------------------------------- knobs

STRATEGY_ENV = "BASIS_KEEPER_STRATEGY__"


def _valid_names() -> str:
    return ", ".join(Settings.model_fields)


def strategy_settings(
    sets: Sequence[str] = (),
    *,
    leverage: Decimal | None = None,
    venue_leverage: Decimal | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The strategy's knobs as the keeper reads them (`BASIS_KEEPER_STRATEGY__<NAME>`, as
    `basis-keeper run` does), then the --venue file's `target_leverage`, --leverage, and
    each `--set name=value` in order; validated once, as the keeper validates them."""
    env = os.environ if environ is None else environ
    valid = set(Settings.model_fields)
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for key, raw in env.items():
        if key.upper().startswith(STRATEGY_ENV):
            name = key[len(STRATEGY_ENV) :].lower()
            if name not in valid:
                raise UserError(f"{key}: unknown strategy setting; valid names: {_valid_names()}")
            values[name], source[name] = raw, key
    for name, value, where in (
        ("target_leverage", venue_leverage, "--venue target_leverage"),
        ("target_leverage", leverage, "--leverage"),
    ):
        if value is not None:
            values[name], source[name] = value, where
    for item in sets:
        name, sep, raw = item.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise UserError(f"--set {item!r}: expected name=value (valid names: {_valid_names()})")
        if name not in valid:
            raise UserError(f"--set {name}: unknown strategy setting; valid names: {_valid_names()}")
        values[name], source[name] = raw.strip(), f"--set {name}"
    try:
        return Settings.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        # a check across settings names every source that set one
        where = source.get(name) or ", ".join(dict.fromkeys(source.values())) or "strategy settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise UserError(f"{where}: {message}") from None


def venue_params(
    path: str | None = None,
    *,
    spot_fee_bps: int | None = None,
    perp_fee_ppm: int | None = None,
    perp_depth: int | None = None,
) -> tuple[VenueParams, Decimal | None]:
    """The venue the replay runs on: `VenueParams`' defaults, then the --venue YAML (any
    `VenueParams` field, e.g. `spot_fee_bps: 30`, plus an optional `target_leverage`; or a
    deploy config, whose `venue.deploy.params` are taken), then the flags. Returns the
    params and the file's target leverage (None: not set there)."""
    fields: dict[str, Any] = {}
    leverage: Decimal | None = None
    if path is not None:
        data = read_yaml(path, f"--venue {path}", "a mapping of venue parameters")
        if "venue" in data and isinstance(data["venue"], dict):  # a deploy config
            data = dict((data["venue"].get("deploy") or {}).get("params") or {})
        if "target_leverage" in data:
            raw = data.pop("target_leverage")
            try:
                leverage = Decimal(str(raw))
            except ArithmeticError:
                raise UserError(f"--venue {path}: target_leverage {raw!r} is not a number") from None
        try:
            fields = VenueDeployConfig(params=data).params
        except ValidationError as err:
            message = str(err.errors()[0]["msg"]).removeprefix("Value error, ")
            raise UserError(f"--venue {path}: {message}") from None
    source = {name: f"--venue {path} {name}" for name in fields}
    for name, flag, flag_value in (
        ("spot_fee_bps", "--spot-fee-bps", spot_fee_bps),
        ("taker_fee_ppm", "--perp-fee-ppm", perp_fee_ppm),
        ("depth_asset", "--perp-depth", perp_depth),
    ):
        if flag_value is not None:
            fields[name], source[name] = flag_value, flag
    params = replace(VenueParams(), **fields)
    check_venue(params, source)
    return params, leverage


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
    allow_gaps: bool = False,
    premium: str | None = None,
    strict: bool = False,
    sets: Sequence[str] = (),
    venue_path: str | None = None,
    spot_fee_bps: int | None = None,
    perp_fee_ppm: int | None = None,
    perp_depth: int | None = None,
    leverage: Decimal | None = None,
    spot: str = "reference",
) -> dict[str, Any]:
    """`basis-keeper replay`; returns the report (`--strict`: the caller fails on a
    verdict other than OK)."""
    if (funding_path is None) == (scenario is None):
        raise UserError("give either --funding FILE or --scenario NAME")
    if deposit <= 0:
        raise UserError(f"--deposit must be positive, got {deposit}")
    if depositors < 1:
        raise UserError(f"--depositors must be at least 1, got {depositors}")
    if deposit < depositors:
        raise UserError(f"--deposit {deposit} is less than one unit per depositor")
    venue, venue_leverage = venue_params(
        venue_path, spot_fee_bps=spot_fee_bps, perp_fee_ppm=perp_fee_ppm, perp_depth=perp_depth
    )
    settings = strategy_settings(sets, leverage=leverage, venue_leverage=venue_leverage)
    config = ReplayConfig(
        deposit=deposit, depositors=depositors, venue=venue, settings=settings,
        gas_gwei=gas_gwei, eth_price_usd=eth_price,
        management_fee_bps=management_fee_bps, performance_fee_bps=performance_fee_bps, spot=spot,
    )  # fmt: skip
    if spot == "uniswap-v3" and venue.spot_fee_bps * 100 not in FEE_TIERS:
        tiers = ", ".join(str(f // 100) for f in FEE_TIERS)
        raise UserError(
            f"--spot uniswap-v3: --spot-fee-bps {venue.spot_fee_bps} is not a v3 fee tier ({tiers} bps)"
        )
    problems = settings.problems(config.rules)
    if problems:
        raise UserError(f"strategy settings: {'; '.join(problems)}")
    cap = config.rules.deposit_cap_ceiling
    if config.venue.asset_wei(deposit) > cap:
        raise UserError(
            f"--deposit {deposit:,} is above the vault's deposit cap ({cap // config.venue.asset_unit:,})"
        )
    if scenario is not None:
        if scenario not in SCENARIOS:
            raise UserError(f"unknown scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
        if prices_path or date_from or date_to or premium:
            raise UserError("--scenario builds its own market: drop --prices/--from/--to/--premium")
        inputs = Inputs(SCENARIOS[scenario].steps(), None, [], ["synthetic stress scenario"], scenario)
    else:
        assert funding_path is not None
        start, end = _moment(date_from, "--from"), _moment(date_to, "--to")
        inputs = load_inputs(
            funding_path,
            prices_path,
            config,
            start,
            end,
            utc_shift_hours,
            allow_gaps=allow_gaps,
            premium=premium or "model",
        )
    result = run(inputs, config, mode)
    return emit(result, config, json_path=json_path, charts_dir=charts_dir)


# ----------------------------------------------------------------------------- demo

DEMO_FUNDING = "funding/binance_eth_funding.csv"
DEMO_PRICES = "prices/binance_spot_ETHUSDT_8h_2020-2023_DERIVED_from_4h.csv"
DEMO_WINDOW = ("2023-01-01", "2024-01-01")  # the last year of the recorded Binance history
DEMO_MARKS = "prices/binance_usdm_perp_ETHUSDT_mark_8h_2023.csv"  # the perp's mark that year: its premium


def run_demo(
    *,
    data: str | None,
    prices_path: str | None,
    date_from: str | None,
    date_to: str | None,
    out_dir: str,
    depositors: int,
    mode: str = "chain",
    allow_gaps: bool = False,
    spot: str = "reference",
) -> dict[str, Any]:
    """`make demo`: a chain replay on a fresh anvil, three depositors, the real keeper
    (with the strategy settings `BASIS_KEEPER_STRATEGY__*` give it, as `replay`), over real
    history when it is here (else a labelled synthetic one); report, JSON and charts under
    `out_dir`."""
    config = ReplayConfig(depositors=depositors, settings=strategy_settings(), spot=spot)
    start, end = _moment(date_from, "--from"), _moment(date_to, "--to")
    if data is not None:
        label = f"{data}" + (f" with prices {prices_path}" if prices_path else " (no price series)")
        if start is None and end is None:  # a year at most: the file's last
            prints, _ = _load_or_fail(data)
            start = max(prints[0].time - prints[0].interval, prints[-1].time - 365 * DAY)
        inputs = load_inputs(data, prices_path, config, start, end, allow_gaps=allow_gaps, premium="model")
    else:
        root = data_dir()
        funding, prices = root / DEMO_FUNDING, root / DEMO_PRICES
        if funding.is_file() and prices.is_file():
            label = f"real history: Binance ETH 8h funding and spot, {root}"
            start = start if start is not None else _moment(DEMO_WINDOW[0], "--from")
            end = end if end is not None else _moment(DEMO_WINDOW[1], "--to")
            # the perp's recorded mark covers 2023: its premium measured there, else modelled
            marks, (y0, y1) = root / DEMO_MARKS, (_moment(d, "") for d in DEMO_WINDOW)
            inside = None not in (y0, y1, start, end) and y0 <= start < end <= y1  # type: ignore[operator]
            premium = str(marks) if marks.is_file() and inside else "model"
            inputs = load_inputs(
                str(funding), str(prices), config, start, end, allow_gaps=allow_gaps, premium=premium
            )
        else:
            label = f"SYNTHETIC history (seed 7, generated by the project; {root} not found)"
            prints, points = synthetic_history(seed=7, days=180)
            inputs = history_inputs(
                prints, points, config, [], start, end, ["SYNTHETIC data"], premium=modelled_premium(prints)
            )
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
