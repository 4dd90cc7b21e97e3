"""Vault personas (yearn-style) and a factory fixture."""

import pytest

from keeper.venue import VaultRules, deploy_vault
from tests.conftest import USDC

MAX = 2**256 - 1


@pytest.fixture(scope="session")
def gov(accounts):
    return accounts[7]


@pytest.fixture(scope="session")
def keeper(accounts):
    return accounts[8]


@pytest.fixture(scope="session")
def guardian(accounts):
    return accounts[9]


@pytest.fixture(scope="session")
def fish(alice):
    return alice


@pytest.fixture(scope="session")
def whale(bob):
    return bob


@pytest.fixture(scope="session")
def treasury(stranger):
    return stranger


@pytest.fixture(scope="session", autouse=True)
def _vault_personas(gov, keeper, guardian):
    """Resolve session personas before module fixtures deploy (ape isolation)."""


@pytest.fixture(scope="module")
def rules():
    return VaultRules()


@pytest.fixture(scope="module")
def create_vault(project, deployer, venue, gov, keeper, guardian, treasury):
    def _create(rules=None, **kwargs):
        args = dict(owner=gov.address, guardian=guardian.address, keeper=keeper.address)
        args["fee_recipient"] = treasury.address
        args.update(kwargs)
        return deploy_vault(project, deployer, venue, rules or VaultRules(), **args)

    return _create


@pytest.fixture(scope="module")
def vault(create_vault, usdc, fish, whale):
    v = create_vault()
    for who, amount in ((fish, 1_000_000 * USDC), (whale, 5_000_000 * USDC)):
        minted = 0
        while minted < amount:
            usdc.mint(who, 1_000_000 * USDC, sender=who)
            minted += 1_000_000 * USDC
        usdc.approve(v, MAX, sender=who)
    return v


def hedge_targets(vault, perp, leverage_x: float = 2.0):
    """The design's split at short leverage L: spot = NAV * L / (L + 1), margin = NAV / (L + 1).
    Returns (target_short_size_1e18, target_margin_wei) at the oracle price."""
    nav = vault.totalAssets()
    price = perp.index_price()
    spot_value = int(nav * leverage_x / (leverage_x + 1))
    margin = nav - spot_value
    # leave 20 bps of the spot budget for the pool fee and impact
    size = spot_value * 9_980 // 10_000 * 10**18 * 10**8 // (price * USDC)
    return size, margin


@pytest.fixture
def hedge(vault, perp, keeper, fish, whale, deadline):
    """hedge(fish_usdc, whale_usdc, leverage): both deposit, the keeper hedges at `leverage`."""

    def _hedge(fish_usdc: int, whale_usdc: int, leverage_x: float = 2.0):
        vault.deposit(fish_usdc * USDC, fish, sender=fish)
        vault.deposit(whale_usdc * USDC, whale, sender=whale)
        short, margin = hedge_targets(vault, perp, leverage_x)
        vault.rebalance(short, margin, 50, deadline, sender=keeper)
        return vault

    return _hedge


@pytest.fixture
def deadline(chain):
    return chain.pending_timestamp + 3_600


def delta_bps(vault, perp) -> float:
    """(spot value - short value) / NAV at the oracle, bps."""
    price = perp.index_price()
    spot = vault.spot_base() * price * USDC // (10**18 * 10**8)
    short = vault.short_size() * price * USDC // (10**18 * 10**8)
    nav = vault.totalAssets()
    return (spot - short) * 10_000 / nav if nav else 0.0
