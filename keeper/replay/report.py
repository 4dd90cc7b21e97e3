"""The yield report of a replay: what the vault earned, what an always-hedged position
would have earned, where the difference went, and a check that the items add up.

All figures are in the asset's whole units (USD for USDC) or as fractions of the starting
NAV; APYs are compounded (share price ratio to the power of year / duration). The gross
carry is an always-hedged short at the target leverage's exposure
(NAV x L / (L + 1), rebalanced to NAV every step, no costs, never parked). The capture ratio
is net APY / gross carry APY: parking through negative funding can beat 100 %.

The reconciliation adds, in asset wei, funding, the legs' price PnL and every trading cost,
and compares the sum with the gross NAV change; vault fees are the rest of the way to the
share price. Borrow costs are zero: the hedge is a stable-margined short (margin is the
asset itself) and the spot leg is bought outright, so nothing is borrowed. Gas is paid by
the keeper's account, not by the vault, so it is itemised but not in the share price.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from keeper.replay.driver import YEAR, ReplayResult

RECONCILE_TOLERANCE_BPS = 1.0


def _when(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _apy(growth: float, seconds: int) -> float:
    if seconds <= 0 or growth <= 0:
        return 0.0
    return float(growth ** (YEAR / seconds) - 1)


def max_drawdown(values: list[float]) -> float:
    """The largest fall from a running peak, as a fraction of that peak (>= 0)."""
    peak, worst = float("-inf"), 0.0
    for v in values:
        peak = max(peak, v)
        if peak > 0:
            worst = max(worst, (peak - v) / peak)
    return worst


def build_report(r: ReplayResult) -> dict[str, Any]:
    """The report as plain data (what the JSON holds and the table prints)."""
    c = r.costs
    unit = r.config.venue.asset_unit
    nav0 = r.nav_start
    seconds = r.end - r.start
    pps0, pps1 = r.share_price_start, r.share_price_end
    net_apy = _apy(pps1 / pps0, seconds)
    carry_apy = _apy(r.carry_growth, seconds)
    trading = c.spot_fees + c.spot_impact + c.perp_fees + c.perp_impact
    items = c.funding + c.spot_pnl + c.perp_pnl - trading - c.liquidation_loss
    nav_change = r.nav_end - nav0
    residual = nav_change - items
    # vault fees: the gap between the gross NAV per starting share and the share price
    gross_pps1 = r.nav_end * 10**6 / r.supply_start
    fee_drag = gross_pps1 - pps1
    pps_change_bps = (pps1 / pps0 - 1) * 10_000
    items_pps_bps = (items / nav0 - fee_drag / pps0) * 10_000
    gas_eth = c.gas_units * r.config.gas_gwei * 1e-9
    gas_usd = gas_eth * r.config.eth_price_usd
    margins = [s.margin_ratio_bps for s in r.steps if s.margin_ratio_bps is not None]

    def money(wei: int) -> float:
        return wei / unit

    def bps(wei: float) -> float:
        return wei / nav0 * 10_000

    costs = {
        "spot_pool_fees": money(c.spot_fees),
        "spot_price_impact": money(c.spot_impact),
        "perp_taker_fees": money(c.perp_fees),
        "perp_price_impact": money(c.perp_impact),
        "funding_paid_while_negative": money(c.funding_paid),
        "vault_fees": fee_drag * r.supply_start / 10**6 / unit,
        "liquidation_loss": money(c.liquidation_loss),
        "borrow": 0.0,
        "gas_usd_paid_by_keeper": gas_usd,
    }
    return {
        "window": {
            "from": _when(r.start),
            "to": _when(r.end),
            "days": seconds / 86_400,
            "steps": len(r.steps),
        },
        "deposit": money(nav0),
        "share_price": {"start": pps0, "end": pps1},
        "net_apy": net_apy,
        "net_apy_after_gas": _apy((pps1 - gas_usd / money(nav0) * pps0) / pps0, seconds),
        "gross_carry_apy": carry_apy,
        "gross_carry_simple": r.carry_simple,
        "capture_ratio": net_apy / carry_apy if carry_apy else None,
        "funding": {
            "net": money(c.funding),
            "received": money(c.funding_received),
            "paid": money(c.funding_paid),
        },
        "costs": costs,
        "costs_bps_of_deposit": {k: bps(v * unit) for k, v in costs.items() if k != "gas_usd_paid_by_keeper"},
        "hedge_pnl": {
            "spot": money(c.spot_pnl),
            "perp": money(c.perp_pnl),
            "net": money(c.spot_pnl + c.perp_pnl),
        },
        "rebalances": {"total": sum(r.rebalances.values()), **r.rebalances},
        "reverts": len(r.reverts),
        "revert_reasons": r.reverts[:10],
        "liquidations": r.liquidations,
        "time_parked_fraction": r.parked_seconds / seconds if seconds else 0.0,
        "min_margin_ratio_bps": min(margins) if margins else None,
        "max_drawdown": max_drawdown([s.share_price for s in r.steps] + [pps1]),
        "reconciliation": {
            "nav_change": money(nav_change),
            "items_sum": money(items),
            "residual_wei": residual,
            "residual_bps": bps(residual),
            "share_price_change_bps": pps_change_bps,
            "items_share_price_bps": items_pps_bps,
            "share_price_residual_bps": pps_change_bps - items_pps_bps,
            "ok": abs(pps_change_bps - items_pps_bps) < RECONCILE_TOLERANCE_BPS
            and abs(bps(residual)) < RECONCILE_TOLERANCE_BPS,
        },
        "borrow_note": "borrow costs 0: the hedge is a stable-margined short and spot is bought outright",
        "gas_note": (
            f"gas at {r.config.gas_gwei:g} gwei and ETH {r.config.eth_price_usd:g} USD, paid by the keeper "
            "account (not in the share price)"
        ),
        "capped_funding_prints": r.capped_prints,
        "data": [line for rep in r.reports for line in rep.summary()],
        "notes": r.notes,
        "mode": r.mode,
        "scenario": r.scenario,
        "run_seconds": r.seconds,
        "setup_seconds": r.setup_seconds,
        "steps_per_second": len(r.steps) / r.seconds if r.seconds else None,
    }


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False)


def table(report: dict[str, Any]) -> str:
    """The report as a terminal table."""
    w = report["window"]
    rec = report["reconciliation"]
    lines = [
        f"replay {w['from']} -> {w['to']} UTC ({w['days']:.1f} days, {w['steps']} steps), "
        f"deposit {report['deposit']:,.0f}",
    ]
    lines += [f"  data: {line}" for line in report["data"]]
    lines += [f"  note: {note}" for note in report["notes"]]
    capture = report["capture_ratio"]
    rows = [
        ("net APY (share price)", f"{report['net_apy']:+.2%}"),
        ("net APY after keeper gas", f"{report['net_apy_after_gas']:+.2%}"),
        ("gross carry APY (always hedged)", f"{report['gross_carry_apy']:+.2%}"),
        ("capture ratio", "n/a" if capture is None else f"{capture:.1%}"),
        ("share price", f"{report['share_price']['start']:.6f} -> {report['share_price']['end']:.6f}"),
        (
            "funding received / paid",
            f"{report['funding']['received']:,.2f} / {report['funding']['paid']:,.2f}",
        ),
        ("hedge PnL (spot + perp)", f"{report['hedge_pnl']['net']:,.2f}"),
    ]
    bps = report["costs_bps_of_deposit"]
    for name, amount in report["costs"].items():
        label = "cost: " + name.replace("_", " ")
        extra = "" if name not in bps else f"  ({bps[name]:.2f} bps)"
        rows.append((label, f"{amount:,.2f}{extra}"))
    rb = report["rebalances"]
    kinds = ", ".join(f"{k} {v}" for k, v in rb.items() if k != "total")
    rows += [
        ("rebalances", f"{rb['total']} ({kinds or 'none'}); reverts {report['reverts']}"),
        ("liquidations", str(report["liquidations"])),
        ("time parked", f"{report['time_parked_fraction']:.1%}"),
        (
            "min margin ratio",
            "n/a" if report["min_margin_ratio_bps"] is None else f"{report['min_margin_ratio_bps']} bps",
        ),
        ("max drawdown (share price)", f"{report['max_drawdown']:.3%}"),
        (
            "reconciliation",
            f"NAV {rec['nav_change']:+,.2f} = items {rec['items_sum']:+,.2f}, "
            f"residual {rec['residual_wei']} wei; share price {rec['share_price_change_bps']:+.3f} bps "
            f"vs items {rec['items_share_price_bps']:+.3f} bps -> {'OK' if rec['ok'] else 'MISMATCH'}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    lines.append(f"  {report['borrow_note']}; {report['gas_note']}")
    if report["capped_funding_prints"]:
        lines.append(f"  {report['capped_funding_prints']} funding prints capped at the market's bound")
    sps = report["steps_per_second"]
    lines.append(
        f"  {report['mode']} replay: {report['run_seconds']:.2f} s" + (f", {sps:,.0f} steps/s" if sps else "")
    )
    return "\n".join(lines)
