import ape

from tests.units import SIZE, USDC


def test_deposit_margin__credits_account(funded, perp, usdc, alice):
    tx = perp.deposit_margin(10_000 * USDC, sender=alice)
    assert perp.position(alice).margin == 10_000 * USDC
    assert perp.total_margin() == 10_000 * USDC
    assert usdc.balanceOf(perp) == perp.total_margin() + perp.pool_liquidity()
    (log,) = tx.events.filter(perp.MarginDeposited)
    assert (log.account, log.amount) == (alice.address, 10_000 * USDC)


def test_deposit_margin__zero__reverts(perp, alice):
    with ape.reverts("perp: zero amount"):
        perp.deposit_margin(0, sender=alice)


def test_deposit_margin__without_approval__reverts(perp, usdc, stranger):
    usdc.mint(stranger, USDC, sender=stranger)
    with ape.reverts("erc20: insufficient allowance"):
        perp.deposit_margin(USDC, sender=stranger)


def test_deposit_margin__rescues_account_whose_funding_debt_exceeds_margin(funded, alice, bob):
    h = funded
    h.deposit(alice, 1_000 * USDC)
    h.trade(alice, 6 * SIZE)  # ~18k long on 1k margin, 18x
    h.set_funding_rate(h.perp.MAX_FUNDING_RATE())
    h.warp(3 * 3600)  # 12 % of notional in funding: more than the margin
    assert h.model.equity(alice.address) < 0
    h.deposit(alice, 5_000 * USDC)  # settles after crediting, so it does not revert
    h.check()


def test_withdraw_margin__flat_account(funded, perp, alice):
    h = funded
    h.deposit(alice, 1_000 * USDC)
    tx = perp.withdraw_margin(400 * USDC, sender=alice)
    assert perp.position(alice).margin == 600 * USDC
    (log,) = tx.events.filter(perp.MarginWithdrawn)
    assert log.amount == 400 * USDC


def test_withdraw_margin__above_margin__reverts(funded, alice):
    funded.deposit(alice, 1_000 * USDC)
    assert "above margin" in str(funded.withdraw(alice, 1_000 * USDC + 1))


def test_withdraw_margin__zero__reverts(perp, alice):
    with ape.reverts("perp: zero amount"):
        perp.withdraw_margin(0, sender=alice)


def test_withdraw_margin__below_initial_margin__reverts(funded, alice):
    h = funded
    h.deposit(alice, 10_000 * USDC)
    h.trade(alice, -10 * SIZE)  # 30k short: IM = 1.5k
    assert "initial margin" in str(h.withdraw(alice, 8_600 * USDC))
    h.withdraw(alice, 8_000 * USDC)
    h.check()


def test_withdraw_margin__stale_oracle__reverts_only_with_a_position(funded, perp, alice, bob, warp):
    h = funded
    h.deposit(alice, 10_000 * USDC)
    h.deposit(bob, 10_000 * USDC)
    h.trade(alice, -SIZE)
    warp(perp.max_oracle_age() + 1)
    with ape.reverts("perp: stale oracle"):
        perp.withdraw_margin(USDC, sender=alice)
    perp.withdraw_margin(USDC, sender=bob)  # flat: no price needed


def test_withdraw_margin__settles_funding_first(funded, perp, alice, usdc):
    h = funded
    h.deposit(alice, 10_000 * USDC)
    h.trade(alice, -10 * SIZE)
    h.set_funding_rate(10**18 // 100 // 3600 // 8)  # 0.01 %/h roughly: shorts earn
    h.warp(20 * 3600)
    earned = h.model.accrued_funding(alice.address)
    assert earned > 0
    h.withdraw(alice, 100 * USDC)
    assert perp.position(alice).accrued_funding == 0
    h.check()
    assert h.model.account(alice.address).margin > 9_900 * USDC - 20 * USDC  # fee paid, funding earned
    assert usdc.balanceOf(perp) == perp.total_margin() + perp.pool_liquidity()


def test_price_feed_decimals_must_be_8(project, deployer, usdc):
    feed = deployer.deploy(project.TestToken, "Not a feed", "NF", 18, 1, 0)  # decimals() == 18
    with ape.reverts("perp: oracle must have 8 decimals"):
        deployer.deploy(project.PerpMarket, usdc, feed, 450, 500, 250, 50, 3600, 10**15)


def _between_mm_and_im(perp, feed, feeder, account, target_bps=375):
    """Push the oracle (bisection) until `account`'s margin ratio is ~target_bps."""
    lo, hi = feed.latestAnswer(), feed.latestAnswer() * 2
    for _ in range(40):
        mid = (lo + hi) // 2
        feed.set_price(mid, sender=feeder)
        ratio = perp.margin_ratio_bps(account)
        if abs(ratio - target_bps) <= 10:
            return ratio
        lo, hi = (mid, hi) if ratio > target_bps else (lo, mid)
    raise AssertionError("no price found")


def test_withdraw_margin__between_mm_and_im__eoa_reverts_even_after_a_reduce_in_an_earlier_tx(
    funded, perp, feed, feeder, alice
):
    """The issue-10 venue change lets an account withdraw below initial margin only in the
    same transaction as a reduction, keeping its pre-reduction margin ratio (the vault's
    pro-rata exit: tests/vault/test_exit_fairness.py). An EOA's plain withdrawal, and one
    in a later transaction than its reduction, still need initial margin."""
    perp.deposit_margin(10_000 * USDC, sender=alice)
    perp.modify_position(-10 * SIZE, 0, sender=alice)  # 30k short, margin ratio ~33 %
    ratio = _between_mm_and_im(perp, feed, feeder, alice)
    assert perp.maintenance_margin_bps() < ratio < perp.initial_margin_bps()
    assert not perp.is_liquidatable(alice)
    with ape.reverts("perp: below initial margin"):
        perp.withdraw_margin(USDC, sender=alice)
    perp.modify_position(SIZE, 2**255, sender=alice)  # reduce 10 % in its own transaction
    after_reduce = perp.margin_ratio_bps(alice)
    assert after_reduce < perp.initial_margin_bps()
    with ape.reverts("perp: below initial margin"):  # the floor does not outlive that tx
        perp.withdraw_margin(1, sender=alice)
    assert perp.margin_ratio_bps(alice) == after_reduce
