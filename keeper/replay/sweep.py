"""Many model-mode replays: the cells of a grid (`keeper.replay.grid`) run serially or
on a dask.distributed cluster, one table row per cell.

**Where the data comes from.** A cell carries only its history's paths (and its
config, a few hundred bytes); the worker running it reads the files from the path they
share (one folder on every machine: a network mount, or the same copy on each) and keeps
them in a per-process cache (`HISTORY_CACHE` files, `WINDOW_CACHE` windows cut into
market steps, least recently used dropped), so a worker loads each history once however
many cells it runs on it; cells are submitted history-major so each worker's cache stays
warm. Memory per worker is bounded by those caches plus one replay's records (a few
hundred MB for four hourly years), and reported: each result carries the worker's
resident memory, the summary its peak.

**Determinism.** A replay is a pure function of its history, window and config (no
clock, no randomness), and the table drops the only figures that are not (the wall
times), orders rows by the grid's order and writes every number with `repr`: the same
grid gives the same bytes serially, on a local cluster or on many machines.

**Resume.** Each finished row is appended to `<out>.partial.jsonl` at once; the table
(CSV or Parquet, by the suffix) is written at the end from the rows already there, the
journal and the new ones. A run over the same output skips every cell whose id is in
either, so a sweep cut short (Ctrl-C, a lost machine) continues where it stopped.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from keeper.core.errors import UserError
from keeper.data.files import FundingPrint, PricePoint, SeriesReport
from keeper.replay.driver import ReplayConfig
from keeper.replay.exact import run_steps
from keeper.replay.grid import Cell, History, _when
from keeper.replay.inputs import Inputs, history_inputs, load_series, premium_series
from keeper.replay.report import build_report

HISTORY_CACHE = 32  # histories a worker keeps loaded (a few MB each)
WINDOW_CACHE = 16  # windows a worker keeps cut into steps
# report figures that are not a function of the inputs (wall times), or are text for people
NOT_FIGURES = {"run_seconds", "setup_seconds", "steps_per_second", "data", "notes", "data_label", "mode"}
NOT_FIGURES |= {"scenario", "revert_reasons", "first", "note", "gas_note", "borrow_note"}
IDENTITY = ["cell_id", "config_id", "history", "funding", "prices", "from", "to", "cell"]


# ----------------------------------------------------------------------------- worker side


@lru_cache(maxsize=HISTORY_CACHE)
def load_history(
    funding: str, prices: str | None, utc_shift_hours: int | None
) -> tuple[list[FundingPrint], list[PricePoint] | None, list[SeriesReport]]:
    """A history's prints and prices, read once per process (`load_history.cache_info()`
    counts the reads: its misses)."""
    return load_series(funding, prices, utc_shift_hours)


@lru_cache(maxsize=WINDOW_CACHE)
def window_inputs(history: History, start: int | None, end: int | None, constant_price: float) -> Inputs:
    """The window's market steps (shared by every cell on it; steps are values, never changed)."""
    prints, prices, reports = load_history(history.funding, history.prices, history.utc_shift_hours)
    config = ReplayConfig(constant_price=constant_price)
    premium = premium_series(history.premium, prints, prices)
    return history_inputs(
        prints, prices, config, reports, start, end, allow_gaps=history.allow_gaps, premium=premium
    )


def _memory() -> int:
    import psutil  # type: ignore[import-untyped]

    return int(psutil.Process().memory_info().rss)


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "serial"


