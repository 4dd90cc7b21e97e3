import ape
import pytest

from keeper.model.markets import SpotPoolModel
from tests.units import E8, USDC, WETH


@pytest.fixture(scope="module")
def trader(alice, usdc, weth, pool):
    for _ in range(5):
        usdc.mint(alice, 1_000_000 * USDC, sender=alice)
    weth.mint(alice, 1_000 * WETH, sender=alice)
    usdc.approve(pool, 2**256 - 1, sender=alice)
    weth.approve(pool, 2**256 - 1, sender=alice)
    return alice


def model_of(pool):
    return SpotPoolModel(pool.reserve_base(), pool.reserve_asset(), pool.fee_bps())


def test_constructor__seeded_at_oracle_price(pool, params):
    assert pool.fee_bps() == 5
    assert abs(pool.price_e8() - params.price_e8) <= 1
    # MINIMUM_LIQUIDITY is locked at the dead address.
    assert pool.balanceOf("0x000000000000000000000000000000000000dEaD") == 1_000


@pytest.mark.parametrize(
    "args,reason",
    [
        (("base", "base", 5), "pool: identical tokens"),
        (("base", "asset", 101), "pool: fee above maximum"),
        (("zero", "asset", 5), "pool: zero token"),
    ],
)
def test_constructor__bad_args__revert(project, deployer, usdc, weth, args, reason):
    tokens = {"base": weth.address, "asset": usdc.address, "zero": ape.utils.ZERO_ADDRESS}
    with ape.reverts(reason):
        deployer.deploy(project.SpotPool, tokens[args[0]], tokens[args[1]], args[2])


@pytest.mark.parametrize("base_in", [True, False])
def test_swap__pays_exactly_the_quote(pool, trader, usdc, weth, base_in):
    token_in, token_out = (weth, usdc) if base_in else (usdc, weth)
    amount = 10 * WETH if base_in else 30_000 * USDC
    quote = pool.get_amount_out(token_in, amount)
    assert quote == model_of(pool).amount_out(base_in, amount)
    before = token_out.balanceOf(trader)
    k_before = pool.reserve_base() * pool.reserve_asset()
    tx = pool.swap(token_in, amount, quote, trader, sender=trader)
    assert token_out.balanceOf(trader) - before == quote == tx.return_value
    assert pool.reserve_base() * pool.reserve_asset() >= k_before
    (log,) = tx.events.filter(pool.Swap)
    assert (log.token_in, log.amount_in, log.amount_out) == (token_in.address, amount, quote)


def test_swap__fee_is_charged_on_input(pool, trader, usdc):
    amount = 3_000 * USDC
    out = pool.get_amount_out(usdc, amount)
    spot_value = amount * 10**12 * E8 // pool.price_e8()  # base wei at the mid price
    # 5 bps fee plus a sliver of price impact.
    assert spot_value * 9_994 // 10_000 < out < spot_value * 9_995 // 10_000 + 1


def test_swap__min_out__reverts(pool, trader, usdc):
    quote = pool.get_amount_out(usdc, 1_000 * USDC)
    with ape.reverts("pool: output below minimum"):
        pool.swap(usdc, 1_000 * USDC, quote + 1, trader, sender=trader)


def test_swap__zero_amount__reverts(pool, trader, usdc):
    with ape.reverts("pool: zero amount"):
        pool.swap(usdc, 0, 0, trader, sender=trader)


def test_swap__dust_with_zero_output__reverts(pool, trader, weth):
    # 1 wei of WETH is worth far less than 1 wei of USDC.
    with ape.reverts("pool: zero output"):
        pool.swap(weth, 1, 0, trader, sender=trader)


def test_swap__unknown_token__reverts(pool, trader, stranger):
    with ape.reverts("pool: unknown token"):
        pool.swap(stranger, 1_000, 0, trader, sender=trader)


def test_swap__zero_receiver__reverts(pool, trader, usdc):
    with ape.reverts("pool: zero receiver"):
        pool.swap(usdc, USDC, 0, ape.utils.ZERO_ADDRESS, sender=trader)


def test_swap__without_approval__reverts(pool, bob, usdc):
    usdc.mint(bob, 1_000 * USDC, sender=bob)
    with ape.reverts():
        pool.swap(usdc, 1_000 * USDC, 0, bob, sender=bob)


def test_swap__donation_does_not_move_price(pool, trader, usdc, weth):
    price = pool.price_e8()
    quote = pool.get_amount_out(weth, WETH)
    usdc.transfer(pool, 100_000 * USDC, sender=trader)
    assert pool.price_e8() == price
    assert pool.get_amount_out(weth, WETH) == quote


@pytest.mark.parametrize("base_out", [True, False])
def test_get_amount_in__is_enough_and_tight(pool, base_out, usdc, weth):
    token_out, token_in = (weth, usdc) if base_out else (usdc, weth)
    want = 7 * WETH if base_out else 12_345 * USDC
    need = pool.get_amount_in(token_out, want)
    assert pool.get_amount_out(token_in, need) >= want
    assert pool.get_amount_out(token_in, need - 2) < want


