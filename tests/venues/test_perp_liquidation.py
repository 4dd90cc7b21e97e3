import ape
import pytest

from tests.units import E8, SIZE, USDC


@pytest.fixture
def h(funded, alice, bob):
    funded.deposit(alice, 10_000 * USDC)
    funded.deposit(bob, 100_000 * USDC)
    funded.trade(alice, -50 * SIZE)  # 150k short on 10k: 15x, maintenance 2.5 % = 3.75k
    return funded


def test_liquidate__healthy__reverts(h, perp, liquidator, alice):
    assert not perp.is_liquidatable(alice)
    assert "not liquidatable" in str(h.liquidate(alice, liquidator))


def test_liquidate__no_position__reverts(perp, liquidator, stranger):
    with ape.reverts("perp: no position"):
        perp.liquidate(stranger, sender=liquidator)


def test_liquidate__threshold_matches_model_to_the_wei(h, perp, alice):
    m = h.model
    # Find the highest price at which alice is still healthy: equity >= maintenance.
    lo, hi = 3_000 * E8, 4_000 * E8
    while hi - lo > 1:
        mid = (lo + hi) // 2
        m.price_e8 = mid
        if m.is_liquidatable(alice.address):
            hi = mid
        else:
            lo = mid
    m.price_e8 = 3_000 * E8
    h.set_price(lo)
    assert not perp.is_liquidatable(alice)
    h.set_price(hi)
    assert perp.is_liquidatable(alice)
    h.check()


def test_liquidate__pays_fee_and_returns_rest(h, perp, usdc, liquidator, alice):
    h.set_price(3_130 * E8)
    assert perp.is_liquidatable(alice)
    before = usdc.balanceOf(liquidator)
    fee, bad_debt = h.liquidate(alice, liquidator)
    assert bad_debt == 0
    assert fee == 50 * 3_130 * USDC * 50 // 10_000  # 0.5 % of notional
    assert usdc.balanceOf(liquidator) - before == fee
    pos = perp.position(alice)
    assert pos.size == 0
    assert pos.margin == h.model.account(alice.address).margin > 0
    h.check()


def test_liquidate__event(h, perp, liquidator, alice, chain):
    h.set_price(3_130 * E8)
    tx = perp.liquidate(alice, sender=liquidator)
    (log,) = tx.events.filter(perp.Liquidated)
    assert (log.account, log.liquidator, log.size) == (alice.address, liquidator.address, -50 * SIZE)
    assert log.bad_debt == 0 and log.liquidator_fee > 0


def test_liquidate__underwater__pool_absorbs_bad_debt(h, perp, usdc, liquidator, alice):
    h.set_price(3_300 * E8)  # loss 15k on 10k margin
    assert perp.position(alice).equity < 0
    pool_before = perp.pool_liquidity()
    fee, bad_debt = h.liquidate(alice, liquidator)
    assert fee == 0 and bad_debt > 0
    # The pool receives all of alice's margin and nothing more exists to take.
    assert perp.pool_liquidity() - pool_before == h.model.pool_liquidity - pool_before
    assert perp.position(alice).margin == 0
    h.check()


def test_liquidate__stale_oracle__reverts(h, perp, liquidator, alice, warp):
    h.set_price(3_300 * E8)
    warp(perp.max_oracle_age() + 1)
    with ape.reverts("perp: stale oracle"):
        perp.liquidate(alice, sender=liquidator)


def test_liquidate__funding_can_push_an_account_under(h, perp, liquidator, alice):
    h.set_funding_rate(-perp.MAX_FUNDING_RATE())  # shorts pay 4 %/h
    h.warp(2 * 3_600)
    assert perp.is_liquidatable(alice)
    h.liquidate(alice, liquidator)
    h.check()
