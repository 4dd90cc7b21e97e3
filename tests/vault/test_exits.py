import ape
import pytest

from tests.units import E8, USDC


@pytest.fixture
def hedged(hedged_vault):
    """alice 100k and bob 900k in, hedged at 2x; about 0.1 % of NAV left idle."""
    return hedged_vault(100_000, 900_000, 2.0)


def share_price(vault) -> float:
    return vault.convertToAssets(10**18) / 10**18


def test_withdraw__from_idle__at_nav(vault, alice, usdc):
    vault.deposit(1_000 * USDC, alice, sender=alice)
    before = usdc.balanceOf(alice)
    preview = vault.previewWithdraw(400 * USDC)
    tx = vault.withdraw(400 * USDC, alice, alice, sender=alice)
    assert tx.return_value == preview == 400 * 10**12
    assert usdc.balanceOf(alice) - before == 400 * USDC
    (log,) = tx.events.filter(vault.Withdraw)
    assert (log.receiver, log.owner, log.assets, log.shares) == (
        alice.address,
        alice.address,
        400 * USDC,
        preview,
    )


def test_redeem__from_idle__round_trip_never_profits(vault, alice, usdc):
    before = usdc.balanceOf(alice)
    shares = vault.deposit(1_000 * USDC + 7, alice, sender=alice).return_value
    vault.redeem(shares, alice, alice, sender=alice)
    assert usdc.balanceOf(alice) <= before


def test_redeem__beyond_idle__unwinds_pro_rata_and_stayers_do_not_pay(hedged, hedge, perp, alice, bob, usdc):
    vault = hedged
    price_before = vault.convertToAssets(10**18)
    short_before, spot_before = hedge.short_size(), hedge.spot_base()
    shares = vault.balanceOf(alice)
    preview = vault.previewRedeem(shares)
    before = usdc.balanceOf(alice)
    tx = vault.redeem(shares, alice, alice, sender=alice)
    paid = usdc.balanceOf(alice) - before
    assert paid == tx.return_value >= preview
    # alice held ~10 %: about 10 % of each leg was unwound
    assert hedge.short_size() == pytest.approx(short_before * 0.9, rel=1e-3)
    assert hedge.spot_base() == pytest.approx(spot_before * 0.9, rel=1e-3)
    (log,) = tx.events.filter(hedge.ExitUnwound)
    assert log.short_closed > 0 and log.spot_sold > 0 and log.margin_withdrawn > 0
    # the exit's costs fell on alice alone
    assert vault.convertToAssets(10**18) >= price_before - 1
    assert paid < 100_000 * USDC


def test_withdraw__beyond_idle__burns_at_most_the_preview(hedged, alice, usdc):
    vault = hedged
    want = 50_000 * USDC
    assert want > vault.idle()
    price_before = vault.convertToAssets(10**18)
    preview = vault.previewWithdraw(want)
    before = usdc.balanceOf(alice)
    tx = vault.withdraw(want, alice, alice, sender=alice)
    assert usdc.balanceOf(alice) - before == want
    assert tx.return_value == preview
    assert vault.convertToAssets(10**18) >= price_before - 1


def test_exits__slippage_bounds(hedged, alice):
    vault = hedged
    shares = vault.balanceOf(alice) // 2
    with ape.reverts("vault: assets below minimum"):
        vault.redeem(shares, alice, alice, 60_000 * USDC, sender=alice)
    with ape.reverts("vault: shares above maximum"):
        vault.withdraw(10_000 * USDC, alice, alice, 10**12, sender=alice)


def test_exits__above_balance__revert(vault, alice):
    vault.deposit(1_000 * USDC, alice, sender=alice)
    with ape.reverts("vault: redeem above maximum"):
        vault.redeem(vault.balanceOf(alice) + 1, alice, alice, sender=alice)
    with ape.reverts("vault: withdraw above maximum"):
        vault.withdraw(1_000 * USDC + 1, alice, alice, sender=alice)


