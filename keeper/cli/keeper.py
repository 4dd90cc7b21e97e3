"""`basis-keeper`: run the keeper (`run`), one tick (`once`), print what it sees (`status`),
replay the strategy over a funding history (`replay`), or many replays over a grid
(`sweep`, on dask.distributed).

Exit codes: 0 = fine (for `once`: acted), 1 = bad input or configuration (one line on
stderr), 2 = `once` found nothing to do, 3 = `once` failed (node, venue or transaction),
4 = `once` held with an alert (stale oracle, a position that is not the vault's, ...);
for `sweep`, 3 = the scheduler does not answer or a cell failed.
Settings also come from a `.env` file in the working directory (variables already set win).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import click

from keeper.bot.metrics import Metrics
from keeper.bot.reference import ReferenceHistory
from keeper.bot.runtime import TickReport, vault_state
from keeper.bot.settings import KeeperSettings
from keeper.bot.strategy import Hold, decide
from keeper.bot.wiring import Stack, load_settings
from keeper.chain.reader import ChainReadError, read_snapshot
from keeper.chain.signer import SignerError
from keeper.core.errors import SourceError, UserError
from keeper.core.units import fmt_units
from keeper.data.records import Limits
from keeper.net.rpc import RpcUnavailable, scrub

log = logging.getLogger("keeper")

EXIT_CODES = "exit codes: 0 ok (once: acted), 1 bad input, 2 nothing to do, 3 failed, 4 held with an alert"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": scrub(record.getMessage()),
            }
        )


class TextFormatter(logging.Formatter):
    """The text log line, with any URL's credentials masked."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def _configure_logging(fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _node(func: Any) -> Any:
    options = [
        click.option("--rpc-url", help="JSON-RPC URL [env BASIS_KEEPER_RPC_URL, BASIS_RPC_URL]"),
        click.option(
            "--deployments-dir",
            type=click.Path(file_okay=False),
            help="where deployments/<chain_id>.json is [env BASIS_KEEPER_DEPLOYMENTS_DIR]",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _common(func: Any) -> Any:
    options = [
        click.option(
            "--account",
            help="ape keystore alias, or TEST::<n> on a local chain [env BASIS_KEEPER_ACCOUNT]",
        ),
        click.option(
            "--passphrase-file",
            type=click.Path(dir_okay=False),
            help="file with the keystore's passphrase [env BASIS_KEEPER_PASSPHRASE_FILE; "
            "or the passphrase itself in BASIS_KEEPER_PASSPHRASE]",
        ),
        click.option("--dry-run", is_flag=True, default=None, help="decide and log, never send"),
    ]
    for option in reversed(options):
        func = option(func)
    return _node(func)


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {scrub(message)}", err=True)
    sys.exit(code)


@click.group(epilog=EXIT_CODES)
def cli() -> None:
    """The basis vault keeper: reads the vault and its venue every tick and calls the vault's
    rebalance (or emergency_deleverage) when the strategy says so.

    \b
    basis-keeper status                    what it sees and would do now (never sends)
    basis-keeper once --account ALIAS      one tick (--dry-run: decide, never send)
    basis-keeper run --account ALIAS       tick until stopped; Prometheus on :9464
    basis-keeper replay / demo             the strategy over a recorded funding history
    basis-keeper sweep GRID.yaml           many model replays on Dask (--walk-forward)

    The vault comes from deployments/<chain_id>.json (ape run deploy); every option is also a
    BASIS_KEEPER_* variable, and a .env file in the working directory is read (docs/keeper.md).
    """


@cli.command()
@_common
@click.option(
    "--interval", "interval_seconds", type=float, help="seconds between ticks [env ..._INTERVAL_SECONDS]"
)
@click.option("--metrics-port", type=int, help="Prometheus port, 0 = off [env ..._METRICS_PORT]")
def run(**options: Any) -> None:
    """Tick until SIGINT/SIGTERM; survives node and venue outages (also a node that is down
    at start: it waits for it)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        settings = load_settings(options)
        _configure_logging(settings.log_format)
        stack = _wait_for_stack(settings, stop)
        if stack is None:
            log.info("keeper stopped")
            return
        metrics = Metrics()
        if settings.metrics_port:
            metrics.serve(settings.metrics_port, settings.metrics_host)
            log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
        keeper = stack.keeper(metrics)
    except (UserError, SignerError) as err:
        _fail(str(err))
    except (RpcUnavailable, ChainReadError) as err:
        _fail(f"cannot start: {err}", 3)
    keeper.run(settings.interval_seconds, stop)


def _wait_for_stack(settings: KeeperSettings, stop: threading.Event) -> Stack | None:
    """`Stack`, retried while the node does not answer (as the breaker would: backing off
    from the tick interval to the cooldown); None when stopped meanwhile."""
    delay = settings.interval_seconds
    while True:
        try:
            return Stack(settings, need_account=True)
        except (RpcUnavailable, ChainReadError) as err:
            log.error("cannot start yet, node unavailable: %s; retrying in %.1fs", err, delay)
        if stop.wait(delay):
            return None
        delay = min(delay * 2, settings.cooldown_seconds)


@cli.command()
@_common
def once(**options: Any) -> None:
    """One tick. Exit 0 when it acted, 2 when there was nothing to do, 3 when it failed, 4 when
    it held with an alert (e.g. a stale oracle)."""
    try:
        settings = load_settings(options)
        _configure_logging(settings.log_format)
        report: TickReport = Stack(settings, need_account=True).keeper().tick()
    except (UserError, SignerError) as err:
        _fail(str(err))
    except (RpcUnavailable, ChainReadError, SourceError) as err:
        _fail(f"cannot start: {err}", 3)
    click.echo(f"{report.summary} ({report.round_trips} round trips, {report.cpu_seconds * 1000:.1f} ms cpu)")
    sys.exit(_once_exit_code(report))


def _once_exit_code(report: TickReport) -> int:
    if report.error:
        return 3
    if report.acted:
        return 0
    action = report.decision.action if report.decision is not None else None
    return 4 if isinstance(action, Hold) and action.alert else 2


@cli.command()
@_node
@click.option("--json", "as_json", is_flag=True, help="machine-readable output (contract units)")
def status(as_json: bool, **options: Any) -> None:
    """What the keeper sees and would do now (never sends; needs no account)."""
    try:
        settings = load_settings({**options, "dry_run": True})
        _configure_logging(settings.log_format)
        stack = Stack(settings, need_account=False)
        snap = read_snapshot(stack.rpc, stack.addresses)
        state = vault_state(stack.static, snap)
        reference = ReferenceHistory.backfill(
            stack.rpc, stack.addresses.perp_market, stack.manifest.deploy_block
        )
        view = reference.view(
            block_timestamp=snap.block_timestamp,
            funding_rate=snap.funding_rate,
            index_price_e8=snap.oracle_answer,
            window=settings.strategy.history_hours * 3_600,
            limits=Limits(),
            trailing=settings.strategy.window_spans,
        )
        decision = decide(state, [view], settings.strategy)
    except (UserError, SignerError) as err:
        _fail(str(err))
    except (RpcUnavailable, ChainReadError, SourceError) as err:
        _fail(str(err), 3)
    sig = decision.signals
    ref = sig.funding.reference
    info = {
        "block": snap.block_number,
        "nav": state.nav,
        "idle": state.idle,
        "spot_base": state.spot_base,
        "hedge": stack.addresses.hedge,
        "short_size": state.short_size,
        "booked_short": state.booked_short,
        "liquidated": state.liquidated,
        "asset_price_e8": state.asset_price_e8,
        "margin_ratio_bps": sig.margin_ratio_bps,
        "delta_bps": sig.delta_bps,
        "pool_dislocation_bps": sig.pool_dislocation_bps,
        "oracle_age_s": sig.oracle_age,
        "funding_now_per_hour": str(view.info.rate_per_hour),
        "expected_funding_per_hour": None
        if sig.funding.expected_rate_per_hour is None
        else str(sig.funding.expected_rate_per_hour),
        "funding_window_hours": settings.strategy.funding_window_hours,
        "funding_history_coverage": None if ref is None else str(ref.coverage),
        "parked": sig.parked,
        "tx_in_flight": snap.tx_in_flight,
        "would": type(decision.action).__name__,
        "because": decision.reason,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        click.echo(format_status(info, state.asset_decimals, state.base_decimals, settings))


def _pct_per_hour(rate: str | None) -> str:
    if rate is None:
        return "unknown"
    per_hour = Decimal(rate)
    return f"{per_hour * 100:.5f} %/h ({per_hour * 24 * 365 * 100:.2f} % a year)"


def format_status(info: dict[str, Any], asset_decimals: int, base_decimals: int, s: KeeperSettings) -> str:
    """`basis-keeper status` for people: whole units, bps and percentages."""
    ratio = info["margin_ratio_bps"]
    coverage = info["funding_history_coverage"]
    history = "none" if coverage is None else f"{Decimal(coverage) * 100:.0f} %"
    rows = [
        ("block", f"{info['block']:,}"),
        ("NAV", f"{fmt_units(info['nav'], asset_decimals)} asset"),
        ("idle", f"{fmt_units(info['idle'], asset_decimals)} asset"),
        ("spot leg", f"{fmt_units(info['spot_base'], base_decimals, 6)} base"),
        ("short", f"{fmt_units(info['short_size'], base_decimals, 6)} base"),
        ("margin ratio", "no short" if ratio is None else f"{ratio / 100:.2f} % ({ratio:,} bps)"),
        ("delta", f"{info['delta_bps']:+,} bps of NAV"),
        ("pool vs oracle", f"{info['pool_dislocation_bps']:+,} bps"),
        ("oracle age", f"{timedelta(seconds=info['oracle_age_s'])}"),
        ("funding now", _pct_per_hour(info["funding_now_per_hour"])),
        ("expected funding", _pct_per_hour(info["expected_funding_per_hour"])),
        (
            "funding history",
            f"{history} of the {info['funding_window_hours']} h window "
            f"(acts on funding from {s.strategy.min_coverage * 100:.0f} %)",
        ),
        ("parked", "yes" if info["parked"] else "no"),
        ("tx in flight", "yes" if info["tx_in_flight"] else "no"),
        ("would", f"{info['would']}: {info['because']}"),
    ]
    lines = [f"{key:>18}  {value}" for key, value in rows]
    if coverage is None or Decimal(coverage) < s.strategy.min_coverage:
        lines.append(
            "note: SHORT FUNDING HISTORY: the keeper enters only once the market's funding history covers "
            f"{s.strategy.min_coverage * 100:.0f} % of the window; on a local chain `ape run market warmup "
            "--account TEST::0` seeds it (docs/keeper.md)"
        )
    return "\n".join(lines)


# Where the replay's hedge trades spot (ReplayConfig.spot).
SPOT_OPTION = click.option(
    "--spot",
    type=click.Choice(["reference", "uniswap-v3"]),
    default="reference",
    show_default=True,
    help="the spot venue: the reference pool or the official Uniswap v3 contracts (full range; fee tier "
    "--spot-fee-bps x 100: 5, 30 or 100 bps)",
)


@cli.command()
@click.option("--funding", "funding_path", type=click.Path(dir_okay=False), help="funding history file")
@click.option(
    "--prices", "prices_path", type=click.Path(dir_okay=False), help="price series (default: constant)"
)
@click.option(
    "--scenario",
    metavar="NAME",
    help="a named stress scenario instead of a file (keeper/replay/scenarios.py; an unknown name lists them)",
)
@click.option("--from", "date_from", help="first day (UTC, YYYY-MM-DD[THH:MM])")
@click.option("--to", "date_to", help="last moment (UTC, YYYY-MM-DD[THH:MM]), exclusive")
@click.option(
    "--mode",
    type=click.Choice(["chain", "model"]),
    default="chain",
    show_default=True,
    help="chain: a fresh anvil, the deployed contracts and the real keeper; model: exact Python models",
)
@click.option("--utc-shift-hours", type=int, help="the funding file's UTC offset (default: from its venue)")
@click.option("--deposit", type=int, default=1_000_000, show_default=True, help="whole asset units")
@click.option(
    "--depositors", type=int, default=3, show_default=True, help="accounts the deposit is split over"
)
@click.option("--gas-gwei", type=float, default=20.0, show_default=True)
@click.option("--eth-price", type=float, default=3_000.0, show_default=True, help="USD, to price gas")
@click.option("--management-fee-bps", type=int, default=0, show_default=True)
@click.option("--performance-fee-bps", type=int, default=0, show_default=True)
@SPOT_OPTION
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="also write the report here")
@click.option(
    "--charts",
    "charts_dir",
    type=click.Path(file_okay=False),
    help="also write the PNG charts into this folder",
)
@click.option(
    "--allow-gaps",
    is_flag=True,
    help="replay through funding gaps longer than 3 intervals (the last rate held; listed in the report)",
)
@click.option(
    "--premium",
    metavar="model|none|FILE",
    help="the perp's premium over spot [default: model]: modelled from the funding prints (labelled so), "
    "none (the perp marks at its index), or measured: a file of the perp's mark prices (needs --prices) or "
    "a Hyperliquid fundingHistory JSON",
)
@click.option(
    "--strict",
    is_flag=True,
    help="exit 3 when the verdict is not OK (a liquidation, or a reconciliation mismatch)",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NAME=VALUE",
    help="a strategy setting (as BASIS_KEEPER_STRATEGY__NAME, which is read too); repeatable",
)
@click.option(
    "--venue",
    "venue_path",
    type=click.Path(dir_okay=False),
    help="venue YAML: keeper.core.rules.VenueParams fields (spot_fee_bps, taker_fee_ppm, depth_asset, ...) "
    "and target_leverage; a deploy config's venue.deploy.params also work",
)
@click.option("--spot-fee-bps", type=int, help="the spot pool's fee, bps [default 5]")
@click.option("--perp-fee-ppm", type=int, help="the perp's taker fee, ppm [default 450]")
@click.option(
    "--perp-depth", type=int, help="the perp's depth, whole asset units (a fill of N moves N/depth) [5e9]"
)
@click.option("--leverage", type=Decimal, help="the strategy's target leverage [default 2]")
def replay(**options: Any) -> None:
    """Replay the strategy over a funding history (or a stress scenario) and print the
    yield report."""
    from keeper.cli.replay import run_replay  # lazy: `run` starts without it

    try:
        report = run_replay(**options)
    except UserError as err:
        _fail(str(err))
    else:
        if options["strict"] and report["verdict"] != "OK":
            _fail(f"replay verdict {report['verdict']} (--strict)", 3)


@cli.command()
@click.option(
    "--data", type=click.Path(dir_okay=False), help="any supported funding file (default: real or synthetic)"
)
@click.option("--prices", "prices_path", type=click.Path(dir_okay=False), help="its price series")
@click.option("--from", "date_from", help="first day (UTC); default: a year")
@click.option("--to", "date_to", help="last moment (UTC)")
@click.option("--out", "out_dir", default="reports/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--depositors", type=int, default=3, show_default=True)
@click.option("--mode", type=click.Choice(["chain", "model"]), default="chain", show_default=True)
@click.option("--allow-gaps", is_flag=True, help="replay through funding gaps longer than 3 intervals")
@SPOT_OPTION
def demo(**options: Any) -> None:
    """`make demo`: a fresh anvil, deploy, depositors, a year replayed with the keeper acting;
    report, JSON and charts under --out."""
    from keeper.cli.replay import run_demo

    try:
        run_demo(**options)
    except UserError as err:
        _fail(str(err))


@cli.command()
@click.argument("grid_path", metavar="GRID.yaml", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    default="reports/sweep/cells.csv",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="the table, .csv or .parquet; cells already in it (or its journal) are skipped",
)
@click.option(
    "--scheduler", help="an existing Dask cluster's scheduler, tcp://host:8786 [default: a LocalCluster]"
)
@click.option(
    "--connect-timeout", type=float, default=10.0, show_default=True, help="seconds to reach --scheduler"
)
@click.option("--workers", type=int, help="the LocalCluster's worker processes [default: one per core]")
@click.option("--serial", is_flag=True, help="run every cell in this process, without Dask (the reference)")
@click.option(
    "--walk-forward", is_flag=True, help="tune on each train window, judge the pick on the test window"
)
@click.option("--train-years", type=int, help="walk-forward train window [grid's walk_forward:, else 2]")
@click.option("--test-years", type=int, help="walk-forward test window [grid's walk_forward:, else 1]")
@click.option("--step-years", type=int, help="how far each fold moves on [default: --test-years]")
@click.option(
    "--objective", help="the report figure to maximise (-name minimises) [grid's, else excess_vs_passive]"
)
@click.option("--charts/--no-charts", default=True, show_default=True, help="heatmap PNGs beside the table")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="where relative history paths resolve [BASIS_DATA_DIR]",
)
def sweep(**options: Any) -> None:
    """Model-mode replays over a grid of settings, venue costs, leverage and histories
    (docs/sweep.md), on dask.distributed; one table row per cell, a summary, heatmaps.
    Exit 1 on bad input (before any work), 3 when the scheduler does not answer or a
    cell failed."""
    from keeper.cli.sweep import SweepFailed, run_sweep  # lazy: Dask only here

    try:
        run_sweep(**options)
    except UserError as err:
        _fail(str(err))
    except SweepFailed as err:
        _fail(str(err), 3)


def main() -> None:
    from dotenv import load_dotenv

    load_dotenv(".env", override=False)  # the working directory's .env; the environment wins
    cli()


if __name__ == "__main__":
    main()
