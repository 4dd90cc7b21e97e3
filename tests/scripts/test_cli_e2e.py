"""The scripts as a user runs them: `ape run ...` in a subprocess against a standalone anvil.

One anvil stands in for Sepolia (chain id 11155111, reached as `ethereum:sepolia:node`
through SEPOLIA_RPC_URL), signed for by a keystore account imported with ape's own API,
its passphrase from APE_ACCOUNTS_<alias>_PASSPHRASE: never a test account. Sepolia's
2-block confirmation wait is turned off for the stand-in (APE_ETHEREUM_SEPOLIA), since an
auto-mining anvil makes no block after the last transaction. A second anvil checks the
`make node` path (`ethereum:local:node`, test accounts). Everything else about these runs is
what a user gets, including each bad input's single `error:` line.
"""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fixtures.data import FIXTURES, REPO

# starts its own anvil: a chain test though it asks for none of ape's fixtures
pytestmark = pytest.mark.chain

APE = str(REPO / ".venv" / "bin" / "ape")
ANVIL = str(REPO / "node_modules" / ".bin" / "anvil")
PASSPHRASE = "correct horse battery staple"
SEPOLIA = ["--network", "ethereum:sepolia:node"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(url: str, method: str, params: list) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["result"]


def start_anvil(chain_id: int):
    port = free_port()
    process = subprocess.Popen(
        [ANVIL, "--port", str(port), "--chain-id", str(chain_id), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            rpc(url, "eth_chainId", [])
            return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("anvil did not start")


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def run(env: dict, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [APE, "run", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def error_line(result: subprocess.CompletedProcess) -> str:
    """The run failed with exactly one `error:` line and no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return errors[0]


@pytest.fixture(scope="module")
def base_env(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APE_ACCOUNTS_", "BASIS_", "SEPOLIA_"))}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{REPO / 'node_modules' / '.bin'}:{env.get('PATH', '')}"
    env["APE_DATA_FOLDER"] = str(tmp_path_factory.mktemp("ape-data"))
    env["PYTHONWARNINGS"] = "ignore"
    return env


@pytest.fixture(scope="module")
def sepolia(base_env, tmp_path_factory):
    """(env, operator address): the stand-in chain, a funded keystore account 'operator'."""
    process, url = start_anvil(11_155_111)
    env = dict(base_env)
    key = "0x" + secrets.token_hex(32)
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from ape_accounts import import_account_from_private_key as imp; "
            "print(imp('operator', sys.argv[1], sys.argv[2]).address)",
            PASSPHRASE,
            key,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    address = imported.stdout.strip().splitlines()[-1]
    rpc(url, "anvil_setBalance", [address, hex(100 * 10**18)])
    env.update(
        SEPOLIA_RPC_URL=url,
        APE_ETHEREUM_SEPOLIA='{"required_confirmations": 0, "base_fee_multiplier": 1.4}',
        BASIS_DEPLOYMENTS_DIR=str(tmp_path_factory.mktemp("deployments")),
        APE_ACCOUNTS_operator_PASSPHRASE=PASSPHRASE,
    )
    yield env, address
    stop(process)


@pytest.fixture(scope="module")
def standin_deploy(sepolia):
    """`ape run deploy` on the stand-in: (stdout, wall seconds)."""
    env, _ = sepolia
    started = time.monotonic()
    out = ok(run(env, "deploy", *SEPOLIA, "--account", "operator"))
    return out, time.monotonic() - started


def test_e2e__testnet_path_with_a_keystore_account(sepolia, standin_deploy):
    env, admin = sepolia
    account = ["--account", "operator"]

    out, wall = standin_deploy
    manifest = json.loads((REPO / env["BASIS_DEPLOYMENTS_DIR"] / "11155111.json").read_text())
    assert manifest["network"] == "ethereum:sepolia:node" and manifest["deployer"] == admin
    assert f"manifest written: {env['BASIS_DEPLOYMENTS_DIR']}/11155111.json" in out
    # For the record (the closing note): the whole command, ape's start-up included.
    print(
        f"\nape run deploy on anvil: {wall:.1f} s wall, {manifest['gas_used']:,} gas, "
        f"{manifest['transactions']} txs"
    )

    assert "already exists" in error_line(run(env, "deploy", *SEPOLIA, *account))

    out = ok(run(env, "deposit", *SEPOLIA, *account, "--amount", "2500.5", "--faucet"))
    assert "approved the vault for exactly 2,500.50 USDC" in out and "received 2,500.500000 bvUSD" in out

    status = json.loads(ok(run(env, "status", *SEPOLIA, "--json", "--holder", admin)))
    assert status["nav_wei"] == 2_500_500_000 == status["holder"]["value_wei"]
    assert status["chain_id"] == 11_155_111 and status["roles"]["owner"] == admin

    out = ok(run(env, "market", "funding", "-0.01%", "--per", "8h", *SEPOLIA, *account))
    assert "-> -0.001250 %/h" in out
    out = ok(
        run(
            env,
            "market",
            "mirror",
            "--once",
            "--from-file",
            str(FIXTURES / "api" / "hyperliquid_metaAndAssetCtxs.json"),
            *SEPOLIA,
            *account,
        )
    )
    assert "ETH 3600.5 USD, funding -0.000310 %/h: price pushed, funding set" in out

    out = ok(run(env, "withdraw", *SEPOLIA, *account, "--all"))
    assert "withdrew 2,500.50 USDC" in out


@pytest.fixture(scope="module")
def bad_runs(sepolia, standin_deploy, tmp_path_factory):
    """Every bad input, run two at a time: {name: CompletedProcess}."""
    env, _ = sepolia
    locked = {k: v for k, v in env.items() if k != "APE_ACCOUNTS_operator_PASSPHRASE"}
    wrong = {**env, "APE_ACCOUNTS_operator_PASSPHRASE": "not it"}
    empty = {**env, "BASIS_DEPLOYMENTS_DIR": str(tmp_path_factory.mktemp("empty"))}
    dead = {**env, "BASIS_RPC_URL": f"http://127.0.0.1:{free_port()}"}
    secret = {**env, "SEPOLIA_RPC_URL": f"http://user:hunter2@127.0.0.1:{free_port()}/key"}
    confirming = {k: v for k, v in env.items() if k != "APE_ETHEREUM_SEPOLIA"}
    admin = ["--account", "operator"]
    cases = {
        "unknown network": (env, ["status", "--network", "ethereum:nowhere"]),
        "rpc unreachable": (dead, ["status", "--network", "ethereum:local:node"]),
        "no manifest": (empty, ["status", *SEPOLIA]),
        "locked account": (locked, ["deposit", *SEPOLIA, *admin, "--amount", "1"]),
        "wrong passphrase": (wrong, ["deposit", *SEPOLIA, *admin, "--amount", "1"]),
        "zero amount": (env, ["deposit", *SEPOLIA, *admin, "--amount", "0"]),
        "negative amount": (env, ["withdraw", *SEPOLIA, *admin, "--amount", "-5"]),
        "more than the balance": (env, ["deposit", *SEPOLIA, *admin, "--amount", "500000"]),
        "mainnet deploy": (env, ["deploy", "--network", "ethereum:mainnet:node", *admin]),
        "credentials in the URL": (secret, ["status", *SEPOLIA]),
        "confirmations on anvil": (confirming, ["status", *SEPOLIA]),
        "missing approval": (
            env,
            ["deposit", *SEPOLIA, *admin, "--amount", "10", "--faucet", "--no-approve"],
        ),
        "accept without an offer": (env, ["admin", "accept-ownership", *SEPOLIA, *admin]),
        "unwind before shutdown": (env, ["admin", "unwind", *SEPOLIA, *admin]),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run, case_env, *args) for name, (case_env, args) in cases.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown network", "error: unknown network 'ethereum:nowhere' ("),
        ("rpc unreachable", "error: cannot reach the RPC at http://127.0.0.1:"),
        ("no manifest", "error: no deployment for chain 11155111: "),
        (
            "locked account",
            "error: account 'operator' is locked: export BASIS_PASSPHRASE=<its passphrase> "
            "(or APE_ACCOUNTS_operator_PASSPHRASE)",
        ),
        ("mainnet deploy", "error: ethereum:mainnet:node is not a local chain or a testnet"),
        ("credentials in the URL", "error: cannot reach the RPC at http://127.0.0.1:"),
        ("confirmations on anvil", "is an auto-mining anvil: ape would wait forever for 2 confirmations"),
        (
            "wrong passphrase",
            "error: wrong passphrase for account 'operator' (from APE_ACCOUNTS_operator_PASSPHRASE)",
        ),
        ("zero amount", "error: amount must be positive, got 0"),
        ("negative amount", "error: amount must be positive, got -5"),
        ("more than the balance", "less than the 500,000.00 USDC to deposit (--faucet mints test tokens)"),
        ("missing approval", "error: missing approval: the vault may spend 0.00 USDC of"),
        ("accept without an offer", "error: no ownership transfer is pending"),
        ("unwind before shutdown", "error: the vault is not shut down: unwind steps open only after"),
    ],
)
def test_e2e__bad_input_is_one_line(bad_runs, case, expected):
    line = error_line(bad_runs[case])
    print(f"\n{case}: {line}")
    assert expected in line
    assert "hunter2" not in bad_runs[case].stdout + bad_runs[case].stderr


def test_e2e__ape_run_help_lists_every_command_in_full(base_env):
    # first-run issue, item 13: rows read "bench  Run 'bench.py:main'" and a cut "e.g."
    out = ok(run(base_env, "--help"))
    rows = out.split("Commands:")[1]
    names = ("admin", "bench", "demo", "deploy", "deposit", "market", "roles", "status", "withdraw")
    assert all(f"\n  {name} " in rows for name in names)
    assert "..." not in rows and "Run '" not in rows


def test_e2e__paused_vault_stale_oracle_and_shutdown(sepolia, standin_deploy, bad_runs):
    """State-changing runs, after the others: the owner pauses with `ape run admin`
    (unpaused through anvil, to save a run), four hours pass with no price push, then the
    owner shuts the vault down; its hedge holds nothing, so there is nothing to unwind."""
    from eth_utils import function_signature_to_4byte_selector

    env, admin = sepolia
    url = env["SEPOLIA_RPC_URL"]
    vault = json.loads((REPO / env["BASIS_DEPLOYMENTS_DIR"] / "11155111.json").read_text())["vault"]
    account = ["--account", "operator"]
    deposit = ["deposit", *SEPOLIA, *account, "--amount", "10", "--faucet"]

    assert "deposits paused (exits still work) (tx 0x" in ok(run(env, "admin", "pause", *SEPOLIA, *account))
    assert error_line(run(env, *deposit)) == "error: deposits are paused by the guardian (exits still work)"
    rpc(url, "anvil_impersonateAccount", [admin])
    data = "0x" + function_signature_to_4byte_selector("unpause()").hex()
    rpc(url, "eth_sendTransaction", [{"from": admin, "to": vault, "data": data}])
    rpc(url, "anvil_stopImpersonatingAccount", [admin])
    rpc(url, "evm_increaseTime", [4 * 3_600])
    rpc(url, "evm_mine", [])
    line = error_line(run(env, *deposit))
    assert line.startswith("error: the oracle price is stale: last update 4h 0") and "accepts 3h 00m" in line

    assert "shut down for good" in ok(run(env, "admin", "shutdown", *SEPOLIA, *account))
    assert "nothing to unwind: the hedge is flat" in ok(run(env, "admin", "unwind", *SEPOLIA, *account))
