"""UniswapV3Spot, the hedge's spot interface on an official Uniswap v3 pool (deployed from
the npm artifacts): its quotes are the pool's fills to the wei (and QuoterV2's), its
callback pays only the configured pool exactly the trade, and a trade that would leave the
pool's liquidity reverts with a clear reason before any token moves."""

import ape
import pytest

from keeper.core.errors import UserError
from keeper.ops.contracts import faucet
from keeper.ops.uniswap_v3 import (
    check_pool,
    container,
    deploy_uniswap_v3,
    full_range,
    sqrt_ratio_at_tick,
    tick_at_sqrt_ratio,
)
from tests.fixtures.uniswap_v3 import deploy_v3_on, reverts
from tests.units import MAX, USDC, WETH


def quoter_out(v3, token_in, token_out, amount):
    return v3.quoter.quoteExactInputSingle.call((token_in.address, token_out.address, amount, v3.fee, 0))[0]


def quoter_in(v3, token_in, token_out, amount):
    return v3.quoter.quoteExactOutputSingle.call((token_in.address, token_out.address, amount, v3.fee, 0))[0]


def sell(adapter, token, who, amount, min_out=0):
    faucet(token, who, amount)
    token.approve(adapter, amount, sender=who)
    return adapter.swap(token, amount, min_out, who, sender=who)


# Sizes from dust to a trade that moves the full-range pool ~40 % (it crosses bitmap
# words: several swap steps in the pool's loop, which the adapter follows step for step).
SIZES_USDC = (1, 999, 3_000 * USDC, 1_234_567 * USDC, 200_000_000 * USDC)
SIZES_WETH = (1, 10**9, WETH, 777 * WETH, 100_000 * WETH)


def test_quotes__equal_quoterv2_and_the_fill__both_ways_every_size(v3, usdc, weth, stranger, chain):
    adapter = v3.adapter
    for token_in, token_out, sizes in ((usdc, weth, SIZES_USDC), (weth, usdc, SIZES_WETH)):
        for amount in sizes:
            quote = adapter.get_amount_out(token_in, amount)
            assert quote == quoter_out(v3, token_in, token_out, amount), (token_in.symbol(), amount)
            if quote == 0:
                continue
            wanted = quote
            cost = adapter.get_amount_in(token_out, wanted)
            assert cost == quoter_in(v3, token_in, token_out, wanted)
            assert adapter.get_amount_out(token_in, cost) >= wanted  # the hedge buys with it
            snapshot = chain.snapshot()
            before = token_out.balanceOf(stranger)
            tx = sell(adapter, token_in, stranger, amount)
            assert tx.return_value == quote == token_out.balanceOf(stranger) - before
            assert token_in.balanceOf(adapter) == token_out.balanceOf(adapter) == 0
            chain.restore(snapshot)


def test_swap__pulls_exactly_the_input_and_logs_the_reference_swap_event(v3, usdc, weth, stranger):
    adapter, pool = v3.adapter, v3.pool
    faucet(usdc, stranger, 10_000 * USDC)
    usdc.approve(adapter, MAX, sender=stranger)  # even an unlimited approval is drawn exactly
    pool_before = usdc.balanceOf(pool)
    payer_before = usdc.balanceOf(stranger)
    tx = adapter.swap(usdc, 5_000 * USDC, 1, stranger, sender=stranger)
    assert payer_before - usdc.balanceOf(stranger) == 5_000 * USDC
    assert usdc.balanceOf(pool) - pool_before == 5_000 * USDC
    (log,) = tx.events.filter(adapter.Swap)
    assert (log.token_in, log.amount_in, log.amount_out) == (usdc.address, 5_000 * USDC, tx.return_value)
    assert (log.reserve_base, log.reserve_asset) == adapter.get_reserves()


def test_swap__below_min_out_or_bad_input__reverts(v3, usdc, weth, stranger, chain):
    adapter = v3.adapter
    faucet(usdc, stranger, 1_000 * USDC)
    usdc.approve(adapter, 1_000 * USDC, sender=stranger)
    quote = adapter.get_amount_out(usdc, 1_000 * USDC)
    reverts(
        chain,
        adapter.swap,
        usdc,
        1_000 * USDC,
        quote + 1,
        stranger,
        sender=stranger,
        reason="pool: output below minimum",
    )
    reverts(chain, adapter.swap, usdc, 0, 0, stranger, sender=stranger, reason="pool: zero amount")
    reverts(chain, adapter.swap, adapter, 1, 0, stranger, sender=stranger, reason="pool: unknown token")
    # 1 USDC wei buys no WETH wei after the fee
    reverts(chain, adapter.swap, usdc, 1, 0, stranger, sender=stranger, reason="pool: zero output")
    adapter.swap(usdc, 1_000 * USDC, quote, stranger, sender=stranger)


