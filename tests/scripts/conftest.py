"""Operator tooling fixtures: a deployment made by `keeper.ops.deploy` (what `ape run deploy`
runs) from deploy/local.yaml, `admin` holding every role, and a deployments folder."""

import pytest

from keeper.ops.config import load_deploy_config
from keeper.ops.deploy import deploy
from keeper.ops.deployment import Deployment
from tests.fixtures.data import REPO


@pytest.fixture(scope="session")
def local_config():
    return load_deploy_config(REPO / "deploy" / "local.yaml")


@pytest.fixture(scope="module")
def deployed(project, chain, admin, local_config):
    """(manifest, stats) of a full deploy from deploy/local.yaml: `admin` holds every role."""
    return deploy(project, chain, admin, local_config, network="ethereum:local:foundry")


@pytest.fixture(scope="module")
def dep(project, deployed):
    return Deployment.bind(project, deployed[0])


@pytest.fixture
def manifests(tmp_path, monkeypatch):
    """An empty deployments folder, named by BASIS_DEPLOYMENTS_DIR as the scripts read it."""
    folder = tmp_path / "deployments"
    monkeypatch.setenv("BASIS_DEPLOYMENTS_DIR", str(folder))
    return folder
