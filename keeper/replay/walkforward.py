"""Walk-forward evaluation: tune on one stretch of a history, judge on the next.

Each history's span is cut into folds: train `train_years` from the first whole UTC day,
test the `test_years` after it, then the whole fold moves on by `step_years` (default
`test_years`), while the test window ends within a day of the history's last print. On
each train window every combination of the grid (and the defaults) runs; the one with
the highest objective (a report figure, e.g. `excess_vs_passive`; `-max_drawdown`
minimises) among the runs whose verdict is OK (no liquidation, the books reconcile)
wins, ties going to the grid's order. Then the winner and the defaults run on the test
window: the out-of-sample result, beside the passive hedge (the winner's own run with
parking off: same venue, leverage and costs) and the defaults' result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keeper.core.errors import UserError
from keeper.data.files import synthetic_history
from keeper.replay.exact import run_model
from keeper.replay.grid import Cell, Combo, Grid, History, WalkForward, add_years
from keeper.replay.report import build_report
from keeper.replay.sweep import flatten, load_history, number

DAY = 86_400
# the test window may end this far past the history's last print (its last interval)
END_SLACK = DAY


@dataclass(frozen=True)
class Fold:
    history: History
    index: int
    train: tuple[int, int]
    test: tuple[int, int]


def figure_names() -> list[str]:
    """The report's numeric figures (what an objective may name), from a two-day replay."""
    prints, prices = synthetic_history(seed=1, days=2)
    return [
        k for k, v in flatten(build_report(run_model(prints, prices))).items() if isinstance(v, int | float)
    ]


def check_objective(objective: str) -> None:
    names = figure_names()
    if objective.removeprefix("-") not in names:
        raise UserError(
            f"objective {objective!r}: not a report figure; one of {', '.join(names)} (prefix - to minimise)"
        )


