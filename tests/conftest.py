"""Shared fixtures: personas (yearn-style) and the reference venue."""

import os

import pytest

from keeper.core.rules import VenueParams
from keeper.ops.contracts import deploy_venue

pytest_plugins = ["tests.fixtures.chain"]

# `make soak` sets BASIS_SOAK=<factor>: the chain property tests and state machines run
# that many times more examples than `make test` (which keeps the suite within CI's budget).
SOAK = int(os.environ.get("BASIS_SOAK", "1"))

USDC = 10**6
WETH = 10**18
SIZE = 10**18  # perp size unit: one whole base
E8 = 10**8


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def feeder(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def operator(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def alice(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def bob(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def liquidator(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[6]


@pytest.fixture(scope="session", autouse=True)
def _personas(deployer, feeder, operator, alice, bob, liquidator, stranger):
    """Resolve the session-scoped personas before any module fixture deploys, so ape's
    snapshot isolation never has to rebase."""


@pytest.fixture(scope="module", autouse=True)
def _forget_reverted_contracts(chain):
    """Each module's deployments are reverted when it ends, and the next module's deployer
    reuses the same nonces, so the same addresses: ape must not remember what type of
    contract lived there (it would decode the next one's reverts with the wrong ABI)."""
    yield
    chain.contracts.clear_local_caches()


@pytest.fixture(scope="session")
def params():
    """The default venue, with a faucet that mints any test amount in one call (the
    arbitrageur's trade after a 50 % move is hundreds of millions: at the deploy default of
    1M a call it took hundreds of transactions)."""
    return VenueParams(asset_mint_cap=10**10, base_mint_cap=10**7)


@pytest.fixture(scope="module")
def venue(project, deployer, feeder, operator, params):
    v = deploy_venue(project, deployer, params)
    v.price_feed.grantRole(v.price_feed.FEEDER_ROLE(), feeder.address, sender=deployer)
    v.asset_feed.grantRole(v.asset_feed.FEEDER_ROLE(), feeder.address, sender=deployer)
    v.perp_market.grantRole(v.perp_market.OPERATOR_ROLE(), operator.address, sender=deployer)
    return v


@pytest.fixture(scope="module")
def usdc(venue):
    return venue.asset


@pytest.fixture(scope="module")
def weth(venue):
    return venue.base


@pytest.fixture(scope="module")
def feed(venue):
    return venue.price_feed


@pytest.fixture(scope="module")
def pool(venue):
    return venue.spot_pool


@pytest.fixture(scope="module")
def perp(venue):
    return venue.perp_market


@pytest.fixture
def harness(chain, venue, feeder, operator, alice, bob):
    """PerpMarket and its exact model in lockstep, with alice and bob as traders."""
    from tests.fixtures.perp_harness import PerpHarness

    return PerpHarness(chain, venue, feeder, operator, [alice, bob])


@pytest.fixture
def funded(harness, alice, bob):
    """alice and bob each hold 1M USDC approved to the market."""
    harness.fund(alice, 1_000_000 * USDC)
    harness.fund(bob, 1_000_000 * USDC)
    return harness


@pytest.fixture
def arb(accounts):
    """Trade a spot pool back to the oracle price (what the market feeder's `arb` does)."""
    from keeper.ops.contracts import arb_to_oracle

    return lambda venue: arb_to_oracle(venue, accounts[6])
