"""The replay's pure tests: no chain, no network (`pytest tests/replay -p no:ape_test`).

Real histories are read by path from the shared data folder (`BASIS_DATA_DIR`, default
`<repo>/../shared/data`); tests that need them skip with the reason when it is absent.
The overrides below keep the root conftest's ape fixtures out of these tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("BASIS_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="module", autouse=True)
def _forget_reverted_contracts():
    """Overrides the root conftest's cache reset, which needs ape's chain."""
    yield


@pytest.fixture(scope="session", autouse=True)
def _personas():
    """Overrides the root conftest's autouse persona fixture: nothing here needs accounts."""


def data_file(relative: str) -> Path:
    path = DATA_DIR / relative
    if not path.is_file():
        pytest.skip(f"{relative} not found under {DATA_DIR} (set BASIS_DATA_DIR)")
    return path
