"""Issue 10, bullet 11: the asset can de-peg. NAV treats 1 asset = 1 USD, so entries and
exits stop while the asset's own USD feed is stale or further than max_depeg_bps (100) from
1: at 0.88 (USDC, 11-13 March 2023) deposit/withdraw/redeem revert and the max* views say 0;
at 0.995 everything works."""

import ape
import pytest

from tests.conftest import E8, USDC
from tests.vault.conftest import keep_fresh


@pytest.fixture
def funded(vault, fish):
    vault.deposit(10_000 * USDC, fish, sender=fish)
    return vault


def assert_closed(vault, fish, reason):
    assert vault.maxDeposit(fish) == vault.maxMint(fish) == 0
    assert vault.maxWithdraw(fish) == vault.maxRedeem(fish) == 0
    with ape.reverts(reason):
        vault.deposit(USDC, fish, sender=fish)
    with ape.reverts(reason):
        vault.mint(10**12, fish, sender=fish)
    with ape.reverts(reason):
        vault.withdraw(USDC, fish, fish, sender=fish)
    with ape.reverts(reason):
        vault.redeem(10**12, fish, fish, sender=fish)


def assert_open(vault, fish):
    assert vault.maxDeposit(fish) > 0 and vault.maxWithdraw(fish) > 0
    assert vault.maxRedeem(fish) == vault.balanceOf(fish)
    vault.deposit(USDC, fish, sender=fish)
    vault.mint(10**12, fish, sender=fish)
    vault.withdraw(USDC, fish, fish, sender=fish)
    vault.redeem(10**12, fish, fish, sender=fish)


@pytest.mark.parametrize("price", [88_000_000, 98_999_999, 101_000_001, 112_000_000], ids=str)
def test_depeg__asset_at_088__entries_and_exits_revert_max_views_zero(funded, venue, feeder, fish, price):
    venue.asset_feed.set_price(price, sender=feeder)
    assert_closed(funded, fish, "vault: asset de-pegged")


@pytest.mark.parametrize("price", [99_500_000, 99_000_000, 101_000_000, E8], ids=str)
def test_depeg__asset_at_0995__entries_and_exits_work(funded, venue, feeder, fish, price):
    venue.asset_feed.set_price(price, sender=feeder)
    assert_open(funded, fish)


def test_depeg__back_on_peg__reopens(funded, venue, feeder, fish):
    venue.asset_feed.set_price(88_000_000, sender=feeder)
    assert_closed(funded, fish, "vault: asset de-pegged")
    venue.asset_feed.set_price(99_500_000, sender=feeder)
    assert_open(funded, fish)


def test_depeg__stale_asset_feed__entries_and_exits_revert(funded, venue, feeder, fish, rules, warp):
    warp(rules.max_asset_oracle_age + 1)
    venue.perp_market.accrue_funding(sender=feeder)
    venue.price_feed.set_price(venue.price_feed.latestAnswer(), sender=feeder)  # base feed fresh
    assert_closed(funded, fish, "vault: stale asset oracle")
    keep_fresh(venue, feeder)
    assert_open(funded, fish)


def test_depeg__hedged_vault__exits_revert_too(hedged_vault, venue, feeder, fish):
    vault = hedged_vault(100_000, 200_000, 2.0)
    venue.asset_feed.set_price(88_000_000, sender=feeder)
    assert_closed(vault, fish, "vault: asset de-pegged")
