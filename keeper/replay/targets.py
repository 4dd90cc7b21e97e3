"""Does parking pay? The default strategy against the never-park hedge on every recorded
funding history (tracker issue 12, item 5):

    python -m keeper.replay.targets [--lovo] [--premium model|none] [--jobs N] [--json PATH] [NAME ...]

Runs, in model mode, every funding file in `<data>/funding` (`BASIS_DATA_DIR`, else
../shared/data) with the default `Settings`, next to its report's passive hedge: the same
settings never parking (`passive_settings`: the park rate beyond any rate a market takes,
so the hedge rides every negative stretch out). The perp trades at the premium each
file's prints imply (`keeper.data.premium.modelled_premium`; `--premium none` marks it
at its index). Per file it prints the net APY of each, the excess (default
minus never-park, in APY points) and the share of time the default spent parked, then
checks the targets:

- on the files other than Binance's: excess >= 0 on at least 80 % of them, and never below
  -0.3 points a year;
- on Binance ETH and BTC 2020-2023: excess >= 0.

Prices (`price_file`): a file inside the Binance spot series' years (2020-2023) replays
with that coin's Binance spot bars (the 8h bars for 8h funding, as `make bench` does; the
4h bars for hourly funding); Deribit's file carries its own spot index; BitMEX 2016-2020
lies mostly before the spot files and replays at a constant price (for a delta-neutral
vault the price moves only the band fixes, not the funding). A file with a hole longer
than 3 of its intervals (`GAP_LIMIT_INTERVALS`) (Gate: December 2020 missing) is replayed on its
longest stretch without one, and the row says so.

`--lovo` judges the park rule out of sample: for each venue, the park spans and
persistence shares are re-measured (`keeper.replay.persistence.measure`) on every other
venue's histories, Binance's always left out, and that venue's files replay with them
(Binance's with the shipped measurement, which never saw them).

Figures only; nothing here decides anything for the keeper.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from keeper.bot.strategy import Settings
from keeper.data.files import FundingPrint, data_dir, funding_files, load_funding, load_prices
from keeper.data.premium import modelled_premium
from keeper.replay.driver import (
    YEAR,
    Passive,
    ReplayConfig,
    ReplayResult,
    end_price,
    gap_free,
    history_steps,
    with_premium,
)
from keeper.replay.exact import run_steps

# The Binance spot series' years (SOURCES.md: 2020-01-01 .. 2023-12-31 20:00 UTC).
SPOT_FROM, SPOT_TO = 1_577_836_800, 1_704_067_200
# The targets (issue 12, item 5), APY points (1.0 = one percentage point a year).
MIN_SHARE_NOT_BELOW = 0.8
FLOOR_POINTS = -0.3
BINANCE = ("binance_eth_funding.csv", "binance_btc_funding.csv")


def price_file(funding: Path, prints: list[FundingPrint]) -> tuple[Path | None, str]:
    """The price series a funding file replays with, and why (see the module docstring)."""
    root = funding.parent.parent / "prices"
    if "interest_1h" in funding.open(encoding="utf-8").readline():
        return funding, "its own spot index"
    coin = re.search(r"_(btc|eth)_", funding.name)
    # the first interval may start before the series (its first bar is held back to it)
    if coin and prints[0].time >= SPOT_FROM and prints[-1].time <= SPOT_TO:
        sym = coin.group(1).upper()
        hourly = prints[len(prints) // 2].interval < 8 * 3_600
        name = (
            f"binance_spot_{sym}USDT_4h_2020-2023.csv"
            if hourly
            else f"binance_spot_{sym}USDT_8h_2020-2023_DERIVED_from_4h.csv"
        )
        if (root / name).is_file():
            return root / name, f"Binance spot {sym} {'4h' if hourly else '8h'}"
    return None, "constant price (outside the spot files' years)"


@dataclass
class Row:
    name: str
    window: str
    prices: str
    note: str
    steps: int
    default_apy: float
    passive_apy: float
    parked_share: float
    parks: int
    seconds: float
    fitted_on: str = ""  # --lovo: the persistence the row ran with, and where it was measured

    @property
    def excess_points(self) -> float:
        return (self.default_apy - self.passive_apy) * 100

    @property
    def binance(self) -> bool:
        return self.name in BINANCE


def _apy(result: ReplayResult) -> float:
    seconds = result.end - result.start
    growth = result.share_price_end / result.share_price_start
    return float(growth ** (YEAR / seconds) - 1) if seconds > 0 and growth > 0 else 0.0


def _passive_apy(p: Passive) -> float:
    growth = p.share_price_end / p.share_price_start
    return float(growth ** (YEAR / p.seconds) - 1) if p.seconds > 0 and growth > 0 else 0.0


def _when(t: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def run_file(path: str, settings: Settings | None = None, premium: str = "model") -> Row:
    """One file on the models: the settings, and the same never parking (the report's
    passive hedge, `passive_settings`), with the premium its prints imply (`premium`
    "model") or none ("none")."""
    settings = settings or Settings()
    started = time.perf_counter()
    funding = Path(path)
    prints, _ = load_funding(funding)
    prints, note = gap_free(prints)
    prices_path, why = price_file(funding, prints)
    prices = load_prices(prices_path)[0] if prices_path else None
    config = ReplayConfig(settings=settings)
    steps = history_steps(prints, prices, config.constant_price)
    if premium == "model":
        steps = with_premium(steps, modelled_premium(prints).at)
    base = run_steps(steps, config, end_price_e8=end_price(prints, prices, config))
    passive = base.passive
    assert passive is not None
    return Row(
        name=funding.name,
        window=f"{_when(base.start)}..{_when(base.end)}",
        prices=why,
        note=note,
        steps=len(base.steps),
        default_apy=_apy(base),
        passive_apy=_passive_apy(passive),
        parked_share=base.parked_seconds / (base.end - base.start),
        parks=base.rebalances.get("park", 0),
        seconds=time.perf_counter() - started,
    )


def _cpu() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_all(
    paths: Sequence[Path],
    settings: Settings | Sequence[Settings] | None = None,
    jobs: int = 1,
    premium: str = "model",
) -> tuple[list[Row], float, float]:
    """Every file's row (with `settings`, or each with its own), the wall time and the CPU
    time (this process and its workers)."""
    started, cpu = time.perf_counter(), _cpu()
    each = list(settings) if isinstance(settings, Sequence) else [settings or Settings()] * len(paths)
    if jobs <= 1:
        rows = [run_file(str(p), s, premium) for p, s in zip(paths, each, strict=True)]
    else:
        with ProcessPoolExecutor(jobs) as pool:
            rows = list(pool.map(run_file, [str(p) for p in paths], each, [premium] * len(paths)))
    return rows, time.perf_counter() - started, _cpu() - cpu


def venue(path: Path | str) -> str:
    return Path(path).name.split("_", 1)[0]


def lovo_settings(
    paths: Sequence[Path], every: Sequence[Path] | None = None
) -> tuple[list[Settings], list[str]]:
    """Per file, the default settings with the park spans and shares measured on the other
    venues' histories among `every` (Binance's never), and a note of what they were."""
    from keeper.replay.persistence import measure

    every = list(every or paths)
    out, notes = [], []
    fits: dict[str, tuple[Settings, str]] = {}
    for path in paths:
        v = venue(path)
        if v not in fits:
            train = [p for p in every if venue(p) not in (v, "binance")]
            m = measure(train)
            shares = "/".join(f"{r:.2f}" for r in m.persistence)
            spans = "/".join(str(h) for h in m.horizons)
            fits[v] = (m.settings(), f"{spans} h: {shares} (without {v})")
        settings, note = fits[v]
        out.append(settings)
        notes.append(note)
    return out, notes


def verdicts(rows: list[Row]) -> list[tuple[str, bool, str]]:
    """(target, met, detail) for each of the issue's targets."""
    others = [r for r in rows if not r.binance]
    binance = [r for r in rows if r.binance]
    out = []
    if others:
        ok = [r for r in others if r.excess_points >= 0]
        share = len(ok) / len(others)
        out.append(
            (
                f"excess >= 0 on >= {MIN_SHARE_NOT_BELOW:.0%} of the non-Binance files",
                share >= MIN_SHARE_NOT_BELOW,
                f"{len(ok)} of {len(others)} ({share:.0%})",
            )
        )
        worst = min(others, key=lambda r: r.excess_points)
        out.append(
            (
                f"excess never below {FLOOR_POINTS} points (non-Binance)",
                worst.excess_points >= FLOOR_POINTS,
                f"worst {worst.excess_points:+.2f} ({worst.name})",
            )
        )
    if binance:
        worst = min(binance, key=lambda r: r.excess_points)
        out.append(
            (
                "excess >= 0 on Binance ETH and BTC 2020-2023",
                worst.excess_points >= 0,
                ", ".join(f"{r.name.split('_')[1].upper()} {r.excess_points:+.2f}" for r in binance),
            )
        )
    return out


