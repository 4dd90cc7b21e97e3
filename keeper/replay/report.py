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

The trades' side (`cost_basis`, `entry_basis`) and the market's side (`basis_spread`):

- cost basis: the volume-weighted average price of the base the vault's swaps bought
  (asset paid / base received, so the pool fee is in it) and of the perp sells (the vault
  is never long the perp, so every sell opens or grows the short; the fill price, the
  taker fee is a separate cost), each next to the oracle averaged over the same volume;
- basis at entry: per "enter" rebalance (parked -> hedged), the short's average fill
  minus the spot's average fill, over the spot fill, in bps: what the hedge locked in
  beyond the funding, positive when the short was sold above the spot bought;
- basis spread: per step, (perp mark - spot pool mid) / spot mid in bps, with the mid read
  when the oracle had just moved and before the arbitrage: the perp's premium over its
  index (when the replay has one) plus how far the spot pool lags the oracle, a gap
  arbitrage closes at every step. Given per step, not annualised. The vault trades after
  the arbitrage: what it paid is in the cost basis.
- basis PnL: the short's value at the mark less its value at the index, as it changes
  between trades: what the premium's moves made or cost (shorting rich and buying back
  cheap gains). The premium's source (measured, modelled or none) is in `premium`.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from keeper.core.fixed import PRICE_UNIT, SIZE_UNIT
from keeper.replay.driver import YEAR, ReplayResult, Trade

RECONCILE_TOLERANCE_BPS = 1.0
ENTRIES_LISTED = 10  # the basis at entry lists this many entries in the JSON
BORROW_NOTE = "nothing borrowed: the hedge is a stable-margined short and spot is bought outright"


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


@dataclass
class _Leg:
    """Volume-weighted sums of one side's trades: `qty` in base wei (size units for the
    perp), `paid` the price-times-quantity sum in asset units per base unit x qty."""

    qty: int = 0
    paid: Fraction = Fraction(0)
    oracle: Fraction = Fraction(0)
    count: int = 0

    def add(self, qty: int, price: Fraction, oracle_e8: int) -> None:
        self.qty += qty
        self.paid += price * qty
        self.oracle += Fraction(oracle_e8, PRICE_UNIT) * qty
        self.count += 1

    @property
    def avg(self) -> Fraction | None:
        return self.paid / self.qty if self.qty else None

    @property
    def oracle_avg(self) -> Fraction | None:
        return self.oracle / self.qty if self.qty else None


def _spot_buys(r: ReplayResult, trades: list[Trade]) -> _Leg:
    """The base the vault's swaps bought (asset in, base out), at asset units per base unit."""
    v = r.config.venue
    leg = _Leg()
    for t in trades:
        for s in t.swaps:
            if not s.base_in and s.amount_out > 0:
                price = Fraction(s.amount_in * v.base_unit, s.amount_out * v.asset_unit)
                leg.add(s.amount_out, price, t.oracle_e8)
    return leg


def _short_sells(trades: list[Trade]) -> _Leg:
    """The perp sells (size_delta < 0): the vault is never long, so each opens or grows the short."""
    leg = _Leg()
    for t in trades:
        for f in t.fills:
            if f.size_delta < 0:
                leg.add(-f.size_delta, Fraction(f.fill_price_e8, PRICE_UNIT), t.oracle_e8)
    return leg


def _f(x: Fraction | None) -> float | None:
    return None if x is None else float(x)


def _vs(price: Fraction | None, ref: Fraction | None) -> float | None:
    """`price` against `ref` in bps."""
    return None if price is None or not ref else float((price / ref - 1) * 10_000)


def cost_basis(r: ReplayResult) -> dict[str, Any]:
    """Average cost basis of the spot leg (base bought) and of the short (perp sells), in
    asset units per base unit, with the oracle averaged over the same volume."""
    spot, short = _spot_buys(r, r.trades), _short_sells(r.trades)
    return {
        "spot": {
            "avg_price": _f(spot.avg),
            "oracle_avg_price": _f(spot.oracle_avg),
            "vs_oracle_bps": _vs(spot.avg, spot.oracle_avg),
            "base_bought": spot.qty / r.config.venue.base_unit,
            "swaps": spot.count,
        },
        "short": {
            "avg_price": _f(short.avg),
            "oracle_avg_price": _f(short.oracle_avg),
            "vs_oracle_bps": _vs(short.avg, short.oracle_avg),
            "base_sold": short.qty / SIZE_UNIT,
            "fills": short.count,
        },
        "note": (
            "volume-weighted: spot = asset paid / base received by the vault's buys (pool fee "
            "included); short = fill price of the perp sells (taker fee separate)"
        ),
    }


