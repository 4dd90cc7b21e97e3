"""The keeper against a real chain: the reference venue and a vault on ape's anvil, read
over plain JSON-RPC the way the keeper process reads a node."""

import pytest

from keeper.chain import Addresses
from keeper.rpc import Rpc
from keeper.venue import VaultRules, deploy_vault


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
def addresses(venue, vault, keeper_account):
    return Addresses(vault=vault.address, keeper=keeper_account.address, **venue.addresses())


@pytest.fixture
def rpc(chain):
    return Rpc(chain.provider.uri, retries=0)


@pytest.fixture
def keystore(tmp_path, monkeypatch, keeper_account):
    """The keeper's key as an ape keystore file in a throwaway APE_DATA_FOLDER."""
    import json

    from eth_account import Account

    folder = tmp_path / "ape"
    (folder / "accounts").mkdir(parents=True)
    keyfile = Account.encrypt(keeper_account.private_key, "correct horse", kdf="pbkdf2", iterations=1_000)
    (folder / "accounts" / "bot.json").write_text(json.dumps(keyfile))
    monkeypatch.setenv("APE_DATA_FOLDER", str(folder))
    monkeypatch.setenv("APE_ACCOUNTS_bot_PASSPHRASE", "correct horse")
    return folder
