"""Issue 10, bullet 11: the asset can de-peg. NAV treats 1 asset = 1 USD, so entries and
exits stop while the asset's own USD feed is stale or further than max_depeg_bps (100) from
1: at 0.88 (USDC, 11-13 March 2023) deposit/withdraw/redeem revert and the max* views say 0;
at 0.995 everything works."""

import pytest

from tests.fixtures.vault import keep_fresh, refuses_entries_and_exits
from tests.units import E8, USDC


@pytest.fixture
def funded(vault, alice):
    vault.deposit(10_000 * USDC, alice, sender=alice)
    return vault


def assert_closed(vault, alice, reason):
    assert vault.maxDeposit(alice) == vault.maxMint(alice) == 0
    assert vault.maxWithdraw(alice) == vault.maxRedeem(alice) == 0
    refuses_entries_and_exits(vault, alice, reason)


def assert_open(vault, alice):
    assert vault.maxDeposit(alice) > 0 and vault.maxWithdraw(alice) > 0
    assert vault.maxRedeem(alice) == vault.balanceOf(alice)
    vault.deposit(USDC, alice, sender=alice)
    vault.mint(10**12, alice, sender=alice)
    vault.withdraw(USDC, alice, alice, sender=alice)
    vault.redeem(10**12, alice, alice, sender=alice)


@pytest.mark.parametrize("price", [88_000_000, 98_999_999, 101_000_001, 112_000_000], ids=str)
def test_depeg__asset_at_088__entries_and_exits_revert_max_views_zero(funded, venue, feeder, alice, price):
    venue.asset_feed.set_price(price, sender=feeder)
    assert_closed(funded, alice, "vault: asset de-pegged")


@pytest.mark.parametrize("price", [99_500_000, 99_000_000, 101_000_000, E8], ids=str)
def test_depeg__asset_at_0995__entries_and_exits_work(funded, venue, feeder, alice, price):
    venue.asset_feed.set_price(price, sender=feeder)
    assert_open(funded, alice)


def test_depeg__back_on_peg__reopens(funded, venue, feeder, alice):
    venue.asset_feed.set_price(88_000_000, sender=feeder)
    assert_closed(funded, alice, "vault: asset de-pegged")
    venue.asset_feed.set_price(99_500_000, sender=feeder)
    assert_open(funded, alice)


def test_depeg__stale_asset_feed__entries_and_exits_revert(funded, venue, feeder, alice, rules, warp):
    warp(rules.max_asset_oracle_age + 1)
    venue.perp_market.accrue_funding(sender=feeder)
    venue.price_feed.set_price(venue.price_feed.latestAnswer(), sender=feeder)  # base feed fresh
    assert_closed(funded, alice, "vault: stale asset oracle")
    keep_fresh(venue, feeder)
    assert_open(funded, alice)


def test_depeg__hedged_vault__exits_revert_too(hedged_vault, venue, feeder, alice):
    vault = hedged_vault(100_000, 200_000, 2.0)
    venue.asset_feed.set_price(88_000_000, sender=feeder)
    assert_closed(vault, alice, "vault: asset de-pegged")
