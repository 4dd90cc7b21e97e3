"""How fast the model replay runs: `python -m keeper.replay.speed [steps] [repeat]`; and
how much faster a sweep runs on a LocalCluster than serially: `python -m
keeper.replay.speed sweep [workers]` (`make bench` prints both).

Replays the seeded synthetic history (`keeper.data.files.synthetic_history`) at one print
an hour, `steps` of them (default 35,000, about four years), `repeat` times, and prints
the best wall and CPU time and the steps per second of one replay (the report's passive
run, a second replay, is left out; `basis-keeper replay` runs both). Figures only:
nothing asserts on them (timings depend on the machine and its load; the CPU time is the
steadier one)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from keeper.data.files import synthetic_history
from keeper.replay.exact import run_model


def bench_model_replay(steps: int = 35_000, repeat: int = 3) -> dict[str, float]:
    days = -(-steps // 24)
    prints, prices = synthetic_history(seed=7, days=days, interval_hours=1)
    prints = prints[:steps]
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run_model(prints, prices, passive=False)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    best_wall, best_cpu = min(walls), min(cpus)
    figures = {
        "steps": float(len(result.steps)),
        "wall_seconds": best_wall,
        "cpu_seconds": best_cpu,
        "steps_per_second": len(result.steps) / best_wall,
        "steps_per_cpu_second": len(result.steps) / best_cpu,
        "rebalances": float(sum(result.rebalances.values())),
    }
    print(
        f"model replay, {len(result.steps):,} hourly synthetic steps, best of {repeat}: "
        f"wall {best_wall:.2f} s ({figures['steps_per_second']:,.0f} steps/s), "
        f"CPU {best_cpu:.2f} s ({figures['steps_per_cpu_second']:,.0f} steps/s); "
        f"{int(figures['rebalances'])} rebalances"
    )
    return figures


SWEEP_GRID = """
histories:
  - funding: funding/binance_eth_funding.csv
    prices: prices/binance_spot_ETHUSDT_8h_2020-2023_DERIVED_from_4h.csv
    windows: [{from: 2022-01-01, to: 2022-07-01}, {from: 2023-01-01, to: 2023-07-01}]
  - funding: funding/binance_btc_funding.csv
    prices: prices/binance_spot_BTCUSDT_8h_2020-2023_DERIVED_from_4h.csv
    windows: [{from: 2022-01-01, to: 2022-07-01}, {from: 2023-01-01, to: 2023-07-01}]
grid:
  park_rate_per_hour: [0, -0.00001]
  funding_window_hours: [24, 72]
