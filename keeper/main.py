"""`basis-keeper`: run the keeper (`run`), one tick (`once`), print what it sees (`status`),
or replay the strategy over a funding history (`replay`).

Exit codes: 0 = fine (for `once`: acted), 1 = bad input or configuration (one line on
stderr), 2 = `once` found nothing to do, 3 = `once` failed (node, venue or transaction),
4 = `once` held with an alert (stale oracle, a position that is not the vault's, ...).
Settings also come from a `.env` file in the working directory (variables already set win).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import sys
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import click
from eth_account.signers.local import LocalAccount
from pydantic import ValidationError

from keeper.bot import Keeper, TickReport, vault_state
from keeper.chain import Addresses, ChainReadError, read_links, read_snapshot, read_static
from keeper.errors import UserError
from keeper.executor import Executor
from keeper.manifest import Manifest, load_manifest
from keeper.metrics import Metrics
from keeper.reference import ReferenceHistory
from keeper.rpc import Rpc, RpcError, RpcUnavailable, scrub
from keeper.settings import KeeperSettings
from keeper.signer import SignerError, is_test_alias, load_keystore_account, test_account
from keeper.sources.base import FundingView, Limits, SourceError
from keeper.sources.dydx import DydxSource
from keeper.sources.hyperliquid import HyperliquidSource
from keeper.strategy import Hold, decide
from keeper.units import fmt_units
from keeper.venue import VaultRules

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


def _settings(overrides: dict[str, Any]) -> KeeperSettings:
    try:
        return KeeperSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        first = err.errors()[0]
        where = "BASIS_KEEPER_" + "__".join(str(x) for x in first["loc"]).upper()
        raise UserError(f"setting {where}: {str(first['msg']).removeprefix('Value error, ')}") from None


class Stack:
    """Everything a tick needs, connected and checked."""

    def __init__(
        self, settings: KeeperSettings, *, need_account: bool, account: LocalAccount | None = None
    ) -> None:
        self.settings = settings
        self.rpc = Rpc(settings.rpc_url, timeout=settings.rpc_timeout_seconds, retries=settings.rpc_retries)
        chain_id, genesis = self.rpc.batch([("eth_chainId", []), ("eth_getBlockByNumber", ["0x0", False])])
        if isinstance(chain_id, RpcError) or isinstance(genesis, RpcError) or not isinstance(genesis, dict):
            raise UserError("the node did not answer eth_chainId / block 0: is BASIS_KEEPER_RPC_URL a node?")
        self.chain_id = int(chain_id, 16)
        self.manifest = load_manifest(self.chain_id, settings.deployments_dir)
        if genesis.get("hash") != self.manifest.genesis_hash:
            raise UserError(
                f"the node's chain {self.chain_id} is not the one deployed to (genesis differs): "
                "was the local node restarted? redeploy"
            )
        self.account = account  # given: the chain replay's keeper, a local test key
        if self.account is None and settings.account and is_test_alias(settings.account):
            self.account = test_account(settings.account, self.chain_id)
        elif self.account is None and settings.account:
            self.account = load_keystore_account(settings.account, passphrase_file=settings.passphrase_file)
        elif self.account is None and need_account and not settings.dry_run:
            raise UserError(
                "no keeper account: set BASIS_KEEPER_ACCOUNT (ape keystore alias) or use --dry-run"
            )
        keeper_address = (
            self.account.address if self.account else (self.manifest.keeper or self.manifest.deployer)
        )
        self.addresses = addresses_of(self.rpc, self.manifest, keeper_address)
        self.static = read_static(self.rpc, self.addresses)
        if self.account is not None and not self.static.is_keeper:
            me, vault = self.account.address, self.manifest.vault
            raise UserError(
                f"account {me} is not a keeper of vault {vault}: the owner ({self.manifest.owner}) grants "
                f"the role with `ape run roles keeper {me} --account <owner>` (the vault's set_keeper)"
            )
        problems = settings.strategy.problems(VaultRules(**self.static.rules))
        if problems:
            raise UserError("strategy settings do not fit the vault's rules: " + "; ".join(problems))

    def keeper(self, metrics: Metrics | None = None) -> Keeper:
        s = self.settings
        executor = None
        if self.account is not None and not s.dry_run:
            executor = Executor(
                self.rpc,
                self.account,
                self.chain_id,
                self.addresses.hedge,  # every keeper call goes to the hedge
                receipt_timeout=s.receipt_timeout_seconds,
                poll_interval=s.receipt_poll_seconds,
            )
        reference = ReferenceHistory.backfill(
            self.rpc, self.addresses.perp_market, self.manifest.deploy_block
        )
        return Keeper(
            self.rpc,
            self.addresses,
            self.static,
            reference,
            s.strategy,
            executor=executor,
            other_venues=_venue_fetchers(s),
            metrics=metrics,
            deadline_seconds=s.deadline_seconds,
            max_failures=s.max_failures,
            cooldown=s.cooldown_seconds,
            urgent_cooldown=s.urgent_cooldown_seconds,
            stuck_tx_seconds=s.stuck_tx_seconds,
        )


def addresses_of(rpc: Rpc, manifest: Manifest, keeper: str) -> Addresses:
    """The manifest's addresses plus the vault's hedge and asset feed. A manifest written
    before v2 may lack them: then they are read from the vault (`hedge()`,
    `asset_oracle()`, immutable); where the manifest names them they must match it."""
    named = manifest.addresses()
    links = read_links(rpc, named["vault"])
    for key, address in links.items():
        given = named.get(key) or getattr(manifest, key, None)
        if given and str(given).lower() != address.lower():
            raise UserError(f"manifest {key} {given} is not vault {named['vault']}'s {key} {address}")
    fields = {f.name for f in dataclasses.fields(Addresses)} - {"keeper"}
    return Addresses(keeper=keeper, **{k: v for k, v in {**named, **links}.items() if k in fields})


def _venue_fetchers(s: KeeperSettings) -> list[Any]:
    window = timedelta(hours=s.strategy.history_hours)  # the parking spans read further back
    fetchers = []
    if "hyperliquid" in s.venues:
        hyperliquid = HyperliquidSource()

        def hl() -> FundingView:
            return hyperliquid.view(s.coin, window)

        fetchers.append(hl)
    if "dydx" in s.venues:
        dydx = DydxSource()

        def dy() -> FundingView:
            return dydx.view(f"{s.coin}-USD", window)

        fetchers.append(dy)
    return fetchers


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
        settings = _settings(options)
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
        settings = _settings(options)
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
        settings = _settings({**options, "dry_run": True})
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
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="also write the report here")
@click.option(
    "--charts",
    "charts_dir",
    type=click.Path(file_okay=False),
    help="also write the PNG charts into this folder",
)
def replay(**options: Any) -> None:
    """Replay the strategy over a funding history (or a stress scenario) and print the
    yield report."""
    from keeper.replay.cli import run_replay  # lazy: `run` starts without it

    try:
        run_replay(**options)
    except UserError as err:
        _fail(str(err))


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
def demo(**options: Any) -> None:
    """`make demo`: a fresh anvil, deploy, depositors, a year replayed with the keeper acting;
    report, JSON and charts under --out."""
    from keeper.replay.cli import run_demo

    try:
        run_demo(**options)
    except UserError as err:
        _fail(str(err))


def main() -> None:
    from dotenv import load_dotenv

    load_dotenv(".env", override=False)  # the working directory's .env; the environment wins
    cli()


if __name__ == "__main__":
    main()
