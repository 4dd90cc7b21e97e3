import ape
import pytest

from keeper.model.markets import FUNDING_DENOMINATOR, rate_per_second
from tests.units import E8, SIZE, USDC

HOURLY_1BP = rate_per_second(0.0001)  # 0.01 % per hour


@pytest.fixture
def h(funded, alice, bob):
    funded.deposit(alice, 100_000 * USDC)
    funded.deposit(bob, 100_000 * USDC)
    return funded


def test_set_funding_rate__accrues_then_updates_and_logs(h, perp, operator, chain):
    h.set_funding_rate(HOURLY_1BP)
    h.warp(3_600)
    index_before = perp.current_funding_index()
    h.model.now += 1
    chain.pending_timestamp = h.model.now
    tx = perp.set_funding_rate(-HOURLY_1BP, sender=operator)
    h.model.set_funding_rate(-HOURLY_1BP)
    (log,) = tx.events.filter(perp.FundingRateUpdated)
    assert (log.old_rate, log.new_rate) == (HOURLY_1BP, -HOURLY_1BP)
    assert log.funding_index == perp.funding_index() == index_before + HOURLY_1BP * perp.index_price()
    assert perp.funding_rate() == -HOURLY_1BP
    h.check()


def test_set_funding_rate__not_operator__reverts(perp, stranger):
    with ape.reverts("access_control: account is missing role"):
        perp.set_funding_rate(1, sender=stranger)


@pytest.mark.parametrize("sign", [1, -1])
def test_set_funding_rate__above_bound__reverts(perp, operator, sign):
    bound = perp.MAX_FUNDING_RATE()
    with ape.reverts("perp: funding rate above bound"):
        perp.set_funding_rate(sign * (bound + 1), sender=operator)
    perp.set_funding_rate(sign * bound, sender=operator)


def test_funding__positive_rate__longs_pay_shorts_every_second(h, perp, alice, bob):
    h.trade(alice, -10 * SIZE)
    h.trade(bob, 10 * SIZE)
    h.set_funding_rate(HOURLY_1BP)
    start_short = perp.accrued_funding(alice)
    for _ in range(3):
        h.warp(1)
        assert perp.accrued_funding(alice) > start_short
        start_short = perp.accrued_funding(alice)
    h.warp(3_600 * 8)
    # 8 h at 0.01 %/h on a 30k notional = ~24 USDC.
    assert perp.accrued_funding(alice) == pytest.approx(24 * USDC, rel=2e-3)
    assert perp.accrued_funding(bob) == pytest.approx(-24 * USDC, rel=2e-3)
    assert perp.accrued_funding(bob) < -perp.accrued_funding(alice)  # rounding favours the pool
    h.check()


def test_funding__negative_rate__shorts_pay(h, perp, alice):
    h.trade(alice, -10 * SIZE)
    h.set_funding_rate(-HOURLY_1BP)
    h.warp(3_600)
    assert perp.accrued_funding(alice) < 0
    h.check()


def test_funding__accrues_at_index_price_path(h, perp, alice):
    h.trade(alice, -SIZE)
    h.set_funding_rate(HOURLY_1BP)
    index0 = perp.current_funding_index()
    h.warp(1_000)
    h.set_price(6_000 * E8)  # the feeder checkpoints at 3000 before pushing 6000
    h.warp(1_000)
    index1 = perp.current_funding_index()
    # The feeder's accrue lands 1001 s after the rate was set (charged at 3000); the push
    # follows 1 s later, and that second and the next 1000 s are charged at 6000.
    assert index1 - index0 == HOURLY_1BP * (1_001 * 3_000 * E8 + 1_001 * 6_000 * E8)
    h.check()


def test_funding__settles_on_touch_with_event(h, perp, alice, chain):
    h.trade(alice, -10 * SIZE)
    h.set_funding_rate(HOURLY_1BP)
    h.warp(3_600)
    h.model.now += 1
    chain.pending_timestamp = h.model.now
    h.model.accrue()
    owed = h.model.accrued_funding(alice.address)
    tx = perp.deposit_margin(USDC, sender=alice)
    h.model.deposit_margin(alice.address, USDC)
    (log,) = tx.events.filter(perp.FundingSettled)
    assert log.amount == owed > 0
    assert perp.accrued_funding(alice) == 0
    h.check()


def test_accrue_funding__is_permissionless(h, perp, stranger):
    h.set_funding_rate(HOURLY_1BP)
    h.warp(10)
    perp.accrue_funding(sender=stranger)
    assert perp.funding_index() == perp.current_funding_index()


def test_accrued_funding__view_equals_settlement(h, perp, alice):
    h.trade(alice, -7 * SIZE)
    h.set_funding_rate(HOURLY_1BP * 3)
    h.warp(12_345)
    h.model.now += 1
    h.model.accrue()
    expected = h.model.accrued_funding(alice.address)
    margin_before = perp.position(alice).margin
    h.model.now -= 1
    h.deposit(alice, 1)  # touch at exactly model.now + 1
    assert perp.position(alice).margin == margin_before + 1 + expected


def test_funding_index__units(perp):
    # index per whole base unit, scaled by RATE_UNIT * PRICE_UNIT; settles in asset wei.
    assert perp.SIZE_UNIT() * perp.RATE_UNIT() * perp.PRICE_UNIT() == FUNDING_DENOMINATOR
