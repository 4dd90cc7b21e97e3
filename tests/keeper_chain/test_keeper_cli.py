"""`basis-keeper once` and `status` as an operator calls them, and their one-line errors."""

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from keeper.market import set_funding
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
        [sys.executable, "-m", "keeper.main", *args], env=full_env, capture_output=True, text=True, cwd=REPO
    )


def test_once__exit_code_says_whether_it_acted(chain, stack, keystore_dir, deployer, depositor):
    quiet = keeper_cli(chain, stack, keystore_dir, "once", "--account", "bot")
    assert quiet.returncode == 2 and "Hold" in quiet.stdout and "2 round trips" in quiet.stdout
    fund_and_wait_for_history(stack[0], chain, deployer, depositor)
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
            "locked: set APE_ACCOUNTS_bot_PASSPHRASE",
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
    ],
)
def test_bad_input__one_clear_line_and_a_nonzero_exit(chain, stack, keystore_dir, args, env, message):
    out = keeper_cli(chain, stack, keystore_dir, *args, **env)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