def table(rows: list[Row], seconds: float | None = None, cpu: float | None = None) -> str:
    width = max(len(r.name) for r in rows)
    lines = [
        f"{'funding file':<{width}}  {'window':<22} {'default':>8} {'never-park':>10} {'excess':>7} "
        f"{'parked':>7} {'parks':>5}  prices / note",
    ]
    for r in rows:
        extra = f"; {r.note}" if r.note else ""
        extra += f"; persistence {r.fitted_on}" if r.fitted_on else ""
        lines.append(
            f"{r.name:<{width}}  {r.window:<22} {r.default_apy:>+8.2%} {r.passive_apy:>+10.2%} "
            f"{r.excess_points:>+7.2f} {r.parked_share:>7.1%} {r.parks:>5}  {r.prices}{extra}"
        )
    lines.append("(net APY; excess = default - never-park, APY points; parked = share of time)")
    for target, met, detail in verdicts(rows):
        lines.append(f"  [{'met' if met else 'MISSED'}] {target}: {detail}")
    if seconds is not None:
        steps = sum(r.steps for r in rows) * 2
        spent = f" ({cpu:.1f} s of CPU)" if cpu is not None else ""
        lines.append(f"  {len(rows)} files x 2 runs, {steps:,} model steps in {seconds:.1f} s{spent}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="only these files (substring of the name)")
    parser.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--json", help="write the rows as JSON here")
    parser.add_argument(
        "--premium", choices=("model", "none"), default="model", help="the perp's premium (default: modelled)"
    )
    parser.add_argument(
        "--lovo", action="store_true", help="judge each venue with the park rule measured on the others"
    )
    args = parser.parse_args(argv)
    root = data_dir()
    paths = funding_files(root)
    if not paths:
        print(f"no funding files under {root / 'funding'} (BASIS_DATA_DIR)", file=sys.stderr)
        return 1
    every = paths
    if args.names:
        paths = [p for p in paths if any(n in p.name for n in args.names)]
    settings: list[Settings] | None = None
    notes: list[str] = []
    if args.lovo:
        settings, notes = lovo_settings(paths, every)
    rows, seconds, cpu = run_all(paths, settings, jobs=args.jobs, premium=args.premium)
    for row, note in zip(rows, notes, strict=False):
        row.fitted_on = note
    print(table(rows, seconds, cpu))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload: dict[str, Any] = {
            "rows": [asdict(r) | {"excess_points": r.excess_points} for r in rows],
            "targets": [{"target": t, "met": m, "detail": d} for t, m, d in verdicts(rows)],
            "seconds": seconds,
            "cpu_seconds": cpu,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