def entry_basis(r: ReplayResult) -> dict[str, Any]:
    """Per "enter" rebalance: (short's average fill - spot's average fill) / spot fill, bps."""
    entries: list[dict[str, Any]] = []
    values: list[float] = []
    for t in r.trades:
        if t.kind != "enter":
            continue
        spot, short = _spot_buys(r, [t]).avg, _short_sells([t]).avg
        if spot is None or short is None:
            continue  # an entry with only one leg to trade has no basis of its own
        values.append(float((short - spot) / spot * 10_000))
        entries.append(
            {
                "time": _when(t.time),
                "spot_price": float(spot),
                "short_price": float(short),
                "oracle_price": t.oracle_e8 / PRICE_UNIT,
                "bps": values[-1],
            }
        )
    return {
        "entries": len(entries),
        "mean_bps": statistics.fmean(values) if values else None,
        "min_bps": min(values) if values else None,
        "max_bps": max(values) if values else None,
        "first": entries[:ENTRIES_LISTED],
    }


def spread_series(r: ReplayResult) -> list[float]:
    """Per step: (perp mark - spot pool mid before the arbitrage) / spot mid, bps."""
    return [
        (s.price_e8 * (1 + s.premium_e18 / 10**18) - s.pool_price_before_arb_e8)
        / s.pool_price_before_arb_e8
        * 10_000
        for s in r.steps
        if s.pool_price_before_arb_e8 > 0
    ]


def basis_spread(r: ReplayResult) -> dict[str, Any]:
    """The per-step spread's mean, standard deviation and largest magnitude (module doc)."""
    spreads = spread_series(r)
    worst = max(range(len(spreads)), key=lambda i: abs(spreads[i])) if spreads else None
    return {
        "steps": len(spreads),
        "mean_bps": statistics.fmean(spreads) if spreads else None,
        "stdev_bps": statistics.stdev(spreads) if len(spreads) > 1 else None,
        "max_abs_bps": abs(spreads[worst]) if worst is not None else None,
        "max_abs_at": _when(r.steps[worst].time) if worst is not None else None,
        "note": (
            "perp mark (the oracle x (1 + premium)) vs the spot pool mid before arbitrage: the "
            "premium plus the pool's lag behind the oracle, closed every step; per step, not annualised"
        ),
    }


def data_label(r: ReplayResult) -> str:
    """The input files' names, or what the input was."""
    names = [Path(rep.path).name for rep in r.reports]
    if names:
        return " + ".join(names)
    return r.scenario or "in-memory series"


def margin_minimum(r: ReplayResult) -> dict[str, Any]:
    """The lowest margin ratio: at the steps (after the keeper's action, at the step's
    price) and at the bars' adverse extremes in between (where the price file has bars)."""
    at_steps = [(s.margin_ratio_bps, s.time) for s in r.steps if s.margin_ratio_bps is not None]
    close = min(at_steps) if at_steps else None
    extreme = min((ratio, t) for t, ratio in r.extreme_ratios) if r.extreme_ratios else None
    candidates = [x for x in (close, extreme) if x is not None]
    worst = min(candidates) if candidates else None
    return {
        "min_margin_ratio_bps": worst[0] if worst else None,
        "min_margin_ratio_at": _when(worst[1]) if worst else None,
        "min_margin_ratio_steps_bps": close[0] if close else None,
        "min_margin_ratio_intrabar_bps": extreme[0] if extreme else None,
        "intrabar_checks": len(r.extreme_ratios),
    }


