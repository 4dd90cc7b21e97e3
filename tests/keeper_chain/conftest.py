"""The keeper against a real chain: the reference venue and a vault on ape's anvil, read
over plain JSON-RPC the way the keeper process reads a node."""

import json
from pathlib import Path

import pytest
from eth_account import Account

from keeper.chain.manifest import write_manifest
from keeper.chain.reader import Addresses
from keeper.core.rules import VaultRules
from keeper.net.rpc import Rpc
from keeper.ops.config import load_deploy_config
from keeper.ops.contracts import deploy_vault, hedge_of
from keeper.ops.deploy import deploy
from keeper.ops.deployment import Deployment


@pytest.fixture(scope="session")
def keeper_account(accounts):
    return accounts[8]


@pytest.fixture(scope="session")
def depositor(accounts):
    return accounts[3]


@pytest.fixture(scope="module")
def vault(project, deployer, venue, keeper_account, depositor):
    v = deploy_vault(project, deployer, venue, VaultRules(), keeper=keeper_account.address)
    venue.asset.mint(depositor, 1_000_000 * 10**6, sender=depositor)
    venue.asset.approve(v, 2**256 - 1, sender=depositor)
    return v


@pytest.fixture(scope="module")
def hedge(project, vault):
    return hedge_of(project, vault)


@pytest.fixture(scope="module")
def addresses(venue, vault, hedge, keeper_account):
    return Addresses(
        vault=vault.address, hedge=hedge.address, keeper=keeper_account.address, **venue.addresses()
    )


@pytest.fixture
def rpc(chain):
    return Rpc(chain.provider.uri, retries=0)


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(project, chain, deployer, keeper_account, tmp_path_factory):
    config = load_deploy_config(REPO / "deploy" / "local.yaml")
    roles = config.roles.model_copy(update={"keeper": keeper_account.address})
    manifest, _ = deploy(
        project, chain, deployer, config.model_copy(update={"roles": roles}), network="ethereum:local:foundry"
    )
    folder = tmp_path_factory.mktemp("deployments")
    write_manifest(manifest, folder)
    return Deployment.bind(project, manifest), folder


@pytest.fixture(scope="module")
def keystore_dir(tmp_path_factory, keeper_account):
    folder = tmp_path_factory.mktemp("ape")
    (folder / "accounts").mkdir()
    keyfile = Account.encrypt(keeper_account.private_key, "pw", kdf="pbkdf2", iterations=1_000)
    (folder / "accounts" / "bot.json").write_text(json.dumps(keyfile))
    return folder


@pytest.fixture
def keystore(keystore_dir, monkeypatch):
    """The keeper's key as an ape keystore file in a throwaway APE_DATA_FOLDER."""
    monkeypatch.setenv("APE_DATA_FOLDER", str(keystore_dir))
    monkeypatch.setenv("APE_ACCOUNTS_bot_PASSPHRASE", "pw")
    return keystore_dir


@pytest.fixture(scope="session", autouse=True)
def _keeper_personas(keeper_account, depositor):
    """Resolve session personas before module fixtures deploy (ape isolation)."""


@pytest.fixture(scope="module", autouse=True)
def _module_fixtures_first(keystore_dir):
    """Module-scoped fixtures that tests request through function fixtures, resolved before
    the first test's snapshot (ape would otherwise rebase its isolation)."""
