"""`basis-keeper sweep` on a real dask.distributed LocalCluster (2 worker processes) and
serially, on a tiny grid over a seeded synthetic history the test writes: the two tables
agree cell by cell, a worker killed mid-run costs nothing but time, a second run skips
what the first did, bad input is one line before any work; and the walk-forward folds
and pick on their own."""

from __future__ import annotations

import os
import re
import signal
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from keeper.cli.keeper import cli
from keeper.cli.sweep import run_sweep
from keeper.data.files import synthetic_history
from keeper.replay.grid import Cell, load_grid
from keeper.replay.sweep import Outcome, Table, read_rows
from keeper.replay.walkforward import candidates, folds, format_table, pick, table

DAY = 86_400
START = 1_672_531_200  # 2023-01-01


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def write_history(folder: Path, days: int, seed: int = 5) -> None:
    """A synthetic 8-hourly history as the shared data's files are laid out: funding in
    the supervik CSV format (gate: UTC), 8h spot bars beside it."""
    prints, points = synthetic_history(seed=seed, days=days, start=START)
    (folder / "funding").mkdir(parents=True, exist_ok=True)
    (folder / "prices").mkdir(exist_ok=True)
    lines = ["Symbol,Date,Funding Rate", *(f"ETH-USDT,{_iso(p.time)},{p.rate!r}" for p in prints)]
    (folder / "funding" / "gate_eth_funding.csv").write_text("\n".join(lines) + "\n")
    bars = ["timestamp,open,high,low,close,volume"]
    for a, b in zip(points, [*points[1:], points[-1]], strict=True):
        high, low = max(a.price, b.price) * 1.01, min(a.price, b.price) * 0.99
        bars.append(f"{_iso(a.time)},{a.price!r},{high!r},{low!r},{b.price!r},1")
    (folder / "prices" / "spot_8h.csv").write_text("\n".join(bars) + "\n")


GRID = """
histories:
  - funding: funding/gate_eth_funding.csv
    prices: prices/spot_8h.csv
    windows:
      - {from: 2023-01-10, to: 2023-01-24}
      - {from: 2023-02-01, to: 2023-02-15}
grid:
  park_rate_per_hour: [0, -0.00002]
  leverage: [2, 3]
cells:
  - {spot_fee_bps: 30, funding_window_hours: 72}
"""
CELLS = 2 * (4 + 1)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_history(folder, days=60)
    (folder / "grid.yaml").write_text(GRID)
    return folder


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A LocalCluster of 2 single-threaded worker processes (each under a nanny, which
    restarts a killed one), shared by the tests of this module."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


def sweep(data: Path, out: Path, **options: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "grid_path": str(data / "grid.yaml"), "out": str(out), "scheduler": None, "workers": None,
        "serial": False, "walk_forward": False, "train_years": None, "test_years": None,
        "step_years": None, "objective": None, "charts": False, "data_dir": str(data),
    }  # fmt: skip
    args.update(options)
    return run_sweep(**args)


