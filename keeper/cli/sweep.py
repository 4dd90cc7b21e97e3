"""`basis-keeper sweep GRID.yaml`: many model-mode replays on dask.distributed (or
serially), one table row per cell, a summary and heatmaps; `--walk-forward` tunes on
each train window and judges the pick on the test window after it.

Everything is checked before any cell runs (the grid's names and values, every file,
every window, the objective, the scheduler): a problem is one `error:` line."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click

from keeper.core.errors import UserError
from keeper.replay.grid import Cell, Grid, load_grid
from keeper.replay.sweep import (
    Outcome,
    Table,
    WorkerMemory,
    memory_limits,
    number,
    open_client,
    run_distributed,
    run_serial,
    window_inputs,
)
from keeper.replay.walkforward import (
    Fold,
    check_objective,
    folds,
    format_table,
    pick,
    table,
    test_cells,
    train_cells,
)

EXIT_FAILED = 3  # the CLI's "failed": a scheduler that does not answer, cells that failed


class SweepFailed(Exception):
    """Cannot start (the scheduler) or cells failed; exit 3 with this line."""


@dataclass
class Progress:
    """A progress line on stderr: redrawn in place on a terminal, else one line per 10 %."""

    total: int
    label: str
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    failed: int = 0
    shown: int = -1

    def step(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done)
        width = 30
        filled = width * self.done // max(self.total, 1)
        line = (
            f"  {self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} cells, "
            f"{elapsed:.0f} s, ~{left:.0f} s left" + (f", {self.failed} failed" if self.failed else "")
        )
        if sys.stderr.isatty():
            click.echo("\r" + line, err=True, nl=self.done == self.total)
        else:
            tenth = self.done * 10 // max(self.total, 1)
            if tenth != self.shown:
                self.shown = tenth
                click.echo(line, err=True)


@dataclass
class Run:
    """What the phases of one invocation share: the table, the runner, the tallies."""

    table: Table
    runner: Callable[[list[Cell], Callable[[Outcome], None]], None]
    memory: WorkerMemory = field(default_factory=WorkerMemory)
    failures: list[str] = field(default_factory=list)
    ran: int = 0
    skipped: int = 0
    cell_seconds: float = 0.0  # the cells' own run times, summed (the serial cost)
    hook: Callable[[Outcome], None] | None = None  # tests: e.g. kill a worker after the first result

    def phase(self, cells: list[Cell], label: str) -> None:
        todo = [c for c in cells if c.cell_id not in self.table.rows]
        self.skipped += len(cells) - len(todo)
        if not todo:
            click.echo(f"{label}: all {len(cells)} cells already in {self.table.path}", err=True)
            return
        click.echo(
            f"{label}: {len(todo)} cells to run"
            + (f" ({len(cells) - len(todo)} already in {self.table.path})" if len(todo) < len(cells) else ""),
            err=True,
        )
        progress = Progress(len(todo), label)

        def done(outcome: Outcome) -> None:
            if outcome.row is not None:
                self.table.add(outcome.row)
                self.memory.add(outcome.meta)
                self.ran += 1
                self.cell_seconds += float(outcome.meta.get("seconds", 0.0))
            else:
                self.failures.append(
                    f"{outcome.cell.history.label} {outcome.cell.combo.label}: {outcome.error}"
                )
            progress.step(outcome.row is not None)
            if self.hook is not None:
                self.hook(outcome)

        self.runner(todo, done)


def _check_windows(cells: list[Cell]) -> None:
    """Every window loads and has prints, and no gap the history does not allow: before
    any cell runs (the loads stay cached for a serial run)."""
    seen = set()
    for cell in cells:
        key = (cell.history, cell.start, cell.end)
        if key in seen:
            continue
        seen.add(key)
        try:
            window_inputs(cell.history, cell.start, cell.end, cell.combo.config.constant_price)
        except UserError as err:
            message = str(err).replace(
                "pick a window without it (--from/--to) or pass --allow-gaps",
                "pick windows without it (windows:) or set allow_gaps: true on the history",
            )
            name = Path(cell.history.funding).name
            raise UserError(message if message.startswith(name) else f"{name}: {message}") from None


def summary(rows: list[dict[str, str]], objective: str, top: int = 10) -> list[str]:
    """The combinations ranked by the mean objective over their histories and windows."""
    key = objective.removeprefix("-")
    sign = -1.0 if objective.startswith("-") else 1.0
    groups: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault(row["config_id"], []).append(row)
    ranked = []
    for config_id, members in groups.items():
        values = [v for v in (number(r, key) for r in members) if v is not None]
        if values:
            ranked.append((sign * sum(values) / len(values), config_id, members, values))
    ranked.sort(key=lambda x: -x[0])
    scale, unit = (100.0, " (APY points)") if "apy" in key or key == "excess_vs_passive" else (1.0, "")
    lines = [f"best by mean {key}{unit} over histories and windows ({len(groups)} combinations):"]
    width = max((len(m[0]["cell"]) for _, _, m, _ in ranked[:top]), default=4)
    lines.append(f"  {'cell':<{width}}  {'mean':>8}  {'min':>8}  {'max':>8}  runs  not OK")
    for _, _, members, values in ranked[:top]:
        bad = sum(r.get("verdict") != "OK" for r in members)
        lines.append(
            f"  {members[0]['cell']:<{width}}  {sum(values) / len(values) * scale:>+8.2f}  "
            f"{min(values) * scale:>+8.2f}  {max(values) * scale:>+8.2f}  {len(values):>4}  {bad:>6}"
        )
    return lines


def run_sweep(
    *,
    grid_path: str,
    out: str,
    scheduler: str | None,
    workers: int | None,
    serial: bool,
    walk_forward: bool,
    train_years: int | None,
    test_years: int | None,
    step_years: int | None,
    objective: str | None,
    charts: bool,
    data_dir: str | None,
    connect_timeout: float = 10.0,
    hook: Callable[[Outcome], None] | None = None,
) -> dict[str, Any]:
    """The sweep (and walk-forward); returns what it wrote and measured. `UserError`
    before any work on bad input; `SweepFailed` when the scheduler does not answer or a
    cell failed (after the table is written)."""
    from keeper.data.files import data_dir as default_data_dir

    if serial and scheduler:
        raise UserError("--serial runs without Dask: drop --scheduler")
    if workers is not None and (serial or scheduler):
        raise UserError("--workers sizes the LocalCluster: drop it with --serial or --scheduler")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    grid: Grid = load_grid(grid_path, Path(data_dir) if data_dir else default_data_dir())
    wf = grid.walk_forward
    wf = replace(
        wf,
        train_years=wf.train_years if train_years is None else train_years,
        test_years=wf.test_years if test_years is None else test_years,
        step_years=wf.step_years if step_years is None else step_years,
        objective=objective or wf.objective,
    )
    if wf.train_years < 1 or wf.test_years < 1 or (wf.step_years is not None and wf.step_years < 1):
        raise UserError("--train-years, --test-years and --step-years must be at least 1")
    check_objective(wf.objective)
    table_ = Table.open(out)
    if walk_forward:
        all_folds: list[Fold] = []
        for history in grid.histories:
            try:
                all_folds += folds(history, wf)
            except UserError as err:
                raise UserError(f"{history.key}: {err}") from None
        if not all_folds:
            raise UserError(
                f"walk-forward: no history spans train {wf.train_years} y + test {wf.test_years} y"
            )
        first = train_cells(grid, all_folds)
        test_windows = [Cell(f.history, *f.test, grid.default) for f in all_folds]
        _check_windows(first + test_windows)
    else:
        first = grid.cells()
        _check_windows(first)
    for note in grid.notes:
        click.echo(f"note: {note}", err=True)

    client: Any = None
    if not serial:
        try:
            client = open_client(scheduler, workers, timeout=connect_timeout)
        except ConnectionError as err:
            raise SweepFailed(f"cannot start: {err}") from None
    began = time.monotonic()
    try:
        if client is None:
            run = Run(table_, run_serial, hook=hook)
            where = "serially in this process"
        else:
            run = Run(table_, lambda cells, cb: run_distributed(cells, client, cb), hook=hook)
            n = len(client.scheduler_info().get("workers", {}))
            where = f"on {n} Dask workers ({scheduler or 'a LocalCluster'})"
        click.echo(f"sweep {grid_path}: {where}", err=True)
        if walk_forward:
            run.phase(first, "train")
            picks = {f: pick(grid, f, table_.rows, wf.objective) for f in all_folds}
            second = test_cells(grid, picks)
            run.phase(second, "test")
            cells = first + second
        else:
            run.phase(first, "sweep")
            cells = first
        limits = memory_limits(client) if client is not None else {}
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    seconds = time.monotonic() - began
    order = [c.cell_id for c in cells]
    written = table_.write(order, grid.columns)
    ours = [r for r in written if r["cell_id"] in set(order)]
    click.echo(
        f"sweep: {len(cells)} cells: {run.ran} run in {seconds:.1f} s {where}, {run.skipped} already done, "
        f"{len(run.failures)} failed; table {table_.path} ({len(written)} rows)"
    )
    if run.ran and client is not None:
        click.echo(
            f"  on average {run.cell_seconds / seconds:.2f} cells ran at once (their run times add up to "
            f"{run.cell_seconds:.1f} s); that is the speed-up over serial only where the cores are free "
            "(make bench measures it)"
        )
    for line in summary(ours, wf.objective):
        click.echo(line)
    mem = run.memory.lines(limits)
    if mem:
        click.echo("workers (resident memory after each cell; the histories each process read):")
        for line in mem:
            click.echo(line)
    result: dict[str, Any] = {"table": str(table_.path), "rows": ours, "seconds": seconds, "ran": run.ran}
    if charts and ours:
        from keeper.replay.charts import write_heatmaps  # lazy: matplotlib only when asked

        prefix = table_.path.with_suffix("")
        paths = write_heatmaps(ours, grid.columns, wf.objective.removeprefix("-"), prefix)
        for path in paths:
            click.echo(f"  heatmap written to {path}")
        result["heatmaps"] = [str(p) for p in paths]
    if walk_forward:
        wf_rows = table(grid, picks, table_.rows, wf.objective)
        click.echo(format_table(wf_rows, wf))
        wf_path = table_.path.with_name(table_.path.stem + ".walk_forward.csv")
        _write_csv(wf_path, wf_rows)
        click.echo(f"  walk-forward table written to {wf_path}")
        result["walk_forward"] = wf_rows
    if run.failures:
        for line in run.failures[:10]:
            click.echo(f"  failed: {line}", err=True)
        raise SweepFailed(f"{len(run.failures)} cell(s) failed (listed above); a rerun retries only them")
    return result


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    from keeper.replay.sweep import text

    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]) if rows else [], lineterminator="\n")
        writer.writeheader()
        writer.writerows([{k: text(v) for k, v in row.items()} for row in rows])
