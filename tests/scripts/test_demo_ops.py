"""`make demo-ops` as a user runs it (first-run issue, item 12: it printed another network than
the one it ran on, and ended with "not in this demo yet" for things that exist). About 40 s of
ape runs, so `make soak` runs it, not `make test`."""

import subprocess

import pytest

from tests.scripts.conftest import REPO
from tests.units import SOAK

NETWORK = "ethereum:local:foundry"


@pytest.mark.skipif(SOAK == 1, reason="make soak runs it (~40 s of ape runs)")
def test_demo_ops__names_the_network_it_runs_on_and_what_comes_next():
    result = subprocess.run(
        ["make", "--no-print-directory", "demo-ops"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    commands = [line for line in result.stdout.splitlines() if line.strip().startswith("$ ape run")]
    assert commands and all(f"--network {NETWORK}" in line for line in commands)
    assert result.stdout.count("ethereum:local:node") == 1  # only in the hint for `make node`
    assert "not in this demo yet" not in result.stdout
    assert "the hedge is flat" in result.stdout and "`basis-keeper`, README section 3" in result.stdout