"""


def bench_sweep(workers: int = 2, data_root: Path | None = None, repeat: int = 2) -> dict[str, Any]:
    """A 16-cell sweep (Binance ETH and BTC, two half-years each, four settings; a seeded
    synthetic history in their place when the shared data is absent) serially and on a
    fresh LocalCluster of `workers` processes: the speed-up (serial wall / parallel
    wall, the cluster's start and the workers' imports counted apart), each worker's peak resident memory, and
    that both give the same rows. Figures only: on a shared machine they move with load."""
    import tempfile

    from keeper.replay.grid import load_grid
    from keeper.replay.sweep import (
        Outcome,
        WorkerMemory,
        memory_limits,
        open_client,
        run_distributed,
        run_serial,
    )

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        grid_text = SWEEP_GRID
        root = data_root or _shared_data()
        if not (root / "funding" / "binance_eth_funding.csv").is_file():
            root = folder
            _write_synthetic(folder)
            grid_text = SWEEP_GRID.replace("binance_eth_funding", "gate_eth_funding").replace(
                "binance_btc_funding", "gate_btc_funding"
            )
        (folder / "grid.yaml").write_text(grid_text)
        cells = load_grid(str(folder / "grid.yaml"), root).cells()
        serial: dict[str, dict[str, str]] = {}

        def keep(into: dict[str, dict[str, str]], memory: WorkerMemory | None = None) -> Any:
            def done(outcome: Outcome) -> None:
                assert outcome.row is not None, outcome.error
                into[outcome.cell.cell_id] = outcome.row
                if memory is not None:
                    memory.add(outcome.meta)

            return done

        started = time.perf_counter()
        client = open_client(None, workers)
        try:
            client.wait_for_workers(workers)
            client.run(_warm)  # each worker imports the replay (the serial run has it already)
            startup = time.perf_counter() - started
            serial_runs, parallel_runs = [], []
            memory = WorkerMemory()
            parallel: dict[str, dict[str, str]] = {}
            for _ in range(repeat):  # interleaved, best of each: the machine's load moves
                _clear()
                started = time.perf_counter()
                run_serial(cells, keep(serial))
                serial_runs.append(time.perf_counter() - started)
                client.run(_clear)
                started = time.perf_counter()
                run_distributed(cells, client, keep(parallel, memory))
                parallel_runs.append(time.perf_counter() - started)
            limits = memory_limits(client)
        finally:
            cluster = client.cluster
            client.close()
            cluster.close()
    serial_seconds, parallel_seconds = min(serial_runs), min(parallel_runs)
    same = serial == parallel
    figures = {
        "cells": len(cells),
        "workers": workers,
        "serial_seconds": round(serial_seconds, 2),
        "parallel_seconds": round(parallel_seconds, 2),
        "cluster_start_seconds": round(startup, 2),
        "speedup": round(serial_seconds / parallel_seconds, 2),
        "speedup_with_start": round(serial_seconds / (parallel_seconds + startup), 2),
        "repeat": repeat,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "worker_peak_rss_mib": {f"{w} (pid {p})": round(b / 2**20) for (w, p), b in memory.peak.items()},
        "histories_loaded_per_worker": {f"{w} (pid {p})": n for (w, p), n in memory.loads.items()},
        "same_rows": same,
    }
    print(
        f"sweep: {len(cells)} model replays serially {serial_seconds:.1f} s, on a LocalCluster of {workers} "
        f"processes {parallel_seconds:.1f} s (best of {repeat}, interleaved; + {startup:.1f} s to start it): "
        f"speed-up {figures['speedup']:.2f}x ({figures['speedup_with_start']:.2f}x with the start); tables "
        f"{'identical' if same else 'DIFFER'}; load average {figures['load_average_1min']} on "
        f"{os.cpu_count()} cores (other processes share them)"
    )
    for line in memory.lines(limits):
        print(line)
    return figures


def _warm() -> None:
    import keeper.replay.sweep  # noqa: F401


def _clear() -> None:
    """Empties this process's history caches (each timed run reads its files)."""
    from keeper.replay.sweep import load_history, window_inputs

    load_history.cache_clear()
    window_inputs.cache_clear()


def _shared_data() -> Path:
    env = os.environ.get("BASIS_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def _write_synthetic(folder: Path) -> None:
    """Two seeded 8-hourly histories in the shared data's layout (gate: UTC)."""
    from datetime import UTC, datetime

    def iso(t: int) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")

    (folder / "funding").mkdir()
    (folder / "prices").mkdir()
    for coin, seed in (("eth", 7), ("btc", 8)):
        prints, points = synthetic_history(seed=seed, days=460, start=1_640_995_200)  # from 2022
        rows = ["Symbol,Date,Funding Rate", *(f"X,{iso(p.time)},{p.rate!r}" for p in prints)]
        (folder / "funding" / f"gate_{coin}_funding.csv").write_text("\n".join(rows) + "\n")
        bars = ["timestamp,open", *(f"{iso(p.time)},{p.price!r}" for p in points)]
        name = f"binance_spot_{coin.upper()}USDT_8h_2020-2023_DERIVED_from_4h.csv"
        (folder / "prices" / name).write_text("\n".join(bars) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["sweep"]:
        bench_sweep(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    else:
        bench_model_replay(*[int(a) for a in sys.argv[1:3]])
