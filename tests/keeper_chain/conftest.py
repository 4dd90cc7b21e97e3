"""The keeper against a real chain: the reference venue and a vault on ape's anvil, read
over plain JSON-RPC the way the keeper process reads a node."""

import json

import pytest
from eth_account import Account

from keeper.chain.manifest import write_manifest
from keeper.chain.reader import Addresses
from keeper.core.rules import VaultRules
from keeper.net.rpc import Rpc
from keeper.ops.config import load_deploy_config
from keeper.ops.contracts import deploy_vault
from keeper.ops.deploy import deploy
from keeper.ops.deployment import Deployment
from tests.fixtures.data import REPO


@pytest.fixture(scope="module")
def vault(project, deployer, venue, keeper, alice):
    v = deploy_vault(project, deployer, venue, VaultRules(), keeper=keeper.address)
    venue.asset.mint(alice, 1_000_000 * 10**6, sender=alice)
    venue.asset.approve(v, 2**256 - 1, sender=alice)
    return v


@pytest.fixture(scope="module")
def addresses(venue, vault, hedge, keeper):
    return Addresses(vault=vault.address, hedge=hedge.address, keeper=keeper.address, **venue.addresses())


@pytest.fixture
def rpc(chain):
    return Rpc(chain.provider.uri, retries=0)


@pytest.fixture(scope="module")
def stack(project, chain, deployer, keeper, tmp_path_factory):
    config = load_deploy_config(REPO / "deploy" / "local.yaml")
    roles = config.roles.model_copy(update={"keeper": keeper.address})
    manifest, _ = deploy(
        project, chain, deployer, config.model_copy(update={"roles": roles}), network="ethereum:local:foundry"
    )
    folder = tmp_path_factory.mktemp("deployments")
    write_manifest(manifest, folder)
    return Deployment.bind(project, manifest), folder


@pytest.fixture(scope="module")
def keystore_dir(tmp_path_factory, keeper):
    folder = tmp_path_factory.mktemp("ape")
    (folder / "accounts").mkdir()
    keyfile = Account.encrypt(keeper.private_key, "pw", kdf="pbkdf2", iterations=1_000)
    (folder / "accounts" / "bot.json").write_text(json.dumps(keyfile))
    return folder


@pytest.fixture
def keystore(keystore_dir, monkeypatch):
    """The keeper's key as an ape keystore file in a throwaway APE_DATA_FOLDER."""
    monkeypatch.setenv("APE_DATA_FOLDER", str(keystore_dir))
    monkeypatch.setenv("APE_ACCOUNTS_bot_PASSPHRASE", "pw")
    return keystore_dir


@pytest.fixture(scope="module", autouse=True)
def _module_fixtures_first(keystore_dir):
    """Module-scoped fixtures that tests request through function fixtures, resolved before
    the first test's snapshot (ape would otherwise rebase its isolation)."""
