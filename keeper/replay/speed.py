"""How fast the model replay runs: `python -m keeper.replay.speed [steps] [repeat]`.

Replays the seeded synthetic history (`keeper.data.files.synthetic_history`) at one print
an hour, `steps` of them (default 35,000, about four years), `repeat` times, and prints
the best wall and CPU time and the steps per second of one replay (the report's passive
run, a second replay, is left out; `basis-keeper replay` runs both). Figures only:
nothing asserts on them (timings depend on the machine and its load; the CPU time is the
steadier one)."""

from __future__ import annotations

import sys
import time

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


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    bench_model_replay(*args)