def test_exits__zero__revert(vault, alice):
    with ape.reverts("vault: zero shares"):
        vault.redeem(0, alice, alice, sender=alice)
    with ape.reverts("vault: zero assets"):
        vault.withdraw(0, alice, alice, sender=alice)


def test_exits__invalid_receiver__revert(vault, alice):
    vault.deposit(1_000 * USDC, alice, sender=alice)
    with ape.reverts("vault: invalid receiver"):
        vault.redeem(10**12, ape.utils.ZERO_ADDRESS, alice, sender=alice)
    with ape.reverts("vault: invalid receiver"):
        vault.withdraw(USDC, vault, alice, sender=alice)


def test_exits__by_spender__needs_allowance(vault, alice, bob):
    vault.deposit(1_000 * USDC, alice, sender=alice)
    with ape.reverts("erc20: insufficient allowance"):
        vault.redeem(10**12, bob, alice, sender=bob)
    vault.approve(bob, 10**12, sender=alice)
    vault.redeem(10**12, bob, alice, sender=bob)
    assert vault.allowance(alice, bob) == 0


def test_max_withdraw__is_withdrawable(hedged, alice):
    vault = hedged
    amount = vault.maxWithdraw(alice)
    assert amount > 0
    vault.withdraw(amount, alice, alice, sender=alice)


def test_exit__after_price_move__stayers_keep_their_price(hedged, feed, feeder, perp, alice, arb, venue):
    vault = hedged
    perp.accrue_funding(sender=feeder)
    feed.set_price(3_300 * E8, sender=feeder)
    arb(venue)
    assert venue.spot_pool.price_e8() == pytest.approx(3_300 * E8, rel=1e-4)
    price_before = vault.convertToAssets(10**18)
    vault.redeem(vault.balanceOf(alice), alice, alice, sender=alice)
    assert vault.convertToAssets(10**18) >= price_before - 1


def test_exit__into_a_dislocated_pool__reverts(hedged, feed, feeder, perp, alice):
    vault = hedged
    perp.accrue_funding(sender=feeder)
    feed.set_price(3_300 * E8, sender=feeder)  # the pool still trades at 3,000
    with ape.reverts("pool: output below minimum"):
        vault.redeem(vault.balanceOf(alice), alice, alice, sender=alice)


def test_exit__pool_above_oracle__pays_no_more_than_nav(hedged, venue, bob, stranger, usdc):
    vault, pool = hedged, venue.spot_pool
    # push the pool ~0.8 % above the oracle: an exit's spot sale then fills better than NAV
    for _ in range(4):
        usdc.mint(stranger, 1_000_000 * USDC, sender=stranger)
    usdc.approve(pool, 2**256 - 1, sender=stranger)
    pool.swap(usdc, 4_000_000 * USDC, 0, stranger, sender=stranger)
    assert pool.price_e8() > venue.price_feed.latestAnswer() * 10_070 // 10_000
    shares = vault.balanceOf(bob) // 10
    nav_value = vault.convertToAssets(shares)
    assert nav_value > vault.idle()  # the exit unwinds
    price_before = vault.convertToAssets(10**18)
    paid = vault.redeem(shares, bob, bob, sender=bob).return_value
    assert paid <= nav_value  # so a deposit-and-redeem round trip can never profit
    assert vault.convertToAssets(10**18) > price_before  # the better fill stayed in the vault


def test_redeem__dust_while_hedged__pays_at_least_the_preview(hedged, alice, usdc):
    vault = hedged
    shares = vault.convertToShares(20)  # a 20-wei slice: ~6 wei of it is perp margin
    preview = vault.previewRedeem(shares)
    assert preview > 0
    before = usdc.balanceOf(alice)
    vault.redeem(shares, alice, alice, sender=alice)
    assert usdc.balanceOf(alice) - before >= preview
