"""Operator tooling fixtures: a deployment made by `keeper.ops.deploy` (what `ape run deploy`
runs), depositors, and the shared market data folder."""

import os
from pathlib import Path

import pytest

from keeper.ops.config import load_deploy_config
from keeper.ops.deploy import deploy
from keeper.ops.deployment import Deployment

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
USDC = 10**6


def shared_data_dir() -> Path:
    """Real market data (../shared/data from the project root, or $BASIS_DATA_DIR)."""
    return Path(os.environ.get("BASIS_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture
def data_dir():
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared market data not found at {path} (set BASIS_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def local_config():
    return load_deploy_config(REPO / "deploy" / "local.yaml")


@pytest.fixture(scope="session")
def operator(accounts, chain):
    """Deploys everything in these tests and holds every role. Its own account, not the
    shared `deployer`: contracts at the addresses `deployer`'s nonces lead to would otherwise
    differ from module to module, and ape decodes a later module's reverts with the ABI it
    cached for that address."""
    account = accounts.generate_test_account()
    chain.set_balance(account, 10**24)
    return account


@pytest.fixture(scope="session", autouse=True)
def _operator_persona(operator):
    """Resolved before module fixtures deploy (ape isolation), like the shared personas."""


@pytest.fixture(scope="module")
def deployed(project, chain, operator, local_config):
    """(manifest, stats) of a full deploy from deploy/local.yaml: the operator holds every role."""
    return deploy(project, chain, operator, local_config, network="ethereum:local:foundry")


@pytest.fixture(scope="module")
def dep(project, deployed):
    return Deployment.bind(project, deployed[0])


@pytest.fixture
def manifests(tmp_path, monkeypatch):
    """An empty deployments folder, named by BASIS_DEPLOYMENTS_DIR as the scripts read it."""
    folder = tmp_path / "deployments"
    monkeypatch.setenv("BASIS_DEPLOYMENTS_DIR", str(folder))
    return folder