def flatten(report: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every figure of a replay report as one flat mapping: nested blocks as `block.name`,
    lists as their length (the gaps also their longest, hours); text for people and the
    wall times left out. Generic: a figure added to the report is a column here."""
    out: dict[str, Any] = {}
    for key, value in report.items():
        if key in NOT_FIGURES or key.endswith("_note"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = len(value)
            if key == "gaps":
                out[f"{name}_longest_hours"] = max((g["hours"] for g in value), default=0.0)
        else:
            out[name] = value
    return out


def run_cell(cell: Cell) -> dict[str, Any]:
    """One cell's replay (with its passive hedge) -> {"row": the table's row as text,
    "meta": where and how it ran (not in the table)}."""
    began = time.perf_counter()
    inputs = window_inputs(cell.history, cell.start, cell.end, cell.combo.config.constant_price)
    result = run_steps(
        inputs.steps,
        cell.combo.config,
        reports=inputs.reports,
        notes=inputs.notes,
        end_price_e8=inputs.end_price_e8,
        gaps=inputs.gaps,
    )
    row: dict[str, Any] = {
        "cell_id": cell.cell_id,
        "config_id": cell.combo.config_id,
        "history": cell.history.label,
        "funding": cell.history.key,
        "prices": cell.history.prices_key,
        "from": _when(cell.start),
        "to": _when(cell.end),
        "cell": cell.combo.label,
        **dict(cell.combo.values),
        **flatten(build_report(result)),
    }
    loads = load_history.cache_info()
    meta = {
        "worker": _worker_name(),
        "pid": os.getpid(),
        "rss": _memory(),
        "loads": loads.misses,
        "cached": loads.currsize,
        "seconds": time.perf_counter() - began,
    }
    return {"row": {k: text(v) for k, v in row.items()}, "meta": meta}


# ----------------------------------------------------------------------------- the table


def text(value: Any) -> str:
    """One spelling per value in the table: floats by `repr` (exact), None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def number(row: Mapping[str, str], column: str) -> float | None:
    raw = row.get(column, "")
    try:
        return float(raw) if raw not in ("", "nan") else None
    except ValueError:
        return None


@dataclass
class Table:
    """The sweep's output: rows by cell id, read from the table and the journal."""

    path: Path
    rows: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def journal(self) -> Path:
        return self.path.with_name(self.path.name + ".partial.jsonl")

    @classmethod
    def open(cls, path: str | Path) -> Table:
        table = cls(Path(path))
        if table.path.suffix not in (".csv", ".parquet"):
            raise UserError(f"--out {path}: a .csv or .parquet file")
        if table.path.is_file():
            for row in read_rows(table.path):
                table.rows[row["cell_id"]] = row
        if table.journal.is_file():
            for line in table.journal.read_text().splitlines():
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut short by a kill: that cell runs again
                    table.rows[row["cell_id"]] = row
        return table

    def add(self, row: dict[str, str]) -> None:
        self.rows[row["cell_id"]] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.journal.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def write(self, order: Iterable[str], text_columns: Iterable[str]) -> list[dict[str, str]]:
        """The table in `order` (cell ids; rows of other cells already there follow, by
        id), written atomically; the journal removed. Returns the rows written."""
        ids = [i for i in order if i in self.rows]
        ids += sorted(set(self.rows) - set(ids))
        rows = [self.rows[i] for i in ids]
        columns = list(dict.fromkeys(k for row in rows for k in row))
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix == ".parquet":
            _write_parquet(tmp, rows, columns, set(IDENTITY) | set(text_columns))
        else:
            with tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, columns, lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
        tmp.replace(self.path)
        self.journal.unlink(missing_ok=True)
        return rows


