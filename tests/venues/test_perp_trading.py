import ape
import pytest

from keeper.core.fixed import value
from tests.units import E8, SIZE, USDC


@pytest.fixture
def h(funded, alice, bob):
    funded.deposit(alice, 100_000 * USDC)
    funded.deposit(bob, 100_000 * USDC)
    return funded


def test_modify_position__open_short__fills_below_index_by_impact_and_pays_fee(h, perp, alice):
    index = perp.index_price()
    quote = perp.quote_fill_price(-10 * SIZE)
    notional = 10 * 3_000 * USDC
    assert quote == index * (perp.depth() - notional) // perp.depth()
    fill, fee, realized = h.trade(alice, -10 * SIZE)
    assert fill == quote
    assert fee == -(-notional * quote // index * 450 // 10**6)  # 4.5 bps, rounded up
    assert realized == 0
    pos = perp.position(alice)
    assert pos.size == -10 * SIZE
    assert pos.entry_price_e8 == fill
    assert pos.margin == 100_000 * USDC - fee
    h.check()


def test_modify_position__event(h, perp, alice, chain):
    h.model.now += 1
    chain.pending_timestamp = h.model.now
    expected = h.model.modify_position(alice.address, 2 * SIZE)
    tx = perp.modify_position(2 * SIZE, 2**256 - 1, sender=alice)
    (log,) = tx.events.filter(perp.PositionModified)
    assert (log.account, log.size_delta, log.fill_price_e8, log.fee) == (
        alice.address,
        2 * SIZE,
        expected[0],
        expected[1],
    )
    assert log.index_price_e8 == perp.index_price()
    assert log.size == 2 * SIZE
    assert tx.return_value == expected[0]


def test_modify_position__increase_reduce_close_flip_match_model(h, perp, alice):
    h.trade(alice, -10 * SIZE)
    h.set_price(2_900 * E8)
    h.trade(alice, -5 * SIZE)  # increase at a better price for... the long side
    h.check()
    h.set_price(3_100 * E8)
    _, _, realized = h.trade(alice, 4 * SIZE)  # reduce at a loss
    assert realized < 0
    h.check()
    h.set_price(2_800 * E8)
    _, _, realized = h.trade(alice, 11 * SIZE)  # close the rest at a profit
    assert realized > 0
    assert perp.position(alice).size == 0
    assert perp.position(alice).entry_price_e8 == 0
    h.check()
    h.trade(alice, 3 * SIZE)
    h.trade(alice, -5 * SIZE)  # flip long -> short
    assert perp.position(alice).size == -2 * SIZE
    h.check()


def test_modify_position__realized_pnl_at_index_moves(h, perp, alice):
    h.trade(alice, -10 * SIZE)
    entry_cost = h.model.account(alice.address).cost
    h.set_price(2_700 * E8)
    fill, _, realized = h.trade(alice, 10 * SIZE)
    assert realized == -(value(10 * SIZE, fill, USDC, True) + entry_cost)
    assert realized == pytest.approx(3_000 * USDC, rel=1e-3)  # a 10 % fall on a 30k short
    h.check()


@pytest.mark.parametrize("size", [SIZE, -SIZE])
def test_modify_position__acceptable_price__reverts(h, perp, alice, size):
    quote = perp.quote_fill_price(size)
    if size > 0:
        with ape.reverts("perp: price above acceptable"):
            perp.modify_position(size, quote - 1, sender=alice)
        perp.modify_position(size, quote, sender=alice)
    else:
        with ape.reverts("perp: price below acceptable"):
            perp.modify_position(size, quote + 1, sender=alice)
        perp.modify_position(size, quote, sender=alice)


def test_modify_position__zero__reverts(perp, alice):
    with ape.reverts("perp: zero size"):
        perp.modify_position(0, 0, sender=alice)


def test_modify_position__beyond_max_leverage__reverts(h, alice):
    # 100k margin at 20x = 2M notional ~ 666 ETH at 3000.
    assert "initial margin" in str(h.trade(alice, -700 * SIZE))
    h.trade(alice, -600 * SIZE)
    assert "initial margin" in str(h.trade(alice, -100 * SIZE))
    h.trade(alice, 100 * SIZE)  # reducing is always allowed
    h.check()


def test_modify_position__no_margin__reverts(perp, stranger):
    with ape.reverts("perp: loss exceeds margin"):
        perp.modify_position(SIZE, 2**256 - 1, sender=stranger)


def test_modify_position__stale_oracle__reverts(perp, alice, warp):
    warp(perp.max_oracle_age() + 1)
    with ape.reverts("perp: stale oracle"):
        perp.modify_position(-SIZE, 0, sender=alice)


def test_modify_position__sell_larger_than_depth__reverts(h, perp, operator, alice):
    perp.set_depth(10_000 * USDC, sender=operator)
    h.model.depth = 10_000 * USDC
    assert "larger than depth" in str(h.trade(alice, -4 * SIZE))


def test_modify_position__pool_cannot_pay__reverts(project, deployer, usdc, feed, feeder, alice):
    # A market whose pool holds only 1,000 USDC cannot pay a 3,000 USDC profit.
    market = deployer.deploy(project.PerpMarket, usdc, feed, 450, 500, 250, 50, 86_400, 10**18)
    usdc.mint(deployer, 1_000 * USDC, sender=deployer)
    usdc.approve(market, 2**256 - 1, sender=deployer)
    market.add_liquidity(1_000 * USDC, 0, sender=deployer)
    usdc.mint(alice, 100_000 * USDC, sender=alice)
    usdc.approve(market, 2**256 - 1, sender=alice)
    market.deposit_margin(10_000 * USDC, sender=alice)
    market.modify_position(-10 * SIZE, 0, sender=alice)
    market.accrue_funding(sender=feeder)
    feed.set_price(2_700 * E8, sender=feeder)
    with ape.reverts("perp: counterparty pool cannot pay"):
        market.modify_position(10 * SIZE, 2**256 - 1, sender=alice)
    # The pool owes more than it holds: nobody may buy into it or redeem from it.
    assert market.pool_value() < 0
    with ape.reverts("perp: pool value not positive"):
        market.add_liquidity(USDC, 0, sender=alice)
    with ape.reverts("perp: pool value not positive"):
        market.remove_liquidity(1, 0, sender=deployer)


def test_position_view__fields(h, perp, alice):
    h.trade(alice, -10 * SIZE)
    h.set_price(3_300 * E8)
    pos = perp.position(alice)
    m = h.model
    assert pos.unrealized_pnl == m.unrealized_pnl(alice.address) < 0
    assert pos.notional == 33_000 * USDC
    assert pos.equity == pos.margin + pos.unrealized_pnl + pos.accrued_funding
    assert pos.margin_ratio_bps == pos.equity * 10_000 // pos.notional
    assert perp.margin_ratio_bps(alice) == pos.margin_ratio_bps
    assert perp.equity(alice) == pos.equity


def test_position_view__flat_account(perp, stranger):
    pos = perp.position(stranger)
    assert (pos.size, pos.notional, pos.equity) == (0, 0, 0)
    assert pos.margin_ratio_bps == 2**256 - 1
    assert not perp.is_liquidatable(stranger)