def verdict(r: ReplayResult, reconciled: bool) -> str:
    """OK, or why the run's figures are not what a depositor would have got."""
    if r.liquidations:
        return "INVALID: liquidated"
    return "OK" if reconciled else "MISMATCH"


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
    items = c.funding + c.spot_pnl + c.perp_pnl + c.basis_pnl - trading - c.liquidation_loss
    nav_change = r.nav_end - nav0
    residual = nav_change - items
    # vault fees: the gap between the gross NAV per starting share and the share price
    gross_pps1 = r.nav_end * 10**6 / r.supply_start
    fee_drag = gross_pps1 - pps1
    pps_change_bps = (pps1 / pps0 - 1) * 10_000
    gas_eth = c.gas_units * r.config.gas_gwei * 1e-9
    gas_usd = gas_eth * r.config.eth_price_usd

    def money(wei: int) -> float:
        return wei / unit

    def bps(wei: float) -> float:
        return wei / nav0 * 10_000

    # what the share price paid, each line once: funding is net (what was paid while it
    # was negative is inside it, so it is no cost line), gas is the keeper's
    costs = {
        "spot_pool_fees": money(c.spot_fees),
        "spot_price_impact": money(c.spot_impact),
        "perp_taker_fees": money(c.perp_fees),
        "perp_price_impact": money(c.perp_impact),
        "vault_fees": fee_drag * r.supply_start / 10**6 / unit,
        "liquidation_loss": money(c.liquidation_loss),
        "borrow": 0.0,
        "gas_usd_paid_by_keeper": gas_usd,
    }
    cost_lines = [v for k, v in costs.items() if k != "gas_usd_paid_by_keeper"]
    basis_pnl = money(c.basis_pnl)  # the short at the mark less at the index: the premium's moves
    hedge_pnl = money(c.spot_pnl + c.perp_pnl)
    # funding + hedge PnL + basis PnL - the cost lines, in bps of the deposit: the share price
    items_pps_bps = (money(c.funding) + hedge_pnl + basis_pnl - sum(cost_lines)) / money(nav0) * 10_000
    ok = (
        abs(pps_change_bps - items_pps_bps) < RECONCILE_TOLERANCE_BPS
        and abs(bps(residual)) < RECONCILE_TOLERANCE_BPS
    )
    passive = r.passive
    passive_apy = (
        None
        if passive is None
        else _apy(passive.share_price_end / passive.share_price_start, passive.seconds)
    )
    return {
        "window": {
            "from": _when(r.start),
            "to": _when(r.end),
            "days": seconds / 86_400,
            "steps": len(r.steps),
        },
        "deposit": money(nav0),
        "share_price": {"start": pps0, "end": pps1},
        "verdict": verdict(r, ok),
        "net_apy": net_apy,
        "net_apy_after_gas": _apy((pps1 - gas_usd / money(nav0) * pps0) / pps0, seconds),
        "gross_carry_apy": carry_apy,
        "gross_carry_simple": r.carry_simple,
        "capture_ratio": net_apy / carry_apy if carry_apy else None,
        "passive_net_apy": passive_apy,
        "excess_vs_passive": None if passive_apy is None else net_apy - passive_apy,
        "mean_short_to_nav": r.mean_short_to_nav,
        "passive": None
        if passive is None
        else {
            "net_apy": passive_apy,
            "mean_short_to_nav": passive.mean_short_to_nav,
            "time_parked_fraction": passive.time_parked_fraction,
            "liquidations": passive.liquidations,
            "mode": passive.mode,
            "note": "the same replay with parking off (park rate below any the market takes)"
            + ("; this run never parks: it is its own passive" if passive.same_run else "")
            + ("; run in model mode on the same inputs" if passive.mode != r.mode else ""),
        },
        "funding": {
            "net": money(c.funding),
            "received": money(c.funding_received),
            "paid": money(c.funding_paid),
            "paid_while_negative_note": "inside net funding: not a cost line",
        },
        "basis_pnl": basis_pnl,
        "premium": {
            "source": r.premium or "none: the perp marked at its index",
            "kind": "none"
            if r.premium is None
            else "modelled"
            if r.premium.startswith("modelled")
            else "measured",
        },
        "costs": costs,
        "costs_bps_of_deposit": {k: bps(v * unit) for k, v in costs.items() if k != "gas_usd_paid_by_keeper"},
        "hedge_pnl": {
            "spot": money(c.spot_pnl),
            "perp": money(c.perp_pnl),
            "net": hedge_pnl,
        },
        "rebalances": {"total": sum(r.rebalances.values()), **r.rebalances},
        "reverts": len(r.reverts),
        "revert_reasons": r.reverts[:10],
        "liquidations": [
            {"time": x.time, "when": _when(x.time), "size": x.size / SIZE_UNIT, "loss": money(x.loss)}
            for x in r.liquidations
        ],
        "gaps": [{"from": _when(g.start), "to": _when(g.end), "hours": g.hours} for g in r.gaps],
        "max_unhedged_hours": r.max_unhedged_hours,
        "time_parked_fraction": r.parked_seconds / seconds if seconds else 0.0,
        **margin_minimum(r),
        "max_drawdown": max_drawdown([s.share_price for s in r.steps] + [pps1]),
        "reconciliation": {
            "nav_change": money(nav_change),
            "items_sum": money(items),
            "residual_wei": residual,
            "residual_bps": bps(residual),
            "share_price_change_bps": pps_change_bps,
            "items_share_price_bps": items_pps_bps,
            "share_price_residual_bps": pps_change_bps - items_pps_bps,
            "ok": ok,
            "note": "funding (net) + hedge PnL + basis PnL - the cost lines = the share price change",
        },
        "cost_basis": cost_basis(r),
        "basis_at_entry": entry_basis(r),
        "basis_spread": basis_spread(r),
        "borrow_note": f"borrow costs 0: {BORROW_NOTE}",
        "gas_note": (
            f"gas at {r.config.gas_gwei:g} gwei and ETH {r.config.eth_price_usd:g} USD, paid by the keeper "
            "account (not in the share price)"
        ),
        "capped_funding_prints": r.capped_prints,
        "data": [line for rep in r.reports for line in rep.summary()],
        "data_label": data_label(r),
        "notes": r.notes,
        "mode": r.mode,
        "scenario": r.scenario,
        "run_seconds": r.seconds,
        "setup_seconds": r.setup_seconds,
        "steps_per_second": len(r.steps) / r.seconds if r.seconds else None,
    }


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False)


