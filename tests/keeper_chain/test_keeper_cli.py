"""`basis-keeper once` and `status` as an operator calls them, and their one-line errors."""

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from keeper.ops.feeder import set_funding
from tests.keeper_chain.test_keeper_process import REPO, fund_and_wait_for_history


def keeper_cli(chain, stack, keystore_dir, *args, **env):
    full_env = {
        **os.environ,
        "APE_DATA_FOLDER": str(keystore_dir),
        "APE_ACCOUNTS_bot_PASSPHRASE": "pw",
        "BASIS_KEEPER_RPC_URL": chain.provider.uri,
        "BASIS_KEEPER_DEPLOYMENTS_DIR": str(stack[1]),
        "BASIS_KEEPER_STRATEGY__FUNDING_WINDOW_HOURS": "1",
        "BASIS_KEEPER_RPC_RETRIES": "0",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "keeper.cli.keeper", *args],
        env=full_env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )


def test_once__exit_code_says_whether_it_acted(chain, stack, keystore_dir, deployer, alice):
    quiet = keeper_cli(chain, stack, keystore_dir, "once", "--account", "bot")
    assert quiet.returncode == 2 and "Hold" in quiet.stdout and "2 round trips" in quiet.stdout
    fund_and_wait_for_history(stack[0], chain, deployer, alice)
    dry = keeper_cli(chain, stack, keystore_dir, "once", "--dry-run")
    assert dry.returncode == 2 and "Rebalance" in dry.stdout and "dry run, not sending" in dry.stderr
    acted = keeper_cli(chain, stack, keystore_dir, "once", "--account", "bot")
    assert acted.returncode == 0, acted.stderr
    assert "Rebalance" in acted.stdout and stack[0].hedge.short_size() > 0


def test_status__json_reads_the_vault_and_what_it_would_do(chain, stack, keystore_dir, deployer):
    set_funding(stack[0], deployer, Decimal("0.00001"), "1h")
    out = keeper_cli(chain, stack, keystore_dir, "status", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["nav"] == stack[0].vault.totalAssets() and info["would"] == "Hold"
    assert info["hedge"] == stack[0].hedge.address
    assert info["booked_short"] == info["short_size"] == 0 and info["liquidated"] is False
    assert info["asset_price_e8"] == 10**8
    assert abs(Decimal(info["funding_now_per_hour"]) - Decimal("0.00001")) < Decimal("1e-14")


@pytest.mark.parametrize(
    "args,env,message",
    [
        (["once"], {}, "no keeper account: set BASIS_KEEPER_ACCOUNT"),
        (["once", "--account", "nobody"], {}, "no keystore account 'nobody'"),
        (
            ["once", "--account", "bot"],
            {"APE_ACCOUNTS_bot_PASSPHRASE": ""},
            "locked: export BASIS_KEEPER_PASSPHRASE",
        ),
        (
            ["once", "--dry-run"],
            {"BASIS_KEEPER_DEPLOYMENTS_DIR": "/nonexistent"},
            "no deployment for chain 31337",
        ),
        (["once", "--dry-run"], {"BASIS_KEEPER_INTERVAL_SECONDS": "-1"}, "BASIS_KEEPER_INTERVAL_SECONDS"),
        (["once", "--dry-run"], {"BASIS_KEEPER_STRATEGY__TARGET_LEVERAGE": "4"}, "BASIS_KEEPER_STRATEGY"),
        (
            ["once", "--dry-run"],
            {"BASIS_KEEPER_STRATEGY__MAX_SLIPPAGE_BPS": "60"},
            "strategy settings do not fit the vault's rules",
        ),
        (["status"], {"BASIS_KEEPER_RPC_URL": "http://127.0.0.1:9"}, "unreachable"),
        (["status"], {"BASIS_KEEPER_RPC_URL": ""}, "setting BASIS_KEEPER_RPC_URL: is empty"),
        (["once", "--account", "TEST::3"], {}, "grants the role with `ape run roles keeper 0x"),
        (["once", "--account", "TEST::10"], {}, "no test account 'TEST::10'"),
        (
            ["status"],
            {"BASIS_KEEPER_RPC_URL": "http://user:hunter2@no-such-host.invalid:8545"},
            "http://no-such-host.invalid:8545",
        ),
    ],
)
def test_bad_input__one_clear_line_and_a_nonzero_exit(chain, stack, keystore_dir, args, env, message):
    out = keeper_cli(chain, stack, keystore_dir, *args, **env)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr
    assert "hunter2" not in out.stderr + out.stdout
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_status__whole_units_for_people_and_json_logs(chain, stack, keystore_dir, alice):
    dep = stack[0]
    dep.asset.mint(alice, 2_500_500_000, sender=alice)
    dep.asset.approve(dep.vault, 2_500_500_000, sender=alice)
    dep.vault.deposit(2_500_500_000, alice, sender=alice)
    out = keeper_cli(chain, stack, keystore_dir, "status", LOG_FORMAT="json", BASIS_KEEPER_LOG_FORMAT="json")
    assert out.returncode == 0, out.stderr
    assert "NAV  2,500.50 asset" in out.stdout and "2500500000" not in out.stdout
    assert "funding history" in out.stdout
    assert all(line.startswith("{") for line in out.stderr.splitlines()), out.stderr
    assert "--account" not in keeper_cli(chain, stack, keystore_dir, "status", "--help").stdout


def test_once__alert_has_its_own_exit_code(chain, stack, keystore_dir):
    """Last in this file: it leaves the oracle stale."""
    chain.mine(deltatime=4 * 3_600)  # past the vault's max_oracle_age, nobody pushing prices
    out = keeper_cli(chain, stack, keystore_dir, "once", "--account", "bot")
    assert out.returncode == 4, out.stdout + out.stderr
    assert "ALERT" in out.stderr


def test_dotenv__read_from_the_working_directory__the_environment_wins(chain, stack, keystore_dir, tmp_path):
    # first-run issue, item 4: `.env.example` said "copy to .env" but nothing read it
    (tmp_path / ".env").write_text(
        f"BASIS_KEEPER_RPC_URL={chain.provider.uri}\nBASIS_KEEPER_DEPLOYMENTS_DIR={stack[1]}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASIS_")}
    env["APE_DATA_FOLDER"] = str(keystore_dir)

    def status(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "keeper.cli.keeper", "status", "--json"],
            env={**env, **extra},
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )

    read = status()
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["hedge"] == stack[0].hedge.address
    overridden = status(BASIS_KEEPER_DEPLOYMENTS_DIR=str(tmp_path / "elsewhere"))
    assert overridden.returncode == 1 and "no deployment for chain 31337" in overridden.stderr


def test_help__says_what_it_does_and_its_exit_codes(chain, stack, keystore_dir):
    # first-run issue, item 13: `--help` said only "The basis vault keeper."
    out = keeper_cli(chain, stack, keystore_dir, "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())  # as wrapped for the terminal
    assert "calls the vault's rebalance" in text and "deployments/<chain_id>.json" in text
    assert (
        "exit codes: 0 ok (once: acted), 1 bad input, 2 nothing to do, 3 failed, 4 held with an alert" in text
    )
    for command in ("status", "once", "run", "replay", "demo"):
        assert f"\n  {command} " in out.stdout