def test_get_amount_in__more_than_reserve__is_max(pool, weth, usdc):
    assert pool.get_amount_in(weth, pool.reserve_base()) == 2**256 - 1
    assert pool.get_amount_in(usdc, 0) == 0


def test_views__unknown_token__do_not_revert(pool, stranger):
    assert pool.get_amount_out(stranger, 10**18) == 0
    assert pool.get_amount_in(stranger, 10**18) == 2**256 - 1


def test_add_liquidity__takes_the_current_ratio(pool, trader, usdc, weth):
    supply = pool.totalSupply()
    rb, ra = pool.get_reserves()
    shares_expected = min(10 * WETH * supply // rb, 1_000_000 * USDC * supply // ra)
    weth_before, usdc_before = weth.balanceOf(trader), usdc.balanceOf(trader)
    tx = pool.add_liquidity(10 * WETH, 1_000_000 * USDC, shares_expected, trader, sender=trader)
    assert tx.return_value == shares_expected == pool.balanceOf(trader)
    base_in = weth_before - weth.balanceOf(trader)
    asset_in = usdc_before - usdc.balanceOf(trader)
    assert base_in == 10 * WETH or base_in == -(-shares_expected * rb // supply)
    assert asset_in == -(-shares_expected * ra // supply)  # rounded up, < the 1M offered
    assert asset_in < 1_000_000 * USDC
    assert pool.price_e8() == pytest.approx(ra * 10**12 * E8 // rb, abs=1)
    (log,) = tx.events.filter(pool.LiquidityAdded)
    assert (log.base_amount, log.asset_amount, log.shares) == (base_in, asset_in, shares_expected)


def test_add_liquidity__min_shares__reverts(pool, trader):
    with ape.reverts("pool: shares below minimum"):
        pool.add_liquidity(WETH, 3_000 * USDC, 2**200, trader, sender=trader)


def test_add_liquidity__zero__reverts(pool, trader):
    with ape.reverts("pool: zero amount"):
        pool.add_liquidity(0, 3_000 * USDC, 0, trader, sender=trader)


def test_add_liquidity__first_deposit_too_small__reverts(project, deployer, usdc, weth):
    fresh = deployer.deploy(project.SpotPool, weth, usdc, 5)
    usdc.approve(fresh, 10**6, sender=deployer)
    weth.approve(fresh, 10**6, sender=deployer)
    with ape.reverts("pool: initial liquidity too small"):
        fresh.add_liquidity(1_000, 1_000, 0, deployer, sender=deployer)


def test_remove_liquidity__pays_pro_rata_and_rounds_down(pool, trader, usdc, weth):
    pool.add_liquidity(10 * WETH, 1_000_000 * USDC, 0, trader, sender=trader)
    shares = pool.balanceOf(trader)
    supply = pool.totalSupply()
    rb, ra = pool.get_reserves()
    tx = pool.remove_liquidity(shares, 0, 0, trader, sender=trader)
    assert list(tx.return_value) == [shares * rb // supply, shares * ra // supply]
    assert pool.balanceOf(trader) == 0
    (log,) = tx.events.filter(pool.LiquidityRemoved)
    assert log.shares == shares


def test_remove_liquidity__min_out__reverts(pool, trader):
    pool.add_liquidity(WETH, 3_000 * USDC, 0, trader, sender=trader)
    with ape.reverts("pool: output below minimum"):
        pool.remove_liquidity(pool.balanceOf(trader), 2 * WETH, 0, trader, sender=trader)


def test_remove_liquidity__more_than_balance__reverts(pool, trader):
    with ape.reverts("erc20: burn amount exceeds balance"):
        pool.remove_liquidity(10**18, 0, 0, trader, sender=trader)


def test_remove_liquidity__zero__reverts(pool, trader):
    with ape.reverts("pool: zero shares"):
        pool.remove_liquidity(0, 0, 0, trader, sender=trader)


def test_add_liquidity__dust_rounds_to_zero_shares__reverts(pool, trader):
    with ape.reverts("pool: zero shares"):
        pool.add_liquidity(1, 3_000 * USDC, 0, trader, sender=trader)


def test_liquidity__zero_receiver__reverts(pool, trader):
    with ape.reverts("pool: zero receiver"):
        pool.add_liquidity(WETH, 3_000 * USDC, 0, ape.utils.ZERO_ADDRESS, sender=trader)
    pool.add_liquidity(WETH, 3_000 * USDC, 0, trader, sender=trader)
    with ape.reverts("pool: zero receiver"):
        pool.remove_liquidity(1, 0, 0, ape.utils.ZERO_ADDRESS, sender=trader)


def test_remove_liquidity__dust_with_zero_output__reverts(pool, trader):
    pool.add_liquidity(WETH, 3_000 * USDC, 0, trader, sender=trader)
    with ape.reverts("pool: zero output"):
        pool.remove_liquidity(1, 0, 0, trader, sender=trader)