def folds(history: History, wf: WalkForward) -> list[Fold]:
    """The history's folds (its `from`/`to`, when the grid gives one window, bound the span)."""
    prints, _, _ = load_history(history.funding, history.prices, history.utc_shift_hours)
    first, last = prints[0].time - prints[0].interval, prints[-1].time
    if len(history.windows) == 1:
        start, end = history.windows[0]
        first = max(first, start) if start is not None else first
        last = min(last, end) if end is not None else last
    first = -(-first // DAY) * DAY  # the first whole UTC day
    step = wf.step_years or wf.test_years
    out: list[Fold] = []
    while True:
        train_start = add_years(first, step * len(out))
        train_end = add_years(train_start, wf.train_years)
        test_end = add_years(train_end, wf.test_years)
        if test_end > last + END_SLACK:
            return out
        out.append(Fold(history, len(out), (train_start, train_end), (train_end, min(test_end, last))))


def candidates(grid: Grid) -> list[Combo]:
    """The grid's combinations and the defaults (when the grid does not hold them)."""
    ids = {c.config_id for c in grid.combos}
    return [*grid.combos, *([grid.default] if grid.default.config_id not in ids else [])]


def train_cells(grid: Grid, all_folds: list[Fold]) -> list[Cell]:
    combos = candidates(grid)
    return [Cell(f.history, *f.train, c) for f in all_folds for c in combos]


def _score(row: Mapping[str, str], objective: str) -> float | None:
    value = number(row, objective.removeprefix("-"))
    if value is None or row.get("verdict") != "OK":
        return None
    return -value if objective.startswith("-") else value


def pick(grid: Grid, fold: Fold, rows: Mapping[str, Mapping[str, str]], objective: str) -> Combo | None:
    """The best combination on the fold's train window (None: no run there is valid)."""
    best: tuple[float, Combo] | None = None
    for combo in candidates(grid):
        row = rows.get(Cell(fold.history, *fold.train, combo).cell_id)
        score = None if row is None else _score(row, objective)
        if score is not None and (best is None or score > best[0]):
            best = (score, combo)
    return None if best is None else best[1]


def test_cells(grid: Grid, picks: Mapping[Fold, Combo | None]) -> list[Cell]:
    cells: dict[str, Cell] = {}
    for fold, combo in picks.items():
        for c in (combo, grid.default):
            if c is not None:
                cell = Cell(fold.history, *fold.test, c)
                cells.setdefault(cell.cell_id, cell)
    return list(cells.values())


def _day(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def table(
    grid: Grid, picks: Mapping[Fold, Combo | None], rows: Mapping[str, Mapping[str, str]], objective: str
) -> list[dict[str, Any]]:
    """One row per fold: the pick, its train score, and out of sample its net APY, the
    passive hedge's, the defaults', and the excess of each over passive."""
    out = []
    for fold, combo in picks.items():
        best = None if combo is None else rows.get(Cell(fold.history, *fold.test, combo).cell_id)
        trained = None if combo is None else rows.get(Cell(fold.history, *fold.train, combo).cell_id)
        default = rows.get(Cell(fold.history, *fold.test, grid.default).cell_id)
        out.append(
            {
                "history": fold.history.label,
                "fold": fold.index,
                "train": f"{_day(fold.train[0])}..{_day(fold.train[1])}",
                "test": f"{_day(fold.test[0])}..{_day(fold.test[1])}",
                "pick": "none valid" if combo is None else combo.label,
                "train_objective": None if trained is None else number(trained, objective.removeprefix("-")),
                "test_net_apy": None if best is None else number(best, "net_apy"),
                "test_passive_net_apy": None if best is None else number(best, "passive_net_apy"),
                "test_default_net_apy": None if default is None else number(default, "net_apy"),
                "test_excess_vs_passive": None if best is None else number(best, "excess_vs_passive"),
                "test_default_excess_vs_passive": None
                if default is None
                else number(default, "excess_vs_passive"),
                "test_verdict": None if best is None else best.get("verdict"),
            }
        )
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.2f}"


def format_table(wf_rows: list[dict[str, Any]], wf: WalkForward) -> str:
    """The walk-forward table for people: APYs and excesses in percentage points."""
    head = (
        f"walk-forward: train {wf.train_years} y, test {wf.test_years} y, "
        f"step {wf.step_years or wf.test_years} y; "
        f"objective {wf.objective} on the train window; out-of-sample figures in APY %"
    )
    header = (
        "history",
        "test window",
        "pick (train best)",
        "best",
        "passive",
        "default",
        "best-pas",
        "def-pas",
    )
    lines = [(r["history"], r["test"], r["pick"], _pct(r["test_net_apy"]), _pct(r["test_passive_net_apy"]),
              _pct(r["test_default_net_apy"]), _pct(r["test_excess_vs_passive"]),
              _pct(r["test_default_excess_vs_passive"])) for r in wf_rows]  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    out = [head, "  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out += ["  " + "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)) for line in lines]
    histories: dict[str, list[dict[str, Any]]] = {}
    for r in wf_rows:
        histories.setdefault(r["history"], []).append(r)
    if len(histories) < len(wf_rows):
        out.append("  per history, mean over its folds (APY points): picked - passive, defaults - passive")
        width = max(len(h) for h in histories)
        for name, members in histories.items():
            picked = [r["test_excess_vs_passive"] for r in members if r["test_excess_vs_passive"] is not None]
            dflt = [r["test_default_excess_vs_passive"] for r in members]
            dflt = [x for x in dflt if x is not None]
            out.append(
                f"    {name:<{width}}  {_pct(sum(picked) / len(picked)) if picked else 'n/a':>7}  "
                f"{_pct(sum(dflt) / len(dflt)) if dflt else 'n/a':>7}  "
                f"({len(members)} fold{'s' if len(members) > 1 else ''})"
            )
    best = [r["test_excess_vs_passive"] for r in wf_rows if r["test_excess_vs_passive"] is not None]
    dflt = [
        r["test_default_excess_vs_passive"]
        for r in wf_rows
        if r["test_default_excess_vs_passive"] is not None
    ]
    if best:
        beats = sum(x > 0 for x in best)
        out.append(
            f"  mean out-of-sample excess vs passive: picked {_pct(sum(best) / len(best))} points "
            f"(beats passive in {beats} of {len(best)} folds), defaults "
            f"{_pct(sum(dflt) / len(dflt)) if dflt else 'n/a'} points"
        )
    return "\n".join(out)
