import ape
import pytest

from tests.conftest import E8, USDC


@pytest.fixture
def hedged(hedged_vault):
    """fish 100k and whale 900k in, hedged at 2x; about 0.1 % of NAV left idle."""
    return hedged_vault(100_000, 900_000, 2.0)


def share_price(vault) -> float:
    return vault.convertToAssets(10**18) / 10**18


def test_withdraw__from_idle__at_nav(vault, fish, usdc):
    vault.deposit(1_000 * USDC, fish, sender=fish)
    before = usdc.balanceOf(fish)
    preview = vault.previewWithdraw(400 * USDC)
    tx = vault.withdraw(400 * USDC, fish, fish, sender=fish)
    assert tx.return_value == preview == 400 * 10**12
    assert usdc.balanceOf(fish) - before == 400 * USDC
    (log,) = tx.events.filter(vault.Withdraw)
    assert (log.receiver, log.owner, log.assets, log.shares) == (
        fish.address,
        fish.address,
        400 * USDC,
        preview,
    )


def test_redeem__from_idle__round_trip_never_profits(vault, fish, usdc):
    before = usdc.balanceOf(fish)
    shares = vault.deposit(1_000 * USDC + 7, fish, sender=fish).return_value
    vault.redeem(shares, fish, fish, sender=fish)
    assert usdc.balanceOf(fish) <= before


def test_redeem__beyond_idle__unwinds_pro_rata_and_stayers_do_not_pay(hedged, hedge, perp, fish, whale, usdc):
    vault = hedged
    price_before = vault.convertToAssets(10**18)
    short_before, spot_before = hedge.short_size(), hedge.spot_base()
    shares = vault.balanceOf(fish)
    preview = vault.previewRedeem(shares)
    before = usdc.balanceOf(fish)
    tx = vault.redeem(shares, fish, fish, sender=fish)
    paid = usdc.balanceOf(fish) - before
    assert paid == tx.return_value >= preview
    # fish held ~10 %: about 10 % of each leg was unwound
    assert hedge.short_size() == pytest.approx(short_before * 0.9, rel=1e-3)
    assert hedge.spot_base() == pytest.approx(spot_before * 0.9, rel=1e-3)
    (log,) = tx.events.filter(hedge.ExitUnwound)
    assert log.short_closed > 0 and log.spot_sold > 0 and log.margin_withdrawn > 0
    # the exit's costs fell on fish alone
    assert vault.convertToAssets(10**18) >= price_before - 1
    assert paid < 100_000 * USDC


def test_withdraw__beyond_idle__burns_at_most_the_preview(hedged, fish, usdc):
    vault = hedged
    want = 50_000 * USDC
    assert want > vault.idle()
    price_before = vault.convertToAssets(10**18)
    preview = vault.previewWithdraw(want)
    before = usdc.balanceOf(fish)
    tx = vault.withdraw(want, fish, fish, sender=fish)
    assert usdc.balanceOf(fish) - before == want
    assert tx.return_value == preview
    assert vault.convertToAssets(10**18) >= price_before - 1


def test_exits__slippage_bounds(hedged, fish):
    vault = hedged
    shares = vault.balanceOf(fish) // 2
    with ape.reverts("vault: assets below minimum"):
        vault.redeem(shares, fish, fish, 60_000 * USDC, sender=fish)
    with ape.reverts("vault: shares above maximum"):
        vault.withdraw(10_000 * USDC, fish, fish, 10**12, sender=fish)


def test_exits__above_balance__revert(vault, fish):
    vault.deposit(1_000 * USDC, fish, sender=fish)
    with ape.reverts("vault: redeem above maximum"):
        vault.redeem(vault.balanceOf(fish) + 1, fish, fish, sender=fish)
    with ape.reverts("vault: withdraw above maximum"):
        vault.withdraw(1_000 * USDC + 1, fish, fish, sender=fish)


def test_exits__zero__revert(vault, fish):
    with ape.reverts("vault: zero shares"):
        vault.redeem(0, fish, fish, sender=fish)
    with ape.reverts("vault: zero assets"):
        vault.withdraw(0, fish, fish, sender=fish)


def test_exits__invalid_receiver__revert(vault, fish):
    vault.deposit(1_000 * USDC, fish, sender=fish)
    with ape.reverts("vault: invalid receiver"):
        vault.redeem(10**12, ape.utils.ZERO_ADDRESS, fish, sender=fish)
    with ape.reverts("vault: invalid receiver"):
        vault.withdraw(USDC, vault, fish, sender=fish)


def test_exits__by_spender__needs_allowance(vault, fish, whale):
    vault.deposit(1_000 * USDC, fish, sender=fish)
    with ape.reverts("erc20: insufficient allowance"):
        vault.redeem(10**12, whale, fish, sender=whale)
    vault.approve(whale, 10**12, sender=fish)
    vault.redeem(10**12, whale, fish, sender=whale)
    assert vault.allowance(fish, whale) == 0


def test_max_withdraw__is_withdrawable(hedged, fish):
    vault = hedged
    amount = vault.maxWithdraw(fish)
    assert amount > 0
    vault.withdraw(amount, fish, fish, sender=fish)


def test_exit__after_price_move__stayers_keep_their_price(hedged, feed, feeder, perp, fish, arb, venue):
    vault = hedged
    perp.accrue_funding(sender=feeder)
    feed.set_price(3_300 * E8, sender=feeder)
    arb(venue)
    assert venue.spot_pool.price_e8() == pytest.approx(3_300 * E8, rel=1e-4)
    price_before = vault.convertToAssets(10**18)
    vault.redeem(vault.balanceOf(fish), fish, fish, sender=fish)
    assert vault.convertToAssets(10**18) >= price_before - 1


def test_exit__into_a_dislocated_pool__reverts(hedged, feed, feeder, perp, fish):
    vault = hedged
    perp.accrue_funding(sender=feeder)
    feed.set_price(3_300 * E8, sender=feeder)  # the pool still trades at 3,000
    with ape.reverts("pool: output below minimum"):
        vault.redeem(vault.balanceOf(fish), fish, fish, sender=fish)


def test_exit__pool_above_oracle__pays_no_more_than_nav(hedged, venue, whale, stranger, usdc):
    vault, pool = hedged, venue.spot_pool
    # push the pool ~0.8 % above the oracle: an exit's spot sale then fills better than NAV
    for _ in range(4):
        usdc.mint(stranger, 1_000_000 * USDC, sender=stranger)
    usdc.approve(pool, 2**256 - 1, sender=stranger)
    pool.swap(usdc, 4_000_000 * USDC, 0, stranger, sender=stranger)
    assert pool.price_e8() > venue.price_feed.latestAnswer() * 10_070 // 10_000
    shares = vault.balanceOf(whale) // 10
    nav_value = vault.convertToAssets(shares)
    assert nav_value > vault.idle()  # the exit unwinds
    price_before = vault.convertToAssets(10**18)
    paid = vault.redeem(shares, whale, whale, sender=whale).return_value
    assert paid <= nav_value  # so a deposit-and-redeem round trip can never profit
    assert vault.convertToAssets(10**18) > price_before  # the better fill stayed in the vault


def test_redeem__dust_while_hedged__pays_at_least_the_preview(hedged, fish, usdc):
    vault = hedged
    shares = vault.convertToShares(20)  # a 20-wei slice: ~6 wei of it is perp margin
    preview = vault.previewRedeem(shares)
    assert preview > 0
    before = usdc.balanceOf(fish)
    vault.redeem(shares, fish, fish, sender=fish)
    assert usdc.balanceOf(fish) - before >= preview
