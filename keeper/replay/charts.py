"""The replay report's charts, as PNG files (matplotlib, Agg backend: no display needed).

Three figures, each titled with the window and the input's label:

- `share_price_vs_carry.png`: the share price and the cumulative gross carry (the
  always-hedged position the report compares with), both as growth of 1 from the start;
- `funding.png`: the funding rate per step, annualised %, with the parked periods shaded;
- `margin_delta.png`: the margin ratio (bps; absent while parked) and the delta (bps of NAV).

Long replays (an hourly history is ~35k steps) are drawn from at most `MAX_POINTS` points
per line: each bucket of steps keeps its lowest and its highest value, in time order, so
spikes survive the thinning. The parked shading is drawn from every step.
"""

from __future__ import annotations

import itertools
import re
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from keeper.replay.driver import ReplayResult

MAX_POINTS = 4_000
HOURS_PER_YEAR = 365 * 24
DELTA_MIN_SPAN_BPS = 5.0
FILES = ("share_price_vs_carry.png", "funding.png", "margin_delta.png")


def _times(seconds: Any) -> Any:
    """Unix seconds as numpy datetimes, which matplotlib puts on a date axis."""
    return np.asarray(seconds, dtype="int64").astype("datetime64[s]")


def thin(x: Any, y: Any, max_points: int = MAX_POINTS) -> tuple[Any, Any]:
    """At most ~`max_points` of (x, y): per bucket the lowest and the highest y, in order.
    NaNs (gaps) are kept as gaps: a bucket of only NaNs gives one NaN."""
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    n = len(y)
    if n <= max_points:
        return x, y
    buckets = max_points // 2
    edges = np.linspace(0, n, buckets + 1, dtype=int)
    keep: list[int] = []
    for a, b in itertools.pairwise(edges):
        chunk = y[a:b]
        if np.all(np.isnan(chunk)):
            keep.append(a)
            continue
        lo, hi = a + int(np.nanargmin(chunk)), a + int(np.nanargmax(chunk))
        keep += sorted({lo, hi})
    idx = np.asarray(keep)
    return x[idx], y[idx]


def _series(result: ReplayResult) -> dict[str, Any]:
    steps = result.steps
    t = np.array([s.time for s in steps], dtype="int64")
    ends = np.append(t[1:], result.end)
    interval_h = (ends - t) / 3_600
    rate_h = np.array([s.funding_rate_per_hour for s in steps])
    lev = float(result.config.settings.target_leverage)
    # the driver's gross carry, step by step: rate x interval x L / (L + 1), compounded
    carry = np.cumprod(1 + rate_h * interval_h * lev / (lev + 1))
    pps0 = result.share_price_start
    return {
        "t": t,
        "ends": ends,
        "share": np.array([s.share_price for s in steps]) / pps0 if pps0 else np.zeros(len(t)),
        "carry": carry,
        "funding_apr_pct": rate_h * HOURS_PER_YEAR * 100,
        "parked": np.array([s.parked for s in steps]),
        "margin": np.array(
            [np.nan if s.margin_ratio_bps is None else s.margin_ratio_bps for s in steps], dtype=float
        ),
        "delta": np.array([s.delta_bps for s in steps], dtype=float),
    }


def no_local_paths(text: str) -> str:
    """`text` with every absolute path cut to its file name (charts get shared; paths are local)."""
    return re.sub(r"(?:/[^/\s,;()]+)+/([^/\s,;()]+)", r"\1", text)


def _title(fig: Figure, report: dict[str, Any], what: str) -> None:
    w = report["window"]
    label = no_local_paths(report.get("data_label") or report.get("mode", ""))
    lines = [what, f"{w['from']} -> {w['to']} UTC ({w['days']:.0f} days), {report.get('mode', '')} replay"]
    lines += textwrap.wrap(f"data: {label}", 100)
    fig.suptitle("\n".join(lines), fontsize=9)


def _date_axis(ax: Any) -> None:
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.grid(True, alpha=0.3)


def _shade_parked(ax: Any, t: Any, ends: Any, parked: Any) -> None:
    """One shaded span per run of parked steps, from its first step to the end of its last."""
    if not parked.any():
        return
    flips = np.flatnonzero(np.diff(parked.astype(int))) + 1
    starts = np.concatenate(([0], flips))
    stops = np.concatenate((flips, [len(parked)]))
    label = "parked"
    for a, b in zip(starts, stops, strict=True):
        if parked[a]:
            ax.axvspan(_times(t[a]), _times(ends[b - 1]), color="tab:orange", alpha=0.2, lw=0, label=label)
            label = "_nolegend_"


