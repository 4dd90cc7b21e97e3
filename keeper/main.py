"""`basis-keeper`: run the keeper (`run`), one tick (`once`), print what it sees (`status`),
or replay the strategy over a funding history (`replay`).

Exit codes: 0 = fine (for `once`: acted), 1 = bad input or configuration (one line on
stderr), 2 = `once` found nothing to do, 3 = `once` failed (node, venue or transaction).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import sys
import threading
from datetime import timedelta
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
from keeper.rpc import Rpc, RpcError, RpcUnavailable
from keeper.settings import KeeperSettings
from keeper.signer import SignerError, load_keystore_account
from keeper.sources.base import FundingView, Limits, SourceError
from keeper.sources.dydx import DydxSource
from keeper.sources.hyperliquid import HyperliquidSource
from keeper.strategy import decide
from keeper.venue import VaultRules

log = logging.getLogger("keeper")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def _configure_logging(fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _settings(overrides: dict[str, Any]) -> KeeperSettings:
    try:
        return KeeperSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        first = err.errors()[0]
        where = "BASIS_KEEPER_" + "__".join(str(x) for x in first["loc"]).upper()
        raise UserError(f"setting {where}: {first['msg']}") from None


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
        if self.account is None and settings.account:
            self.account = load_keystore_account(settings.account)
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
            raise UserError(f"account {self.account.address} is not a keeper of vault {self.manifest.vault}")
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
    window = timedelta(hours=s.strategy.funding_window_hours)
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


def _common(func: Any) -> Any:
    options = [
        click.option("--rpc-url", help="JSON-RPC URL [env BASIS_KEEPER_RPC_URL, BASIS_RPC_URL]"),
        click.option("--account", help="ape keystore alias [env BASIS_KEEPER_ACCOUNT]"),
        click.option(
            "--deployments-dir", type=click.Path(file_okay=False), help="[env BASIS_KEEPER_DEPLOYMENTS_DIR]"
        ),
        click.option("--dry-run", is_flag=True, default=None, help="decide and log, never send"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group()
def cli() -> None:
    """The basis vault keeper."""


@cli.command()
@_common
@click.option(
    "--interval", "interval_seconds", type=float, help="seconds between ticks [env ..._INTERVAL_SECONDS]"
)
@click.option("--metrics-port", type=int, help="Prometheus port, 0 = off [env ..._METRICS_PORT]")
def run(**options: Any) -> None:
    """Tick until SIGINT/SIGTERM; survives node and venue outages."""
    try:
        settings = _settings(options)
        _configure_logging(settings.log_format)
        stack = Stack(settings, need_account=True)
        metrics = Metrics()
        if settings.metrics_port:
            metrics.serve(settings.metrics_port, settings.metrics_host)
            log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
        keeper = stack.keeper(metrics)
    except (UserError, SignerError) as err:
        _fail(str(err))
    except (RpcUnavailable, ChainReadError) as err:
        _fail(f"cannot start: {err}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    keeper.run(settings.interval_seconds, stop)


@cli.command()
@_common
def once(**options: Any) -> None:
    """One tick. Exit 0 when it acted, 2 when there was nothing to do, 3 when it failed."""
    try:
        settings = _settings(options)
        _configure_logging(settings.log_format)
        report: TickReport = Stack(settings, need_account=True).keeper().tick()
    except (UserError, SignerError) as err:
        _fail(str(err))
    except (RpcUnavailable, ChainReadError, SourceError) as err:
        _fail(f"cannot start: {err}", 3)
    click.echo(f"{report.summary} ({report.round_trips} round trips, {report.cpu_seconds * 1000:.1f} ms cpu)")
    sys.exit(3 if report.error else 0 if report.acted else 2)


@cli.command()
@_common
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(as_json: bool, **options: Any) -> None:
    """What the keeper sees and would do now (never sends)."""
    try:
        settings = _settings({**options, "dry_run": True})
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
            window=settings.strategy.funding_window_hours * 3_600,
            limits=Limits(),
        )
        decision = decide(state, [view], settings.strategy)
    except (UserError, SignerError) as err:
        _fail(str(err))
    except (RpcUnavailable, ChainReadError, SourceError) as err:
        _fail(str(err), 3)
    sig = decision.signals
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
        "parked": sig.parked,
        "tx_in_flight": snap.tx_in_flight,
        "would": type(decision.action).__name__,
        "because": decision.reason,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            click.echo(f"{key:>26}  {value}")


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
    cli()


if __name__ == "__main__":
    main()
