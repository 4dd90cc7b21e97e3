"""The keeper's Prometheus metrics (served on `BASIS_KEEPER_METRICS_PORT`).

One registry per keeper, so tests and the replay can run several without clashing.
Alert on: `basis_keeper_circuit_open == 1`, `time() - basis_keeper_last_success_timestamp`
above a few intervals, `basis_keeper_margin_ratio_bps` near the hedge's critical ratio, and
any increase of `basis_keeper_alerts_total` (or of `basis_keeper_liquidations_total`, which
also counts as an alert).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.nav = Gauge("basis_keeper_nav_asset", "Vault NAV (totalAssets), whole asset units", registry=r)
        self.share_price = Gauge("basis_keeper_share_price", "Assets per whole share", registry=r)
        self.delta_bps = Gauge("basis_keeper_delta_bps", "(spot - short) value / NAV, bps", registry=r)
        self.margin_ratio_bps = Gauge(
            "basis_keeper_margin_ratio_bps", "Perp equity / notional, bps (-1 when flat)", registry=r
        )
        self.funding = Gauge(
            "basis_keeper_funding_rate_per_hour",
            "Latest funding rate per hour by venue",
            ["venue"],
            registry=r,
        )
        self.expected_funding = Gauge(
            "basis_keeper_expected_funding_per_hour",
            "Smoothed expected funding the strategy used",
            registry=r,
        )
        self.actions = Counter(
            "basis_keeper_actions_total", "Transactions sent, by kind", ["kind"], registry=r
        )
        self.errors = Counter(
            "basis_keeper_errors_total", "Failed ticks, by error kind", ["kind"], registry=r
        )
        self.alerts = Counter(
            "basis_keeper_alerts_total", "Conditions an operator should look at", registry=r
        )
        self.liquidations = Counter(
            "basis_keeper_liquidations_total",
            "Liquidations of the hedge's short the keeper found (each also an alert)",
            registry=r,
        )
        self.last_success = Gauge(
            "basis_keeper_last_success_timestamp", "Unix time of the last successful tick", registry=r
        )
        self.stuck_tx = Gauge(
            "basis_keeper_stuck_tx", "1 while a keeper transaction is pending past its bound", registry=r
        )
        self.consecutive_failures = Gauge(
            "basis_keeper_consecutive_failures", "Failed ticks in a row", registry=r
        )
        self.circuit_open = Gauge(
            "basis_keeper_circuit_open", "1 while the circuit breaker is open", registry=r
        )
        self.rpc_round_trips = Counter(
            "basis_keeper_rpc_round_trips_total", "JSON-RPC requests made", registry=r
        )
        self.tick_seconds = Gauge("basis_keeper_tick_seconds", "Wall time of the last tick", registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