def test_callback__from_anyone_but_the_pool__reverts(v3, usdc, stranger, alice, chain):
    adapter = v3.adapter
    # alice's standing approval must not be drawable through a forged callback
    faucet(usdc, alice, 1_000 * USDC)
    usdc.approve(adapter, MAX, sender=alice)
    data = bytes(12) + bytes.fromhex(alice.address[2:]) + bytes(12) + bytes.fromhex(usdc.address[2:])
    data += (1_000 * USDC).to_bytes(32, "big")
    reverts(
        chain,
        adapter.uniswapV3SwapCallback,
        1_000 * USDC,
        0,
        data,
        sender=stranger,
        reason="pool: callback from a non-pool address",
    )
    assert usdc.balanceOf(alice) == 1_000 * USDC


def test_views__reserves_price_and_fee_describe_the_pool(v3, venue, usdc, weth):
    adapter = v3.adapter
    assert adapter.fee_bps() == 5 and adapter.fee_pips() == 500
    assert adapter.pool() == v3.pool.address and adapter.factory() == v3.factory.address
    assert adapter.price_e8() == pytest.approx(venue.price_feed.latestAnswer(), abs=1)
    base, asset = adapter.get_reserves()
    # full range: the virtual reserves are the seeded amounts (x * y = L**2)
    assert base == pytest.approx(weth.balanceOf(v3.pool), rel=1e-9)
    assert asset == pytest.approx(usdc.balanceOf(v3.pool), rel=1e-9)
    assert adapter.get_amount_out(v3.factory, 1) == 0
    assert adapter.get_amount_in(v3.factory, 1) == MAX
    assert v3.tick_lower, v3.tick_upper == full_range(500)


def test_tick_math__python_matches_the_pool():
    assert sqrt_ratio_at_tick(-887272) == 4295128739
    assert sqrt_ratio_at_tick(887272) == 1461446703485210103287273052203988822378723970342
    for tick in (-887270, -200_000, -1, 0, 1, 76_012, 887270):
        assert tick_at_sqrt_ratio(sqrt_ratio_at_tick(tick)) == tick


def test_deploy__wrong_fee_tier_or_tokens__one_error_then_the_constructor_refuses(
    project, v3, venue, deployer, usdc, weth
):
    pool, factory = v3.pool, v3.factory
    # the deploy tools' check: one line, before any transaction
    with pytest.raises(UserError, match=r"venue\.spot\.fee is 3000, but pool .* is the 500 fee tier"):
        check_pool(factory, pool, weth.address, usdc.address, 3000)
    with pytest.raises(UserError, match="not the vault's base"):
        check_pool(factory, pool, weth.address, venue.perp_market.address, 500)
    # and the contract itself, should anyone deploy it by hand
    with ape.reverts("pool: not the factory's pool for these tokens and fee"):
        deployer.deploy(project.UniswapV3Spot, factory, pool, weth, usdc, 3000)
    with ape.reverts("pool: fee tier not whole bps"):
        deployer.deploy(project.UniswapV3Spot, factory, pool, weth, usdc, 550)


@pytest.fixture(scope="module")
def narrow(project, deployer, venue, params):
    """A second v3 deployment whose only liquidity is +/- 2 % around the oracle."""
    return deploy_v3_on(project, deployer, venue, params, width_bps=200)


def test_concentrated__inside_the_range__exact__leaving_it__reverts_before_any_transfer(
    narrow, usdc, weth, stranger, chain
):
    adapter = narrow.adapter
    small = 1_000_000 * USDC
    assert adapter.get_amount_out(usdc, small) == quoter_out(narrow, usdc, weth, small)
    # the range holds ~2 % of price: a trade of a third of the pool's virtual asset leaves it
    _, virtual_asset = adapter.get_reserves()
    big = virtual_asset // 3
    reverts(
        chain,
        adapter.get_amount_out,
        usdc,
        big,
        sender=stranger,
        reason="pool: trade leaves the liquidity range",
    )
    reverts(
        chain,
        adapter.get_amount_in,
        weth,
        weth.balanceOf(narrow.pool),
        sender=stranger,
        reason="pool: trade leaves the liquidity range",
    )
    faucet(usdc, stranger, big)
    usdc.approve(adapter, big, sender=stranger)
    before = usdc.balanceOf(stranger), weth.balanceOf(stranger)
    reverts(
        chain,
        adapter.swap,
        usdc,
        big,
        0,
        stranger,
        sender=stranger,
        reason="pool: trade leaves the liquidity range",
    )
    assert (usdc.balanceOf(stranger), weth.balanceOf(stranger)) == before


