import ape
import pytest

from tests.units import E8, SIZE, USDC


@pytest.fixture
def lp(funded, bob):
    return bob


def test_add_liquidity__mints_shares_at_pool_value(funded, perp, lp):
    supply, value = perp.lp_total_shares(), perp.pool_value()
    tx = perp.add_liquidity(100_000 * USDC, 0, sender=lp)
    assert tx.return_value == 100_000 * USDC * supply // value == perp.lp_shares(lp)
    (log,) = tx.events.filter(perp.PoolDeposit)
    assert (log.account, log.amount) == (lp.address, 100_000 * USDC)


def test_add_liquidity__first_deposit_locks_minimum(project, deployer, usdc, feed):
    market = deployer.deploy(project.PerpMarket, usdc, feed, 450, 500, 250, 50, 86_400, 10**18)
    usdc.mint(deployer, 10 * USDC, sender=deployer)
    usdc.approve(market, 2**256 - 1, sender=deployer)
    with ape.reverts("perp: initial liquidity too small"):
        market.add_liquidity(1_000, 0, sender=deployer)
    market.add_liquidity(10 * USDC, 0, sender=deployer)
    assert market.lp_shares("0x000000000000000000000000000000000000dEaD") == 1_000
    assert market.lp_shares(deployer) == 10 * USDC - 1_000


def test_add_liquidity__zero_and_min_shares__revert(funded, perp, lp):
    with ape.reverts("perp: zero amount"):
        perp.add_liquidity(0, 0, sender=lp)
    with ape.reverts("perp: shares below minimum"):
        perp.add_liquidity(USDC, 2 * USDC, sender=lp)


def test_remove_liquidity__round_trip_loses_nothing_but_rounding(funded, perp, usdc, lp):
    before = usdc.balanceOf(lp)
    perp.add_liquidity(100_000 * USDC, 0, sender=lp)
    perp.remove_liquidity(perp.lp_shares(lp), 0, sender=lp)
    assert before - 2 <= usdc.balanceOf(lp) <= before


def test_remove_liquidity__cannot_take_what_positions_claim(funded, perp, deployer, alice):
    h = funded
    h.deposit(alice, 500_000 * USDC)
    h.trade(alice, -3_000 * SIZE)  # 9M short
    h.set_price(1_500 * E8)  # alice's claim: ~4.5M
    claim = perp.pool_liquidity() - perp.pool_value()
    assert claim > 4_000_000 * USDC
    shares = perp.lp_shares(deployer)
    liquidity_before = perp.pool_liquidity()
    tx = perp.remove_liquidity(shares, 0, sender=deployer)
    # The LP took at most the free liquidity; the pool can still pay alice in full.
    assert tx.return_value <= liquidity_before - claim
    assert perp.pool_liquidity() >= claim
    h.model.pool_liquidity = perp.pool_liquidity()
    h.trade(alice, 3_000 * SIZE)
    h.check()


def test_remove_liquidity__bad_args__revert(funded, perp, lp, deployer):
    with ape.reverts("perp: zero shares"):
        perp.remove_liquidity(0, 0, sender=lp)
    with ape.reverts("perp: shares above balance"):
        perp.remove_liquidity(1, 0, sender=lp)
    with ape.reverts("perp: amount below minimum"):
        perp.remove_liquidity(USDC, 2 * USDC, sender=deployer)


def test_pool_earns_fees_and_trader_losses(funded, perp, alice):
    h = funded
    value_before = perp.pool_value()
    h.deposit(alice, 100_000 * USDC)
    _, fee, _ = h.trade(alice, -10 * SIZE)
    assert perp.pool_value() >= value_before + fee
    h.check()