@pytest.fixture(scope="module")
def serial(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serial") / "cells.csv"
    result = sweep(data, out, serial=True, charts=True)
    assert result["ran"] == CELLS
    assert len(result["heatmaps"]) >= 2 and all(Path(p).is_file() for p in result["heatmaps"])
    return out


def test_sweep__local_cluster__equals_serial_cell_by_cell(
    data: Path, serial: Path, cluster: Any, tmp_path: Path
) -> None:
    out = tmp_path / "cells.csv"
    seen: list[Outcome] = []
    result = sweep(data, out, scheduler=cluster.scheduler_address, hook=seen.append)
    assert result["ran"] == CELLS
    assert {o.meta["pid"] for o in seen} - {os.getpid()}, "the cells ran in the worker processes"
    parallel, reference = read_rows(out), read_rows(serial)
    assert [r["cell_id"] for r in parallel] == [r["cell_id"] for r in reference]
    for got, want in zip(parallel, reference, strict=True):
        assert got == want, got["cell"]
    assert out.read_bytes() == serial.read_bytes()
    assert {r["excess_vs_passive"] for r in parallel} != {""}


def test_sweep__histories_loaded_once_per_worker(data: Path, cluster: Any, tmp_path: Path) -> None:
    seen: list[Outcome] = []
    sweep(data, tmp_path / "cells.csv", scheduler=cluster.scheduler_address, hook=seen.append)
    for pid in {o.meta["pid"] for o in seen}:
        # one history file: each worker process read it at most once (module cache)
        assert max(o.meta["loads"] for o in seen if o.meta["pid"] == pid) == 1


def test_sweep__worker_killed_mid_run__still_completes(
    data: Path, serial: Path, cluster: Any, tmp_path: Path
) -> None:
    out = tmp_path / "cells.csv"
    killed: list[int] = []

    def kill_once(outcome: Outcome) -> None:
        if not killed:  # the worker that just finished a cell is already on its next one
            killed.append(outcome.meta["pid"])
            os.kill(outcome.meta["pid"], signal.SIGKILL)

    result = sweep(data, out, scheduler=cluster.scheduler_address, hook=kill_once)
    assert killed and result["ran"] == CELLS
    assert out.read_bytes() == serial.read_bytes()


def test_sweep__resume__skips_the_cells_already_done(data: Path, serial: Path, tmp_path: Path) -> None:
    out = tmp_path / "cells.csv"
    rows = read_rows(serial)
    done, journal = rows[:3], rows[3:5]
    table = Table(out)
    for row in done:
        table.rows[row["cell_id"]] = row
    table.write([r["cell_id"] for r in done], [])
    for row in journal:  # finished by a run that was then killed: only in the journal
        table.add(row)
    seen: list[Outcome] = []
    result = sweep(data, out, serial=True, hook=seen.append)
    assert result["ran"] == CELLS - 5
    assert {o.cell.cell_id for o in seen}.isdisjoint(r["cell_id"] for r in rows[:5])
    assert out.read_bytes() == serial.read_bytes()
    assert not table.journal.exists()
    again = sweep(data, out, serial=True)
    assert again["ran"] == 0 and out.read_bytes() == serial.read_bytes()


def test_sweep__parquet__same_rows_as_csv(data: Path, serial: Path, tmp_path: Path) -> None:
    out = tmp_path / "cells.parquet"
    sweep(data, out, serial=True)
    assert read_rows(out) == read_rows(serial)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("grid", "extra", "code", "says"),
    [
        ("grid: {park_rate_per_hour: [0], no_such_knob: [1]}", [], 1, "unknown setting 'no_such_knob'"),
        ("grid: {}", [], 1, "empty grid"),
        ("cells: []", [], 1, "empty grid"),
        ("grid: {leverage: [2, 30]}", [], 1, "target_leverage"),
        ("grid: {leverage: [2]}", ["--objective", "nope"], 1, "objective 'nope'"),
        ("MISSING", [], 1, "no such file"),
        ("PREMIUM", [], 1, "premium: "),
        ("grid: {leverage: [2]}", ["--scheduler", "PORT", "--connect-timeout", "1"], 3, "unreachable"),
    ],
    ids=[
        "unknown-setting",
        "empty-grid",
        "empty-cells",
        "bad-value",
        "bad-objective",
        "missing-file",
        "missing-premium-file",
        "scheduler",
    ],
)
def test_sweep__bad_input__one_error_line_before_any_work(
    data: Path, tmp_path: Path, grid: str, extra: list[str], code: int, says: str
) -> None:
    funding = "funding/nope.csv" if grid == "MISSING" else "funding/gate_eth_funding.csv"
    history = f"{{funding: {funding}, premium: prices/nope.csv}}" if grid == "PREMIUM" else funding
    body = "grid: {leverage: [2]}" if grid in ("MISSING", "PREMIUM") else grid
    path = tmp_path / "grid.yaml"
    path.write_text(f"histories: [{history}]\n{body}\n")
    extra = [f"tcp://127.0.0.1:{_free_port()}" if x == "PORT" else x for x in extra]
    out = tmp_path / "out" / "cells.csv"
    result = CliRunner(mix_stderr=False).invoke(
        cli,
        ["sweep", str(path), "--out", str(out), "--data-dir", str(data), "--serial", *extra]
        if "--scheduler" not in extra
        else ["sweep", str(path), "--out", str(out), "--data-dir", str(data), *extra],
    )
    assert result.exit_code == code, result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr
    assert not out.parent.exists(), "nothing written: no work started"