def _leg_row(leg: dict[str, Any], qty: float, what: str) -> str:
    if leg["avg_price"] is None:
        return f"n/a (no {what})"
    return (
        f"{leg['avg_price']:,.2f} vs oracle {leg['oracle_avg_price']:,.2f} "
        f"({leg['vs_oracle_bps']:+.2f} bps); {qty:,.4f} base in {leg[what]} {what}"
    )


def _margin_row(report: dict[str, Any]) -> str:
    low = report["min_margin_ratio_bps"]
    if low is None:
        return "n/a"
    text = f"{low} bps ({report['min_margin_ratio_at']})"
    if report["intrabar_checks"]:
        text += (
            f"; at the steps {report['min_margin_ratio_steps_bps']} bps, at the bars' adverse extremes "
            f"{report['min_margin_ratio_intrabar_bps']} bps"
        )
    else:
        text += "; at the steps only (the price series has no high/low)"
    return text


def _verdict_text(report: dict[str, Any]) -> str:
    text = str(report["verdict"])
    if text.startswith("INVALID"):
        lost = sum(x["loss"] for x in report["liquidations"])
        text += (
            f" ({len(report['liquidations'])} liquidation(s), NAV {-lost:+,.2f}; the items "
            f"{'add up' if report['reconciliation']['ok'] else 'do NOT add up'}, but a liquidated hedge "
            "is not the strategy the figures describe)"
        )
    return text


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
    passive = report["passive"]
    rows = [
        ("net APY (share price)", f"{report['net_apy']:+.2%}"),
        ("net APY after keeper gas", f"{report['net_apy_after_gas']:+.2%}"),
        ("gross carry APY (always hedged)", f"{report['gross_carry_apy']:+.2%}"),
        ("capture ratio", "n/a" if capture is None else f"{capture:.1%}"),
    ]
    if passive is not None:
        rows += [
            (
                "passive hedge APY (never parks)",
                f"{report['passive_net_apy']:+.2%}, mean short/NAV {passive['mean_short_to_nav']:.3f}"
                + (f" ({passive['mode']} mode)" if passive["mode"] != report["mode"] else ""),
            ),
            ("excess vs passive", f"{report['excess_vs_passive'] * 100:+.2f} APY points"),
        ]
    rows += [
        ("mean short / NAV", f"{report['mean_short_to_nav']:.3f}"),
        ("share price", f"{report['share_price']['start']:.6f} -> {report['share_price']['end']:.6f}"),
        ("funding net", f"{report['funding']['net']:,.2f}"),
        (
            "  of which paid while negative",
            f"{report['funding']['paid']:,.2f} (inside net funding; not a cost line), "
            f"received {report['funding']['received']:,.2f}",
        ),
        ("hedge PnL (spot + perp)", f"{report['hedge_pnl']['net']:,.2f}"),
        ("basis PnL", f"{report['basis_pnl']:,.2f} (premium {report['premium']['source']})"),
    ]
    bps = report["costs_bps_of_deposit"]
    for name, amount in report["costs"].items():
        label = "cost: " + name.replace("_", " ")
        extra = "" if name not in bps else f"  ({bps[name]:.2f} bps)"
        if name == "borrow":
            extra += f"  {BORROW_NOTE}"
        rows.append((label, f"{amount:,.2f}{extra}"))
    cb = report["cost_basis"]
    rows += [
        ("spot leg avg cost (buys)", _leg_row(cb["spot"], cb["spot"]["base_bought"], "swaps")),
        ("short leg avg price (sells)", _leg_row(cb["short"], cb["short"]["base_sold"], "fills")),
    ]
    entry = report["basis_at_entry"]
    rows.append(
        (
            "basis at entry (short - spot)",
            "n/a (no entries)"
            if entry["mean_bps"] is None
            else f"mean {entry['mean_bps']:+.2f} bps over {entry['entries']} entries "
            f"(min {entry['min_bps']:+.2f}, max {entry['max_bps']:+.2f})",
        )
    )
    spread = report["basis_spread"]
    rows.append(
        (
            "basis spread (perp mark - spot mid)",
            "n/a"
            if spread["mean_bps"] is None
            else f"mean {spread['mean_bps']:+.2f} bps, stdev "
            + ("n/a" if spread["stdev_bps"] is None else f"{spread['stdev_bps']:.2f}")
            + f" bps, max |{spread['max_abs_bps']:.2f}| bps per step"
            + " (premium + the pool's lag before arbitrage)",
        )
    )
    rb = report["rebalances"]
    kinds = ", ".join(f"{k} {v}" for k, v in rb.items() if k != "total")
    rows += [
        ("rebalances", f"{rb['total']} ({kinds or 'none'}); reverts {report['reverts']}"),
        (
            "liquidations",
            "; ".join(
                f"{x['when']}: {x['size']:g} closed, NAV {-x['loss']:+,.2f}" for x in report["liquidations"]
            )
            or "none",
        ),
        (
            "longest unhedged stretch",
            f"{report['max_unhedged_hours']:g} h (delta above the rule, not parked)",
        ),
        ("time parked", f"{report['time_parked_fraction']:.1%}"),
        ("min margin ratio", _margin_row(report)),
        ("max drawdown (share price)", f"{report['max_drawdown']:.3%}"),
    ]
    if report["gaps"]:
        longest = max(report["gaps"], key=lambda g: g["hours"])
        rows.append(
            (
                "funding gaps replayed through",
                f"{len(report['gaps'])}, the longest {longest['hours']:g} h "
                f"({longest['from']} -> {longest['to']}), the last rate held",
            )
        )
    rows.append(
        (
            "reconciliation",
            f"NAV {rec['nav_change']:+,.2f} = items {rec['items_sum']:+,.2f}, "
            f"residual {rec['residual_wei']} wei; share price {rec['share_price_change_bps']:+.3f} bps "
            f"vs funding + hedge + basis - costs {rec['items_share_price_bps']:+.3f} bps "
            f"-> {_verdict_text(report)}",
        )
    )
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    lines.append(f"  {report['gas_note']}")
    if report["capped_funding_prints"]:
        lines.append(f"  {report['capped_funding_prints']} funding prints capped at the market's bound")
    sps = report["steps_per_second"]
    lines.append(
        f"  {report['mode']} replay: {report['run_seconds']:.2f} s" + (f", {sps:,.0f} steps/s" if sps else "")
    )
    return "\n".join(lines)