def _save(
    fig: Figure, axes: list[Any], ylabel: str | None, report: dict[str, Any], what: str, path: Path
) -> None:
    """Dates on every axis (`ylabel` and a legend on a single one), the title, the PNG."""
    if ylabel is not None:
        axes[0].set_ylabel(ylabel)
        axes[0].legend(loc="upper left")
    for ax in axes:
        _date_axis(ax)
    _title(fig, report, what)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_charts(result: ReplayResult, report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Writes the three PNGs into `out_dir` (created if missing); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = _series(result)
    t, ends = s["t"], s["ends"]
    paths = [out / name for name in FILES]

    # share price vs cumulative gross carry, both from 1 at the start
    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    x0 = _times([result.start])
    share_end = result.share_price_end / result.share_price_start if result.share_price_start else 0.0
    xs, ys = thin(np.append(t, result.end), np.append(s["share"], share_end))
    ax.plot(_times(np.append(t[0], xs)), np.append(1.0, ys), label="share price (net)", lw=1.2)
    xc, yc = thin(ends, s["carry"])
    ax.plot(np.append(x0, _times(xc)), np.append(1.0, yc), label="gross carry (always hedged)", lw=1.2)
    _save(fig, [ax], "growth of 1", report, "share price vs cumulative gross carry", paths[0])

    # funding rate, annualised, parked shaded
    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    xf, yf = thin(t, s["funding_apr_pct"])
    ax.step(_times(xf), yf, where="post", lw=0.8, label="funding rate (annualised)")
    ax.axhline(0, color="black", lw=0.6)
    _shade_parked(ax, t, ends, s["parked"])
    _save(fig, [ax], "% per year", report, "funding rate per step, parked periods shaded", paths[1])

    # margin ratio and delta
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, layout="constrained")
    xm, ym = thin(t, s["margin"])
    top.plot(_times(xm), ym, lw=0.9, color="tab:green")
    top.set_ylabel("margin ratio (bps)")
    _shade_parked(top, t, ends, s["parked"])
    xd, yd = thin(t, s["delta"])
    bottom.plot(_times(xd), yd, lw=0.9, color="tab:purple")
    bottom.set_ylabel("delta |spot - short| (bps of NAV)")
    # rounding noise (1e-8 bps) must not fill the panel: show at least +/- DELTA_MIN_SPAN_BPS
    bottom.ticklabel_format(axis="y", useOffset=False, style="plain")
    low, high = bottom.get_ylim()
    bottom.set_ylim(min(low, -DELTA_MIN_SPAN_BPS), max(high, DELTA_MIN_SPAN_BPS))
    _save(fig, [top, bottom], None, report, "margin ratio and delta (margin absent while parked)", paths[2])
    return paths


# ----------------------------------------------------------------------------- sweeps

MAX_HEATMAP_PAIRS = 3


def _heatmap(
    grid: dict[tuple[str, str], list[float]], rows: list[str], cols: list[str], labels: tuple[str, str]
) -> tuple[Figure, Any]:
    means = np.full((len(rows), len(cols)), np.nan)
    for (r, c), values in grid.items():
        means[rows.index(r), cols.index(c)] = sum(values) / len(values)
    fig, ax = plt.subplots(figsize=(2.5 + 1.1 * len(cols), 1.8 + 0.45 * len(rows)), layout="constrained")
    finite = np.abs(means[np.isfinite(means)])
    span = float(finite.max()) if finite.size else 1.0
    image = ax.imshow(means, cmap="RdYlGn", vmin=-span or -1, vmax=span or 1, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel(labels[1])
    ax.set_ylabel(labels[0])
    for i in range(len(rows)):
        for j in range(len(cols)):
            if np.isfinite(means[i, j]):
                ax.text(j, i, f"{means[i, j]:+.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax)
    return fig, ax


def write_heatmaps(
    rows: list[dict[str, str]], columns: list[str], objective: str, prefix: str | Path
) -> list[Path]:
    """Heatmaps of a sweep's table: the objective (x 100: APY points for the APY figures)
    per history against each setting the grid varies, and per pair of varied settings
    averaged over the histories and windows (the first `MAX_HEATMAP_PAIRS` pairs). Files
    `<prefix>.heatmap.<row>.<col>.png`; returns their paths."""
    varied = [c for c in columns if len({r.get(c, "") for r in rows}) > 1]
    pairs = [("history", c) for c in varied] + list(itertools.combinations(varied, 2))[:MAX_HEATMAP_PAIRS]
    paths = []
    for a, b in pairs:
        cells: dict[tuple[str, str], list[float]] = {}
        for row in rows:
            raw = row.get(objective, "")
            if raw in ("", "nan"):
                continue
            cells.setdefault((row.get(a, ""), row.get(b, "")), []).append(float(raw) * 100)
        if not cells:
            continue
        order = list(dict.fromkeys(r.get(a, "") for r in rows))
        cols = sorted({k[1] for k in cells}, key=_numeric_first)
        fig, ax = _heatmap(cells, [x for x in order if any(k[0] == x for k in cells)], cols, (a, b))
        ax.set_title(f"mean {objective} x 100 over the other dimensions", fontsize=9)
        path = Path(f"{prefix}.heatmap.{a}.{b}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def _numeric_first(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)