def read_rows(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        return [{k: text(v) for k, v in row.items()} for row in pq.read_table(path).to_pylist()]
    with path.open(newline="") as f:
        return [dict(row) for row in csv.DictReader(f)]


def _kind(values: list[str]) -> type:
    present = [v for v in values if v != ""]
    for kind in (int, float):
        try:
            for v in present:
                kind(v)
        except ValueError:
            continue
        return kind if present else str
    return str


def _write_parquet(path: Path, rows: list[dict[str, str]], columns: list[str], texts: set[str]) -> None:
    """Typed columns (int, float, else text); the identity and setting columns as text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data: dict[str, list[Any]] = {}
    for column in columns:
        values = [row.get(column, "") for row in rows]
        kind = str if column in texts else _kind(values)
        if kind is str:
            data[column] = values
        elif all(v in ("true", "false", "") for v in values):
            data[column] = [None if v == "" else v == "true" for v in values]
        else:
            data[column] = [None if v == "" else kind(v) for v in values]
    pq.write_table(pa.table(data), path)


# ----------------------------------------------------------------------------- runners


@dataclass
class Outcome:
    cell: Cell
    row: dict[str, str] | None
    error: str | None
    meta: dict[str, Any]


OnOutcome = Callable[[Outcome], None]


def run_serial(cells: list[Cell], on_outcome: OnOutcome) -> None:
    """The cells one after the other in this process (no Dask): the reference run."""
    for cell in cells:
        try:
            result = run_cell(cell)
        except UserError as err:
            on_outcome(Outcome(cell, None, str(err), {}))
        else:
            on_outcome(Outcome(cell, result["row"], None, result["meta"]))


def run_distributed(cells: list[Cell], client: Any, on_outcome: OnOutcome) -> None:
    """The cells as tasks on the client's cluster, results as they finish. A worker lost
    mid-cell (killed, out of memory) costs only that cell's time: the scheduler runs it
    again elsewhere (up to `distributed.scheduler.allowed-failures` times); a cell that
    raises is retried once, then reported as failed."""
    from distributed import as_completed

    futures = {
        client.submit(run_cell, cell, key=f"sweep-cell-{cell.cell_id}", pure=False, retries=1): cell
        for cell in cells
    }
    for future in as_completed(futures):  # type: ignore[no-untyped-call]
        cell = futures[future]
        try:
            result = future.result()
        except UserError as err:
            on_outcome(Outcome(cell, None, str(err), {}))
        except Exception as err:  # KilledWorker and friends: the engine gave up on the cell
            on_outcome(Outcome(cell, None, f"{type(err).__name__}: {err}", {}))
        else:
            on_outcome(Outcome(cell, result["row"], None, result["meta"]))
        future.release()


def default_workers() -> int:
    """One single-threaded worker process per core (a replay is pure Python: threads
    would share one interpreter lock)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def open_client(scheduler: str | None, workers: int | None, *, timeout: float = 10.0) -> Any:
    """A dask.distributed client: on the scheduler at `scheduler` (tcp://host:8786), or on
    a new `LocalCluster` of `workers` processes (default one per core, each with an equal
    share of the machine's memory as its limit). An unreachable scheduler is a
    `ConnectionError` naming it."""
    import logging

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    if scheduler:
        try:
            return Client(scheduler, timeout=timeout)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as err:
            raise ConnectionError(f"scheduler {scheduler} unreachable ({err})") from None
    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=workers or default_workers(),
        threads_per_worker=1,
        processes=True,
        memory_limit="auto",
        dashboard_address=":0",
    )
    return Client(cluster)  # type: ignore[no-untyped-call]


@dataclass
class WorkerMemory:
    """Per worker process: peak resident memory seen in its results, histories loaded."""

    peak: dict[tuple[str, int], int] = field(default_factory=dict)
    loads: dict[tuple[str, int], int] = field(default_factory=dict)
    cells: dict[tuple[str, int], int] = field(default_factory=dict)

    def add(self, meta: Mapping[str, Any]) -> None:
        if not meta:
            return
        key = (str(meta["worker"]), int(meta["pid"]))
        self.peak[key] = max(self.peak.get(key, 0), int(meta["rss"]))
        self.loads[key] = int(meta["loads"])
        self.cells[key] = self.cells.get(key, 0) + 1

    def lines(self, limits: Mapping[str, int] | None = None) -> list[str]:
        out = []
        for key in sorted(self.peak):
            limit = (limits or {}).get(key[0])
            bound = f" of a {limit / 2**20:,.0f} MiB limit" if limit else ""
            out.append(
                f"  worker {key[0]} (pid {key[1]}): {self.cells[key]} cells, peak RSS "
                f"{self.peak[key] / 2**20:,.0f} MiB{bound}, histories loaded {self.loads[key]}"
            )
        return out


def memory_limits(client: Any) -> dict[str, int]:
    try:
        workers = client.scheduler_info()["workers"]
    except Exception:  # a summary figure only
        return {}
    return {addr: int(info.get("memory_limit") or 0) for addr, info in workers.items()}