def test_grid__names_are_whatever_settings_declares(data: Path) -> None:
    grid = load_grid(str(data / "grid.yaml"), data)
    assert len(grid.cells()) == CELLS
    assert grid.columns == ["target_leverage", "funding_window_hours", "park_rate_per_hour", "spot_fee_bps"]
    ids = [c.cell_id for c in grid.cells()]
    assert len(set(ids)) == len(ids)
    # ids depend on the values, not their spelling: 3 and 3.0, -0.00002 and -2e-5
    (data / "respelled.yaml").write_text(
        GRID.replace("[0, -0.00002]", "[0.0, -2e-5]").replace("[2, 3]", "[2.0, 3.0]")
    )
    assert [c.cell_id for c in load_grid(str(data / "respelled.yaml"), data).cells()] == ids


def test_walk_forward__folds_roll_and_the_pick_is_the_train_best(tmp_path: Path) -> None:
    write_history(tmp_path, days=3 * 365 + 1)
    (tmp_path / "grid.yaml").write_text(
        "histories: [funding/gate_eth_funding.csv]\ngrid: {park_rate_per_hour: [0, -0.00002]}\n"
    )
    grid = load_grid(str(tmp_path / "grid.yaml"), tmp_path)
    wf = grid.walk_forward
    got = folds(grid.histories[0], type(wf)(train_years=1, test_years=1))
    assert [(_iso(f.train[0]), _iso(f.train[1]), _iso(f.test[0])) for f in got] == [
        ("2023-01-01 00:00:00", "2024-01-01 00:00:00", "2024-01-01 00:00:00"),
        ("2024-01-01 00:00:00", "2025-01-01 00:00:00", "2025-01-01 00:00:00"),
    ]
    assert folds(grid.histories[0], type(wf)(train_years=2, test_years=2)) == []
    fold = got[0]
    combos = candidates(grid)
    assert grid.default in combos or grid.default.config_id in {c.config_id for c in combos}
    scores = {combos[0].config_id: "0.01", combos[1].config_id: "0.02"}
    rows = {
        Cell(fold.history, *fold.train, c).cell_id: {
            "verdict": "OK",
            "excess_vs_passive": scores[c.config_id],
        }
        for c in combos
    }
    assert pick(grid, fold, rows, "excess_vs_passive") == combos[1]
    assert pick(grid, fold, rows, "-excess_vs_passive") == combos[0]
    rows[Cell(fold.history, *fold.train, combos[1]).cell_id]["verdict"] = "INVALID: liquidated"
    assert pick(grid, fold, rows, "excess_vs_passive") == combos[0]


def test_walk_forward__table_reports_the_pick_out_of_sample_beside_passive_and_defaults(
    tmp_path: Path,
) -> None:
    write_history(tmp_path, days=3 * 365 + 1)
    (tmp_path / "grid.yaml").write_text(
        "histories: [funding/gate_eth_funding.csv]\ngrid: {park_rate_per_hour: [0, -0.00002]}\n"
    )
    grid = load_grid(str(tmp_path / "grid.yaml"), tmp_path)
    got = folds(grid.histories[0], type(grid.walk_forward)(train_years=1, test_years=1))
    combos = candidates(grid)
    other = next(c for c in combos if c.config_id != grid.default.config_id)
    picks = dict.fromkeys(got, other)
    rows: dict[str, dict[str, str]] = {}
    for fold in got:
        for combo, net, excess in ((other, "0.05", "0.01"), (grid.default, "0.03", "-0.01")):
            row = {"verdict": "OK", "net_apy": net, "passive_net_apy": "0.04", "excess_vs_passive": excess}
            rows[Cell(fold.history, *fold.train, combo).cell_id] = row
            rows[Cell(fold.history, *fold.test, combo).cell_id] = row
    wf_rows = table(grid, picks, rows, "excess_vs_passive")
    assert [r["test_excess_vs_passive"] for r in wf_rows] == [0.01, 0.01]
    assert [r["test_default_excess_vs_passive"] for r in wf_rows] == [-0.01, -0.01]
    assert wf_rows[0]["test_passive_net_apy"] == 0.04 and wf_rows[0]["pick"] == other.label
    text = format_table(wf_rows, grid.walk_forward)
    assert re.search(r"gate_eth_funding\s+\+1\.00\s+-1\.00\s+\(2 folds\)", text), text
    assert "picked +1.00 points (beats passive in 2 of 2 folds), defaults -1.00 points" in text
