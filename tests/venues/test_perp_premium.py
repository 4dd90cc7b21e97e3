"""Issue 12, item 1: the perp's premium over the index (its mark).

`mark = index x (1 + premium)`, the premium set by OPERATOR_ROLE within +-10 %. Fills are at
the mark moved by impact; unrealised PnL, equity, notional, margin ratio, the initial-margin
checks, liquidation and the pool's value are at the mark; funding still accrues on the
index. Every case runs beside the exact model (`PerpHarness.check`: to the wei).
"""

import copy

import ape
import pytest

from keeper.core.fixed import MAX_PREMIUM, PREMIUM_UNIT, mark_price, mul_div, value
from tests.units import E8, SIZE, USDC

PCT = PREMIUM_UNIT // 100  # +1 %


def test_premium__starts_at_zero_mark_is_the_index(perp):
    assert perp.premium() == 0
    assert perp.mark_price() == perp.index_price()
    assert (perp.PREMIUM_UNIT(), perp.MAX_PREMIUM()) == (PREMIUM_UNIT, MAX_PREMIUM) == (10**18, 10**17)


def test_set_premium__operator_only_bounded_with_event(perp, operator, stranger):
    with ape.reverts("access_control: account is missing role"):
        perp.set_premium(PCT, sender=stranger)
    for beyond in (MAX_PREMIUM + 1, -MAX_PREMIUM - 1):
        with ape.reverts("perp: premium out of range"):
            perp.set_premium(beyond, sender=operator)
    tx = perp.set_premium(MAX_PREMIUM, sender=operator)
    (log,) = tx.events.filter(perp.PremiumUpdated)
    assert (log.old_premium, log.new_premium) == (0, MAX_PREMIUM)
    tx = perp.set_premium(-MAX_PREMIUM, sender=operator)
    (log,) = tx.events.filter(perp.PremiumUpdated)
    assert (log.old_premium, log.new_premium) == (MAX_PREMIUM, -MAX_PREMIUM)
    assert perp.premium() == -MAX_PREMIUM


