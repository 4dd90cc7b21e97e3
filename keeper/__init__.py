"""Basis vault tooling in layers; each imports only the ones below it (`make lint` checks):

- `keeper.cli`: entry points only (`basis-keeper`, `ape run ...` commands); nothing imports it.
- `keeper.replay`, `keeper.ops`: the replay and the operator tooling (ape).
- `keeper.bot`: the keeper bot (strategy, planner, funding, runtime, wiring).
- `keeper.chain`, `keeper.data`, `keeper.model`: reading and writing the chain (JSON-RPC),
  venue funding (live and recorded), the exact models.
- `keeper.net`: the one HTTP / JSON-RPC transport with retries.
- `keeper.core`: units, rules, state, errors; no I/O.

Only `keeper.ops`, `keeper.replay` and `keeper.cli` import ape.
"""

__version__ = "0.1.0"
