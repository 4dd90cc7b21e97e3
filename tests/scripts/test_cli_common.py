"""The script boundary: networks, accounts and the one `error:` line (in-process; the
subprocess runs in test_cli_e2e.py check the same lines as a user sees them)."""

from types import SimpleNamespace

import pytest

from keeper.cli import common
from keeper.core.errors import UserError
from tests.scripts.test_cli_e2e import free_port


def test_error_boundary__one_line_and_exit_1(capsys):
    with pytest.raises(SystemExit) as info, common.error_boundary():
        raise UserError("amount must be positive, got 0")
    assert info.value.code == 1
    assert capsys.readouterr().err == "error: amount must be positive, got 0\n"


def test_error_boundary__bugs_keep_their_traceback():
    with pytest.raises(ZeroDivisionError), common.error_boundary():
        _ = 1 / 0


def test_redact__hides_keys_in_rpc_urls():
    """keeper.net.rpc's redact, which the scripts share with the keeper."""
    assert common.redact("https://eth-sepolia.g.alchemy.com/v2/s3cr3t") == "https://eth-sepolia.g.alchemy.com"
    assert common.redact("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert "s3cr3t" not in common.redact("https://user:s3cr3t@rpc.example.org?key=s3cr3t")


def test_rpc__unset_variable_and_unreachable_node(monkeypatch):
    monkeypatch.delenv("SEPOLIA_RPC_URL", raising=False)
    with pytest.raises(UserError, match="SEPOLIA_RPC_URL is not set: export SEPOLIA_RPC_URL="):
        common._rpc_url("ethereum:sepolia:node")
    monkeypatch.delenv("BASIS_RPC_URL", raising=False)
    assert common._rpc_url("ethereum:local:node")[0] == "http://127.0.0.1:8545"
    assert common._rpc_url("ethereum:local:foundry") is None
    with pytest.raises(UserError, match=r"cannot reach the RPC at http://127\.0\.0\.1:\d+ \(.*\); start one"):
        common.probe_rpc(f"http://127.0.0.1:{free_port()}", "start one with `make node`")
    with pytest.raises(UserError, match="must start with http:// or https://"):
        common.probe_rpc("ws://127.0.0.1:8545", "check it")


def test_connected__unknown_network():
    with (
        pytest.raises(
            UserError, match=r"unknown network 'ethereum:nowhere' \(.*\); use one of ethereum:local:node"
        ),
        common.connected("ethereum:nowhere"),
    ):
        pass


def live_session():
    return SimpleNamespace(is_local=False, choice="ethereum:sepolia:node")


def test_load_account__test_accounts_only_locally():
    with pytest.raises(
        UserError, match="test accounts exist only on local chains; on ethereum:sepolia:node sign"
    ):
        common.load_account("TEST::0", live_session())
    local = SimpleNamespace(is_local=True, choice="ethereum:local:node")
    assert common.load_account("TEST::1", local).address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    with pytest.raises(UserError, match=r"no test account 'TEST::99': use TEST::0 to TEST::\d+"):
        common.load_account("TEST::99", local)


def test_load_account__unknown_alias_and_none():
    with pytest.raises(
        UserError, match=r"no ape account named 'nobody-here' \(.*\); import one with `ape accounts"
    ):
        common.load_account("nobody-here", live_session())
    with pytest.raises(UserError, match="--account is required"):
        common.load_account(None, live_session())