@pytest.mark.parametrize("premium", [PCT, -PCT, 3 * PCT // 1_000, MAX_PREMIUM, -MAX_PREMIUM, 1, -1])
def test_mark_price__index_times_one_plus_premium_rounded_down(perp, feed, feeder, operator, premium):
    feed.set_price(3_000 * E8 + 12_345, sender=feeder)  # an index that does not divide evenly
    perp.set_premium(premium, sender=operator)
    index = perp.index_price()
    expected = index * (PREMIUM_UNIT + premium) // PREMIUM_UNIT
    assert perp.mark_price() == expected == mark_price(index, premium)
    if premium == PCT:
        assert expected == 303_000_012_468  # 3,000.00012345 x 1.01 = 3,030.0001246845, floored


def test_quote_and_fill__at_the_mark_moved_by_impact(funded, perp, alice, bob):
    h = funded
    h.deposit(alice, 100_000 * USDC)
    h.deposit(bob, 100_000 * USDC)
    h.set_premium(PCT)
    index, mark = perp.index_price(), perp.mark_price()
    assert mark == 3_030 * E8
    depth = perp.depth()
    for size in (-10 * SIZE, 10 * SIZE):
        notional = abs(value(size, mark, USDC, False))  # at the mark: 30,300 USDC
        assert notional == 30_300 * USDC
        moved = depth - notional if size < 0 else depth + notional
        assert perp.quote_fill_price(size) == mul_div(mark, moved, depth, size > 0)
    # a short sold at a 1 % premium fills 1 % above the index (less impact)
    quote = perp.quote_fill_price(-10 * SIZE)
    fill, fee, _ = h.trade(alice, -10 * SIZE)
    assert fill == quote
    assert index < fill < mark
    assert fee == mul_div(abs(value(-10 * SIZE, fill, USDC, True)), 450, 10**6, True)  # on the fill
    h.check()
    assert perp.position(alice).entry_price_e8 == fill


def test_modify_position__event_has_index_and_mark(funded, perp, alice, chain):
    h = funded
    h.deposit(alice, 100_000 * USDC)
    h.set_premium(-PCT // 2)  # a 0.5 % discount
    h.model.now += 1
    chain.pending_timestamp = h.model.now
    expected = h.model.modify_position(alice.address, 2 * SIZE)
    tx = perp.modify_position(2 * SIZE, 2**256 - 1, sender=alice)
    (log,) = tx.events.filter(perp.PositionModified)
    assert (log.fill_price_e8, log.fee) == expected[:2]
    assert log.index_price_e8 == 3_000 * E8 and log.mark_price_e8 == 2_985 * E8
    assert log.index_price_e8 > log.fill_price_e8 > log.mark_price_e8  # bought at the discount
    h.check()


def test_unrealized_pnl_equity_and_pool_value__move_with_the_mark_not_the_index(funded, perp, alice, bob):
    h = funded
    h.deposit(alice, 100_000 * USDC)
    h.deposit(bob, 100_000 * USDC)
    h.trade(alice, -10 * SIZE)  # 30k short at premium 0
    h.trade(bob, 4 * SIZE)  # 12k long
    before = {who: perp.position(who) for who in (alice, bob)}
    pool_before = perp.pool_value()
    h.set_premium(PCT)  # the index does not move
    h.check()
    after = {who: perp.position(who) for who in (alice, bob)}
    # the short loses 1 % of 30k, the long gains 1 % of 12k (value rounded down both times)
    assert after[alice].unrealized_pnl - before[alice].unrealized_pnl == value(
        -10 * SIZE, 3_030 * E8, USDC, False
    ) - value(-10 * SIZE, 3_000 * E8, USDC, False)
    assert after[alice].unrealized_pnl - before[alice].unrealized_pnl == -300 * USDC
    assert after[bob].unrealized_pnl - before[bob].unrealized_pnl == 120 * USDC
    assert after[alice].notional == 30_300 * USDC and after[bob].notional == 12_120 * USDC
    assert after[alice].equity == perp.equity(alice) == h.model.equity(alice.address)
    assert after[alice].margin_ratio_bps < before[alice].margin_ratio_bps
    # the house pool is the other side: it gains what the net short loses (18k net short)
    assert perp.pool_value() - pool_before == pytest.approx(180 * USDC, abs=2)
    assert perp.index_price() == 3_000 * E8


def test_funding__accrues_on_the_index_whatever_the_premium(funded, perp, alice, bob):
    h = funded
    h.deposit(alice, 100_000 * USDC)
    h.trade(alice, -10 * SIZE)
    h.set_funding_rate(27_777_777_777)  # 0.01 %/h
    h.set_premium(5 * PCT)
    index_before = perp.current_funding_index()
    h.warp(3_600)
    assert perp.current_funding_index() - index_before == 27_777_777_777 * 3_600 * 3_000 * E8
    h.check()


def test_liquidation__triggered_by_the_mark_when_the_index_alone_would_not(funded, perp, alice, liquidator):
    h = funded
    h.deposit(alice, 10_000 * USDC)
    h.trade(alice, -50 * SIZE)  # 150k short on 10k: 15x, maintenance 2.5 % = 3.75k
    m = h.model
    # the lowest premium (1e-18 steps) that makes alice liquidatable at this index
    lo, hi = 0, MAX_PREMIUM
    while hi - lo > 1:
        mid = (lo + hi) // 2
        m.premium = mid
        lo, hi = (lo, mid) if m.is_liquidatable(alice.address) else (mid, hi)
    m.premium = 0
    assert 3 * PCT < hi < 5 * PCT  # ~4.1 %: the short's loss at the mark eats its margin
    h.set_premium(lo, dt=0)
    assert not perp.is_liquidatable(alice)
    assert "not liquidatable" in str(h.liquidate(alice, liquidator, dt=0))
    h.set_premium(hi, dt=0)
    assert perp.is_liquidatable(alice)
    assert perp.index_price() == 3_000 * E8  # the index alone: healthy
    index_only = copy.deepcopy(h.model)
    index_only.premium = 0
    assert not index_only.is_liquidatable(alice.address)
    h.check()
    mark = perp.mark_price()
    notional = abs(value(-50 * SIZE, mark, USDC, False))  # at the mark
    chain = h.chain
    chain.pending_timestamp = h.model.now
    tx = perp.liquidate(alice, sender=liquidator)
    fee, bad_debt = h.model.liquidate(alice.address)
    (log,) = tx.events.filter(perp.Liquidated)
    assert (log.index_price_e8, log.mark_price_e8) == (3_000 * E8, mark)
    assert (log.liquidator_fee, log.bad_debt) == (fee, bad_debt) == (notional * 50 // 10_000, 0)
    assert perp.position(alice).size == 0
    h.check()


def test_withdraw_margin__initial_margin_checked_at_the_mark(funded, perp, alice):
    h = funded
    h.deposit(alice, 10_000 * USDC)
    h.trade(alice, -10 * SIZE)  # 30k short: IM 1.5k; at the index ~8.49k could be withdrawn
    h.set_premium(5 * PCT)  # mark 3,150: the short is 1.5k down, IM 1,575
    m = h.model
    at_index = copy.deepcopy(m)
    at_index.premium = 0
    assert at_index.equity(alice.address) - at_index.margin_requirement(-10 * SIZE, 500) > 8_000 * USDC
    assert "initial margin" in str(h.withdraw(alice, 8_000 * USDC))  # fine at the index, not at the mark
    m = h.model  # a refused call leaves the harness with a fresh copy of the model
    room = m.equity(alice.address) - m.margin_requirement(-10 * SIZE, 500)
    assert 6_800 * USDC < room < 7_000 * USDC
    assert "initial margin" in str(h.withdraw(alice, room + 1))
    h.withdraw(alice, room)
    h.check()
    assert perp.margin_ratio_bps(alice) == 500  # exactly initial margin, at the mark


def test_open_at_a_premium__converges__the_short_earns_the_basis(funded, perp, alice, bob):
    """Sell the perp 1 % rich, the premium converges to 0: the short gains ~1 % of its
    notional (less fee and impact): the basis a cash-and-carry locks in."""
    h = funded
    h.deposit(alice, 100_000 * USDC)
    h.deposit(bob, 100_000 * USDC)
    h.set_premium(PCT)
    h.trade(alice, -10 * SIZE)
    equity_open = perp.equity(alice)
    h.set_premium(0)
    assert perp.equity(alice) - equity_open == 300 * USDC  # 10 x (3,030 - 3,000)
    # against the entry: the basis less the impact (the fee is out of the margin)
    assert 299 * USDC < perp.position(alice).unrealized_pnl < 300 * USDC
    h.check()
