"""Vault personas (yearn-style), the vault and its hedge, and factory fixtures."""

import pytest

from keeper.core.rules import VaultRules
from keeper.ops.contracts import deploy_vault, faucet, hedge_of
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


def fund(usdc, vault, who, amount):
    """Mint `amount` USDC to `who` (faucet-capped calls) and approve the vault for all."""
    faucet(usdc, who, amount)
    usdc.approve(vault, MAX, sender=who)


@pytest.fixture(scope="module")
def vault(create_vault, usdc, fish, whale):
    v = create_vault()
    fund(usdc, v, fish, 1_000_000 * USDC)
    fund(usdc, v, whale, 5_000_000 * USDC)
    return v


@pytest.fixture(scope="module")
def hedge(project, vault):
    """The vault's BasisHedge (created by the vault's constructor)."""
    return hedge_of(project, vault)


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
def hedged_vault(vault, hedge, perp, keeper, fish, whale, deadline):
    """hedged_vault(fish_usdc, whale_usdc, leverage): both deposit (whole USDC), the keeper
    hedges at `leverage` (hedge_targets leaves ~0.1 % of NAV idle for fees)."""

    def _hedged(fish_usdc: int, whale_usdc: int, leverage_x: float = 2.0):
        if fish_usdc:
            vault.deposit(fish_usdc * USDC, fish, sender=fish)
        if whale_usdc:
            vault.deposit(whale_usdc * USDC, whale, sender=whale)
        short, margin = hedge_targets(vault, perp, leverage_x)
        hedge.rebalance(short, margin, 50, deadline, sender=keeper)
        return vault

    return _hedged


def build_hedge(vault, hedge, perp, keeper, chain, arb, venue, leverage_x=2.0, steps=5, room=997):
    """The keeper opens a large hedge in `steps` rebalances, the pool arbitraged back to the
    oracle between them (one multi-million spot buy fills beyond the 50 bps rule); the short
    is scaled by room/1000 so the buys' ~0.2 % cost fits in the cash left."""
    short, margin = hedge_targets(vault, perp, leverage_x)
    short = short * room // 1_000
    for k in range(1, steps + 1):
        hedge.rebalance(short * k // steps, margin, 50, chain.pending_timestamp + 3_600, sender=keeper)
        arb(venue)
    assert hedge.short_size() == short
    return short


@pytest.fixture
def deadline(chain):
    return chain.pending_timestamp + 3_600


def usd(amount_1e18: int, price_e8: int) -> int:
    """Asset wei of a base amount (1e18 units) at `price_e8`."""
    return amount_1e18 * price_e8 * USDC // (10**18 * 10**8)


def delta_bps(vault, perp, hedge) -> float:
    """(spot value - short value) / NAV at the oracle, bps."""
    price = perp.index_price()
    spot = usd(hedge.spot_base(), price)
    short = usd(hedge.short_size(), price)
    nav = vault.totalAssets()
    return (spot - short) * 10_000 / nav if nav else 0.0


def keep_fresh(venue, feeder):
    """Re-push both feeds' answers (after a warp) so the oracles stay fresh."""
    venue.perp_market.accrue_funding(sender=feeder)
    venue.price_feed.set_price(venue.price_feed.latestAnswer(), sender=feeder)
    venue.asset_feed.set_price(venue.asset_feed.latestAnswer(), sender=feeder)
