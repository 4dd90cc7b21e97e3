"""The keeper's pure tests: no chain, no network.

Recorded third-party API responses are read by path from the shared data folder
(`BASIS_DATA_DIR`, default `<repo>/../shared/data`), never copied into the project; tests
that need them skip with the reason when the folder is absent. The project's own small
fixtures under `tests/fixtures/api/` always run.

These tests also run without ape's plugin (`pytest tests/keeper -p no:ape_test`, no
node needed); the override below keeps the root conftest's persona fixture, which needs
ape's accounts, out of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.offline import _forget_reverted_contracts, _personas  # noqa: F401 (overrides)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "api"
DATA_DIR = Path(os.environ.get("BASIS_DATA_DIR", REPO.parent / "shared" / "data"))


def fixture_json(name: str) -> Any:
    """One of the project's own hand-written API fixtures."""
    return json.loads((FIXTURES / name).read_text())


def recorded_json(name: str) -> Any:
    """A recorded third-party response from the shared data folder, or skip."""
    path = DATA_DIR / "api" / name
    if not path.is_file():
        pytest.skip(f"recorded response {name} not found under {DATA_DIR / 'api'} (set BASIS_DATA_DIR)")
    return json.loads(path.read_text())


def mutated(name: str, mutate: Callable[[Any], object], *path: str) -> Any:
    """A fresh copy of fixture `name` with `mutate` applied to the part at `path`."""
    body = fixture_json(name)
    part = body
    for key in path:
        part = part[key]
    mutate(part)
    return body
