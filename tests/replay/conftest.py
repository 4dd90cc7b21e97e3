"""The replay's tests: model mode needs no chain or network; chain mode starts its own anvil.

Real histories are read by path from the shared data folder (`BASIS_DATA_DIR`, default
`<repo>/../shared/data`); tests that need them skip with the reason when it is absent.
The imported overrides keep the root conftest's ape fixtures out of these tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.offline import _forget_reverted_contracts, _personas  # noqa: F401 (overrides)

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("BASIS_DATA_DIR", REPO.parent / "shared" / "data"))


def data_file(relative: str) -> Path:
    path = DATA_DIR / relative
    if not path.is_file():
        pytest.skip(f"{relative} not found under {DATA_DIR} (set BASIS_DATA_DIR)")
    return path