def test_concentrated__crossing_an_initialized_tick__still_exact(
    narrow, deployer, usdc, weth, stranger, chain
):
    """Full-range liquidity under the narrow range: a trade past the range's edge crosses
    its initialized tick (liquidity drops to the full-range part) and the quote follows."""
    adapter, manager, pool = narrow.adapter, narrow.position_manager, narrow.pool
    lower, upper = full_range(500)
    faucet(usdc, deployer, 100_000_000 * USDC)
    faucet(weth, deployer, 34_000 * WETH)
    usdc.approve(manager, MAX, sender=deployer)
    weth.approve(manager, MAX, sender=deployer)
    usdc_is_0 = int(usdc.address, 16) < int(weth.address, 16)
    t0, t1 = (usdc, weth) if usdc_is_0 else (weth, usdc)
    a0, a1 = (100_000_000 * USDC, 34_000 * WETH) if usdc_is_0 else (34_000 * WETH, 100_000_000 * USDC)
    deadline = chain.pending_timestamp + 600
    manager.mint((t0, t1, 500, lower, upper, a0, a1, 0, 0, deployer, deadline), sender=deployer)
    # USDC in to the narrow range's edge (token0 in: the price falls to tick_lower; token1
    # in: it rises to tick_upper), then 1 % of the full-range depth beyond it
    liquidity, sqrt_p = pool.liquidity(), pool.slot0()[0]
    if usdc_is_0:
        edge = sqrt_ratio_at_tick(narrow.tick_lower)
        to_edge = liquidity * 2**96 * (sqrt_p - edge) // (sqrt_p * edge)
    else:
        edge = sqrt_ratio_at_tick(narrow.tick_upper)
        to_edge = liquidity * (edge - sqrt_p) // 2**96
    amount = to_edge * 10_006 // 10_000 + 1_000_000 * USDC
    quote = adapter.get_amount_out(usdc, amount)
    result = narrow.quoter.quoteExactInputSingle.call((usdc.address, weth.address, amount, 500, 0))
    assert result[2] >= 1  # QuoterV2's initializedTicksCrossed
    assert quote == result[0]
    assert sell(adapter, usdc, stranger, amount).return_value == quote


def test_pool_artifact__is_the_init_code_periphery_expects(v3):
    assert container("UniswapV3Pool").contract_type.deployment_bytecode.bytecode  # loaded from node_modules
    assert v3.factory.getPool(v3.pool.token0(), v3.pool.token1(), 500) == v3.pool.address


@pytest.fixture(scope="module")
def negative_ticks(project, deployer):
    """A pool whose 18-decimal base is token0 (the lower address): its price in token1 wei
    per token0 wei is ~3e-9, so its ticks are negative (the other pools' are positive), and
    the adapter's tick compression and bitmap words run on negative numbers."""
    asset = deployer.deploy(project.TestToken, "USD (test)", "USD", 6, 10**30, 10**30)
    base = deployer.deploy(project.TestToken, "ETH (test)", "ETH", 18, 10**30, 10**30)
    while int(base.address, 16) > int(asset.address, 16):
        base = deployer.deploy(project.TestToken, "ETH (test)", "ETH", 18, 10**30, 10**30)
    v3 = deploy_uniswap_v3(project, deployer, base, asset, 3_000 * 10**8, 10_000 * WETH, 30_000_000 * USDC)
    assert v3.adapter.base_is_token0() and v3.pool.slot0()[1] < 0
    return v3, base, asset


def test_quotes__negative_ticks__equal_quoterv2_and_the_fill(negative_ticks, deployer, chain):
    v3, base, asset = negative_ticks
    adapter = v3.adapter
    for token_in, token_out, sizes in (
        (asset, base, (999, 3_000 * USDC, 5_000_000 * USDC)),
        (base, asset, (10**9, WETH, 3_000 * WETH)),
    ):
        for amount in sizes:
            quote = adapter.get_amount_out(token_in, amount)
            assert quote == quoter_out(v3, token_in, token_out, amount), (token_in.symbol(), amount)
            assert adapter.get_amount_in(token_out, quote) == quoter_in(v3, token_in, token_out, quote)
            snapshot = chain.snapshot()
            token_in.approve(adapter, amount, sender=deployer)
            assert adapter.swap(token_in, amount, quote, deployer, sender=deployer).return_value == quote
            chain.restore(snapshot)
