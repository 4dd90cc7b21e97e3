"""The keeper's tick and its long-running loop.

One tick: read the vault, its hedge, the venue and the keeper's nonces at one block (two
requests),
build the funding views (the reference market's from chain, other venues over HTTP),
ask the strategy, and send what it decides (unless dry-running). A tick never trusts
memory for what was done: a transaction still in flight makes the tick wait, and the
strategy reads whether the vault is parked from chain.

The loop survives faults: a failed tick is logged, counted and retried next interval;
after `max_failures` in a row the circuit breaker opens (alert in the log and the
`basis_keeper_circuit_open` metric) and the keeper only probes once per `cooldown`
until a tick succeeds again, instead of hammering a broken node or venue; sooner
(`urgent_cooldown`) when the last margin ratio it saw was below the strategy's band, since
risk, not the outage, decides how long the vault can wait.

A keeper transaction pending for more than `stuck_tx_seconds` (a fee spike, a dropped
transaction) is an alert (`basis_keeper_stuck_tx 1`, `ALERT:` in the log) and is replaced:
the same nonce at a higher fee, carrying what the strategy decides now (or a 0-value
transfer to ourselves when it decides to hold), so a critical action is never blocked
behind a stale one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from keeper.bot.metrics import Metrics
from keeper.bot.reference import ReferenceHistory
from keeper.bot.strategy import Decision, EmergencyDeleverage, Hold, Rebalance, Settings, Unwind, decide
from keeper.chain.abi import emergency_calldata, rebalance_calldata, unwind_calldata
from keeper.chain.executor import ActionRejected, Executor, Sent, TxFailed
from keeper.chain.reader import Addresses, ChainReadError, Snapshot, StaticInfo, read_snapshot
from keeper.core.errors import SourceError
from keeper.core.rules import VaultRules
from keeper.core.state import VaultState
from keeper.data.records import FundingView, Limits
from keeper.model.vault import DECIMALS_OFFSET
from keeper.net.rpc import Rpc, RpcError, RpcUnavailable

log = logging.getLogger("keeper")

MAX_UINT = 2**256 - 1
# What a tick survives: the node, a venue or the chain said no; anything else is a bug
# and stops the process (a supervisor restarts it, and a restart is safe).
TRANSIENT = (RpcUnavailable, RpcError, ChainReadError, TxFailed, ActionRejected, SourceError)


def vault_state(static: StaticInfo, snap: Snapshot) -> VaultState:
    pos = snap.position
    return VaultState(
        block_timestamp=snap.block_timestamp,
        asset_decimals=static.asset_decimals,
        base_decimals=static.base_decimals,
        rules=VaultRules(**static.rules),
        paused=snap.paused,
        shutdown=snap.is_shutdown,
        last_rebalance_time=snap.last_rebalance_time,
        nav=snap.total_assets,
        idle=snap.idle,
        spot_base=snap.spot_base,
        short_size=snap.short_size,
        booked_short=snap.booked_short,
        budget_window_start=snap.budget_window_start,
        budget_nav=snap.budget_nav,
        budget_spent=snap.budget_spent,
        oracle_price_e8=snap.oracle_answer,
        oracle_updated_at=snap.oracle_updated_at,
        asset_price_e8=snap.asset_answer,
        asset_updated_at=snap.asset_updated_at,
        perp_size=pos["size"],
        perp_margin=pos["margin"],
        perp_accrued_funding=pos["accrued_funding"],
        perp_unrealized_pnl=pos["unrealized_pnl"],
        perp_equity=pos["equity"],
        margin_ratio_bps=None if pos["margin_ratio_bps"] == MAX_UINT else pos["margin_ratio_bps"],
        funding_rate=snap.funding_rate,
        taker_fee_ppm=static.taker_fee_ppm,
        initial_margin_bps=static.initial_margin_bps,
        maintenance_margin_bps=static.maintenance_margin_bps,
        perp_depth=snap.perp_depth,
        perp_premium_e18=snap.premium,
        pool_reserve_base=snap.reserve_base,
        pool_reserve_asset=snap.reserve_asset,
        pool_fee_bps=static.spot_fee_bps,
    )


def action_kind(action: Rebalance | EmergencyDeleverage | Unwind) -> str:
    """The metric label (and the replay's record) of a transaction the keeper sends."""
    if isinstance(action, Rebalance):
        return str(action.intent)
    return "unwind" if isinstance(action, Unwind) else "emergency_deleverage"


@dataclass(frozen=True)
class TickReport:
    block: int | None
    decision: Decision | None
    sent: Sent | None
    error: str | None
    round_trips: int
    cpu_seconds: float

    @property
    def acted(self) -> bool:
        return self.sent is not None

    @property
    def summary(self) -> str:
        if self.error:
            return f"error: {self.error}"
        assert self.decision is not None
        kind = type(self.decision.action).__name__
        done = f" -> {self.sent.tx_hash}" if self.sent else ""
        return f"block {self.block}: {kind}: {self.decision.reason}{done}"


class Keeper:
    def __init__(
        self,
        rpc: Rpc,
        addresses: Addresses,
        static: StaticInfo,
        reference: ReferenceHistory,
        settings: Settings,
        *,
        executor: Executor | None = None,
        other_venues: Sequence[Callable[[], FundingView]] = (),
        metrics: Metrics | None = None,
        limits: Limits | None = None,
        deadline_seconds: int = 600,
        max_failures: int = 5,
        cooldown: float = 300.0,
        urgent_cooldown: float = 30.0,
        stuck_tx_seconds: float = 180.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rpc, self.addresses, self.static, self.reference = rpc, addresses, static, reference
        self.settings, self.executor, self.other_venues = settings, executor, list(other_venues)
        self.metrics = metrics or Metrics()
        self.limits = limits or Limits()
        self.deadline_seconds, self.max_failures, self.cooldown = deadline_seconds, max_failures, cooldown
        self.urgent_cooldown, self.stuck_tx_seconds = urgent_cooldown, stuck_tx_seconds
        self.clock = clock
        self.failures = 0
        self.circuit_open_since: float | None = None
        # the (booked, venue) shorts of the liquidation last alerted on: one alert each
        self.liquidation_seen: tuple[int, int] | None = None
        self.last_margin_ratio_bps: int | None = None
        self.in_flight_since: tuple[int, float] | None = None  # (stuck nonce, first seen)

    # ------------------------------------------------------------------ one tick

    def tick(self) -> TickReport:
        cpu, trips, wall = time.process_time(), self.rpc.round_trips, time.monotonic()
        block: int | None = None
        decision: Decision | None = None
        sent: Sent | None = None
        error: str | None = None
        try:
            snap = read_snapshot(self.rpc, self.addresses)
            block = snap.block_number
            decision = self._decide(snap)
            stuck = self._stuck_nonce(snap)
            if stuck is not None:
                sent = self._replace(decision, snap, stuck)
                replaced = Hold(f"replaced the stuck transaction at nonce {stuck}")
                decision = Decision(replaced, decision.signals)
            elif snap.tx_in_flight:
                decision = Decision(
                    Hold("a keeper transaction is still in flight; waiting for it"), decision.signals
                )
            else:
                sent = self._execute(decision, snap)
        except TRANSIENT as err:
            error = f"{type(err).__name__}: {err}"
            self._failed(type(err).__name__, error)
        else:
            self._succeeded()
        report = TickReport(
            block, decision, sent, error, self.rpc.round_trips - trips, time.process_time() - cpu
        )
        self.metrics.rpc_round_trips.inc(report.round_trips)
        self.metrics.tick_seconds.set(time.monotonic() - wall)
        return report

    def _decide(self, snap: Snapshot) -> Decision:
        state = vault_state(self.static, snap)
        self._check_liquidation(state)
        if snap.funding_rate != self.reference.rate_at(snap.block_timestamp):
            self.reference.sync(self.rpc, self.addresses.perp_market, snap.block_number)
            # what the strategy's windows can see, and a day more: memory stays bounded
            self.reference.prune(snap.block_timestamp, self.settings.history_hours * 3_600 + 86_400)
        views = [
            self.reference.view(
                block_timestamp=snap.block_timestamp,
                funding_rate=snap.funding_rate,
                index_price_e8=snap.oracle_answer,
                window=self.settings.history_hours * 3_600,
                limits=self.limits,
                trailing=self.settings.window_spans,
            )
        ]
        for fetch in self.other_venues:
            try:
                views.append(fetch())
            except SourceError as err:  # one venue down is not the keeper down
                log.warning("funding source skipped: %s", err)
                self.metrics.errors.labels("source").inc()
        decision = decide(state, views, self.settings)
        self._observe(state, decision, views, snap.total_supply)
        return decision

    def _check_liquidation(self, state: VaultState) -> None:
        """The first tick that sees the venue's short below the hedge's books (a
        liquidation nobody has booked yet) alerts; the strategy then restores the hedge,
        whose first call books it (`LiquidationBooked`)."""
        if not state.liquidated:
            self.liquidation_seen = None
            return
        seen = (state.booked_short, state.short_size)
        if seen == self.liquidation_seen:
            return
        self.liquidation_seen = seen
        self.metrics.liquidations.inc()
        self.metrics.alerts.inc()
        log.warning(
            "ALERT: hedge liquidated: the venue's short is %d, the hedge booked %d "
            "(perp equity %d, margin ratio %s bps); restoring the hedge within the rules",
            state.short_size,
            state.booked_short,
            state.perp_equity,
            state.margin_ratio_bps,
        )

    def _stuck_nonce(self, snap: Snapshot) -> int | None:
        """The nonce of our transaction pending past `stuck_tx_seconds`, else None."""
        if not snap.tx_in_flight:
            self.in_flight_since = None
            self.metrics.stuck_tx.set(0)
            return None
        nonce = snap.nonce_latest
        if self.in_flight_since is None or self.in_flight_since[0] != nonce:
            self.in_flight_since = (nonce, self.clock())
        waited = self.clock() - self.in_flight_since[1]
        if waited < self.stuck_tx_seconds or self.executor is None:
            return None
        self.metrics.stuck_tx.set(1)
        self.metrics.alerts.inc()
        log.critical(
            "ALERT: keeper transaction at nonce %d stuck: pending %.0fs (bound %.0fs); replacing it",
            nonce,
            waited,
            self.stuck_tx_seconds,
        )
        return nonce

    def _replace(self, decision: Decision, snap: Snapshot, nonce: int) -> Sent:
        assert self.executor is not None
        action = decision.action
        if isinstance(action, Rebalance):
            label = f"rebalance ({action.intent}), replacing nonce {nonce}"
            deadline = snap.block_timestamp + self.deadline_seconds
            data: str | None = rebalance_calldata(
                action.target_short, action.target_margin, action.max_slippage_bps, deadline
            )
        elif isinstance(action, EmergencyDeleverage):
            label, data = f"emergency_deleverage, replacing nonce {nonce}", emergency_calldata()
        elif isinstance(action, Unwind):
            label, data = f"unwind step, replacing nonce {nonce}", unwind_calldata(action.max_size)
        else:
            label, data = f"cancel of nonce {nonce}", None
        sent = self.executor.replace(label, data, nonce)
        self.in_flight_since = None
        self.metrics.stuck_tx.set(0)
        self.metrics.actions.labels("replacement").inc()
        log.warning("%s mined in block %d", label, sent.block_number)
        return sent

    def _execute(self, decision: Decision, snap: Snapshot) -> Sent | None:
        action = decision.action
        if isinstance(action, Hold):
            if action.alert:
                self.metrics.alerts.inc()
                log.warning("ALERT: %s", action.reason)
            return None
        if isinstance(action, Rebalance):
            label = f"rebalance ({action.intent})"
            deadline = snap.block_timestamp + self.deadline_seconds
            data = rebalance_calldata(
                action.target_short, action.target_margin, action.max_slippage_bps, deadline
            )
        elif isinstance(action, Unwind):
            label, data = "unwind", unwind_calldata(action.max_size)
        else:
            assert isinstance(action, EmergencyDeleverage)
            label, data = "emergency_deleverage", emergency_calldata()
        if self.executor is None:
            log.info("dry run, not sending %s: %s", label, action.reason)
            return None
        log.info("%s: %s", label, action.reason)
        sent = self.executor.send(label, data)
        self.metrics.actions.labels(action_kind(action)).inc()
        log.info("%s mined in block %d, gas %d", label, sent.block_number, sent.gas_used)
        return sent

    def _observe(
        self, state: VaultState, decision: Decision, views: Sequence[FundingView], supply: int
    ) -> None:
        m, unit = self.metrics, Decimal(10) ** state.asset_decimals
        m.nav.set(float(Decimal(state.nav) / unit))
        if supply:  # shares carry DECIMALS_OFFSET more decimals than the asset
            share_unit = unit * 10**DECIMALS_OFFSET
            m.share_price.set(float(Decimal(state.nav) / unit / (Decimal(supply) / share_unit)))
        m.delta_bps.set(decision.signals.delta_bps)
        ratio = decision.signals.margin_ratio_bps
        m.margin_ratio_bps.set(-1 if ratio is None else ratio)
        self.last_margin_ratio_bps = ratio
        for view in views:
            m.funding.labels(view.venue).set(float(view.info.rate_per_hour))
        expected = decision.signals.funding.expected_rate_per_hour
        if expected is not None:
            m.expected_funding.set(float(expected))

    # ------------------------------------------------------------------ the breaker

    def _failed(self, kind: str, error: str) -> None:
        self.failures += 1
        self.metrics.errors.labels(kind).inc()
        self.metrics.consecutive_failures.set(self.failures)
        log.error("tick failed (%d in a row): %s", self.failures, error)
        if self.failures >= self.max_failures and self.circuit_open_since is None:
            self.circuit_open_since = self.clock()
            self.metrics.circuit_open.set(1)
            self.metrics.alerts.inc()
            log.critical(
                "ALERT: circuit breaker open after %d failed ticks; probing every %.1fs%s",
                self.failures,
                self.probe_interval(),
                " (margin ratio below the band)" if self.at_risk() else "",
            )
        elif self.circuit_open_since is not None:
            self.circuit_open_since = self.clock()  # probe failed: wait a full cooldown again

    def _succeeded(self) -> None:
        if self.circuit_open_since is not None:
            log.warning("circuit breaker closed: tick succeeded after %d failures", self.failures)
        self.failures = 0
        self.circuit_open_since = None
        self.metrics.consecutive_failures.set(0)
        self.metrics.circuit_open.set(0)
        self.metrics.last_success.set(self.clock())

    def at_risk(self) -> bool:
        """The last margin ratio seen was below the strategy's band (a thin margin cannot wait)."""
        ratio = self.last_margin_ratio_bps
        return ratio is not None and ratio < self.settings.margin_ratio_low_bps

    def probe_interval(self) -> float:
        return min(self.cooldown, self.urgent_cooldown) if self.at_risk() else self.cooldown

    def should_tick(self) -> bool:
        """False while the breaker is open and its probe interval has not passed."""
        return (
            self.circuit_open_since is None or self.clock() - self.circuit_open_since >= self.probe_interval()
        )

    # ------------------------------------------------------------------ the loop

    def run(
        self, interval: float, stop: threading.Event, on_tick: Callable[[TickReport], None] | None = None
    ) -> None:
        """Tick every `interval` seconds until `stop` is set (SIGINT/SIGTERM set it)."""
        log.info("keeper running: vault %s, every %.1fs", self.addresses.vault, interval)
        while not stop.is_set():
            started = time.monotonic()
            if self.should_tick():
                report = self.tick()
                (on_tick or _log_report)(report)
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
        log.info("keeper stopped")


def _log_report(report: TickReport) -> None:
    log.info(
        "%s (%d round trips, %.1f ms cpu)", report.summary, report.round_trips, report.cpu_seconds * 1000
    )
