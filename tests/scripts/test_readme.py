"""README.md's runbook, run as written: the shell blocks of "1. On a local anvil", "3. The
keeper" and "4. Shutting a vault down" go line by line through one fresh `bash`, against an
anvil on a free port that stands in for `make node`, with ape's data folder and the manifests
in temporary folders.

Only what a test cannot do as a person would is stood in for, each named here:
- `make setup compile` (`make test` has just done it) and `make node` (the anvil above:
  BASIS_RPC_URL points at it);
- `ape accounts import <alias>` (it asks for a key on a terminal): the keystore file is written
  into the temporary ape data folder with the README's passphrase (`'...'`), and the alias gets
  the keeper role with the README's own `ape run roles keeper` line;
- SEPOLIA_RPC_URL points at the same anvil, so the keystore keeper block runs too;
- `basis-keeper run` runs under `timeout -s TERM` (it stops gracefully on SIGTERM).
Every other line must exit 0, or with the status its comment names (`(exit N)`), and print no
traceback, so a README line that stops working fails here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from eth_account import Account

from tests.fixtures.data import REPO
from tests.scripts.test_cli_e2e import start_anvil, stop

# starts its own anvil: a chain test though it asks for none of ape's fixtures
pytestmark = pytest.mark.chain

KEEPER_BOT_KEY = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"  # TEST::9
RUN_SECONDS = 7


def runbook_blocks(text: str) -> list[str]:
    """The ```sh blocks of runbook sections 1, 3 and 4, in order."""
    blocks: list[str] = []
    for title in ("### 1. On a local anvil", "### 3. The keeper", "### 4. Shutting a vault down"):
        start = text.index(title)
        end = text.find("\n### ", start + 1)
        section = text[start : end if end > 0 else len(text)]
        blocks += re.findall(r"```sh\n(.*?)```", section, re.S)
    return blocks


def command_lines(blocks: list[str]) -> list[str]:
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def expected_status(line: str) -> int:
    found = re.search(r"\(exit (\d+)\)", line)
    return int(found.group(1)) if found else 0


def test_readme_runbook_lines_run_as_written(tmp_path):
    readme = (REPO / "README.md").read_text()
    lines = command_lines(runbook_blocks(readme))
    assert any(line.startswith("basis-keeper once --account TEST::0") for line in lines)
    process, url = start_anvil(31337)
    ape_dir = tmp_path / "ape"
    (ape_dir / "accounts").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APE_ACCOUNTS_", "BASIS_", "SEPOLIA_"))}
    env.update(
        HOME=str(tmp_path),
        APE_DATA_FOLDER=str(ape_dir),
        BASIS_RPC_URL=url,
        SEPOLIA_RPC_URL=url,
        BASIS_DEPLOYMENTS_DIR=str(tmp_path / "deployments"),
        PATH=f"{REPO / 'node_modules' / '.bin'}:{env.get('PATH', '')}",
        PYTHONWARNINGS="ignore",
    )
    script, expected = [], {}
    for i, line in enumerate(lines):
        command = line.split("#", 1)[0].strip()
        if command in ("make setup compile", "make node"):
            continue
        if command.startswith("ape accounts import "):
            alias = command.split()[-1]
            keyfile = Account.encrypt(KEEPER_BOT_KEY, "...", kdf="pbkdf2", iterations=1_000)
            (ape_dir / "accounts" / f"{alias}.json").write_text(json.dumps(keyfile))
            address = Account.from_key(KEEPER_BOT_KEY).address
            assert "`ape run roles keeper <address> --account <owner>`" in readme  # the README's way
            line = f"ape run roles keeper {address} --account TEST::0  # README: then give it the keeper role"
        elif command.startswith("basis-keeper run"):
            line = f"timeout -s TERM {RUN_SECONDS} {line}"
            expected[i] = 124  # timeout's status when it had to stop the command
        script.append(f'echo "::start {i}::"\n{line}\necho "::status {i} $?::"')
        expected.setdefault(i, expected_status(line))
    try:
        result = subprocess.run(
            ["bash", "--noprofile", "--norc"],
            input="\n".join(script) + "\n",
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=1_200,  # a loaded machine: ~2 min alone
        )
    finally:
        stop(process)
    out = result.stdout + result.stderr
    statuses = {int(i): int(rc) for i, rc in re.findall(r"::status (\d+) (\d+)::", result.stdout)}
    for i, want in expected.items():
        assert statuses.get(i) == want, (
            f"README line failed: {lines[i]!r}: exit {statuses.get(i)}\n{out[-4000:]}"
        )
    assert "Traceback" not in out, out[-4000:]
    # What the walk-through shows: `market replay` warped the clock by each 8 h row of the CSV,
    assert "+ 28800s  3,162.50 USD" in result.stdout, result.stdout[-3000:]
    # the keeper acted on a fresh chain, and ran under supervision.
    assert re.search(r"block \d+: Rebalance: .* -> 0x", result.stdout), result.stdout[-3000:]
    assert (
        "keeper stopped" in result.stderr and "SHORT FUNDING HISTORY" not in result.stdout.split("warped")[-1]
    )
    # ... and section 4 unwound what the keeper had hedged, to flat.
    assert re.search(r"the hedge is flat after [1-9]\d* steps", result.stdout), result.stdout[-3000:]
