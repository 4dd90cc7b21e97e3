"""A BasisVault whose hedge trades spot on an official Uniswap v3 pool (full range, fee
500) through UniswapV3Spot: deposits, rebalances (open, adjust, park), exits that unwind,
emergency deleverage and shutdown all run on it; a pool pushed off the oracle is refused by
the hedge's slippage rule, and a trade that would leave a concentrated range reverts with
the adapter's reason and costs nothing. The vault and the hedge are the unchanged
contracts: only their `spot_pool` is the adapter."""

import dataclasses
from types import SimpleNamespace

import pytest

from keeper.chain.reader import Addresses, read_snapshot, read_static
from keeper.model.markets import UniswapV3FullRangeModel
from keeper.net.rpc import Rpc
from keeper.ops.actions import auto_unwind_step
from keeper.ops.contracts import arb_to_oracle, faucet, hedge_of
from keeper.ops.uniswap_v3 import deploy_uniswap_v3, range_ticks
from tests.fixtures.uniswap_v3 import deploy_v3_on, input_to_edge, reverts
from tests.fixtures.vault import build_hedge, delta_bps, fund, hedge_targets, vault_factory
from tests.units import E8, MAX, USDC, WETH


@pytest.fixture(scope="module")
def create_vault(create_v3_vault):
    """tests/vault's `vault` (alice and bob funded), on the v3 venue."""
    return create_v3_vault


@pytest.fixture
def arb(stranger):
    """Trade the v3 pool (through its adapter) back to the oracle."""
    return lambda venue: arb_to_oracle(venue, stranger)


@pytest.fixture
def hedged(hedged_vault):
    return hedged_vault(100_000, 200_000, 3.0)


def test_v3_vault__spot_pool_is_the_adapter(vault, hedge, v3):
    assert hedge.spot_pool() == v3.adapter.address
    assert v3.adapter.pool() == v3.pool.address


def test_v3_vault__deposit_open_adjust_park(vault, hedge, perp, keeper, alice, bob, usdc, weth, deadline, v3):
    vault.deposit(100_000 * USDC, alice, sender=alice)
    vault.deposit(200_000 * USDC, bob, sender=bob)
    nav = vault.totalAssets()
    short, margin = hedge_targets(vault, perp, 2.0)
    tx = hedge.rebalance(short, margin, 50, deadline, sender=keeper)  # open
    assert hedge.short_size() == short
    assert weth.balanceOf(hedge) == hedge.spot_base() > 0
    assert abs(delta_bps(vault, perp, hedge)) <= 5
    assert nav - vault.totalAssets() < nav * 10 // 10_000
    (log,) = tx.events.filter(v3.adapter.Swap)  # one exact-input buy on the v3 pool
    assert log.sender == hedge.address and log.token_in == usdc.address
    assert usdc.allowance(hedge, v3.adapter) == 0  # the approval was exactly the trade
    short3, margin3 = hedge_targets(vault, perp, 3.0)
    hedge.rebalance(short3, margin3, 50, deadline, sender=keeper)  # adjust
    assert hedge.short_size() == short3 and abs(delta_bps(vault, perp, hedge)) <= 5
    nav = vault.totalAssets()
    hedge.rebalance(0, 0, 50, deadline, sender=keeper)  # park: sells the spot on v3
    assert hedge.short_size() == hedge.spot_base() == weth.balanceOf(hedge) == 0
    assert vault.idle() == vault.totalAssets() == usdc.balanceOf(vault)
    assert nav - vault.totalAssets() < nav * 10 // 10_000
    assert weth.allowance(hedge, v3.adapter) == 0


def test_v3_vault__redeem_beyond_idle_unwinds_on_v3_and_stayers_do_not_pay(hedged, hedge, alice, usdc):
    vault = hedged
    price_before = vault.convertToAssets(10**18)
    spot_before = hedge.spot_base()
    shares = vault.balanceOf(alice)
    preview = vault.previewRedeem(shares)
    before = usdc.balanceOf(alice)
    tx = vault.redeem(shares, alice, alice, sender=alice)
    assert usdc.balanceOf(alice) - before == tx.return_value >= preview
    (log,) = tx.events.filter(hedge.ExitUnwound)
    assert log.spot_sold > 0 and log.short_closed > 0
    assert hedge.spot_base() == pytest.approx(spot_before * 2 / 3, rel=2e-3)
    assert vault.convertToAssets(10**18) >= price_before - 1


def test_v3_vault__emergency_deleverage_below_critical(
    hedged, hedge, venue, v3_venue, perp, feeder, arb, stranger, rules
):
    vault = hedged
    perp.accrue_funding(sender=feeder)
    venue.price_feed.set_price(3_660 * E8, sender=feeder)  # +22 %: 3x short under 10 %
    arb(v3_venue)
    assert v3_venue.spot_pool.price_e8() == pytest.approx(3_660 * E8, rel=1e-3)
    assert perp.margin_ratio_bps(hedge) < rules.critical_margin_ratio_bps
    price_before = vault.convertToAssets(10**18)
    hedge.emergency_deleverage(sender=stranger)
    assert rules.min_margin_ratio_bps <= perp.margin_ratio_bps(hedge) <= rules.min_margin_ratio_bps + 400
    assert vault.convertToAssets(10**18) > price_before * 99 // 100


def test_v3_vault__shutdown_then_unwind_parks_everything(
    hedged, hedge, perp, guardian, stranger, alice, bob, usdc
):
    vault = hedged
    nav = vault.totalAssets()
    vault.shutdown(sender=guardian)
    tx = hedge.unwind(MAX, sender=stranger)
    assert tx.return_value > 0 and not hedge.active()
    assert hedge.short_size() == hedge.spot_base() == 0 and perp.position(hedge).margin == 0
    assert vault.idle() == vault.totalAssets() == usdc.balanceOf(vault) > nav * 9_980 // 10_000
    for who in (alice, bob):
        vault.redeem(vault.balanceOf(who), who, who, sender=who)


def test_v3_vault__pool_pushed_off_the_oracle__the_slippage_rule_refuses(
    hedged, hedge, perp, keeper, alice, stranger, usdc, v3, deadline, chain
):
    """Someone buys the v3 pool 2 % above the oracle: the keeper's buy would cost more
    than 50 bps over the oracle, and an exit's sale is bounded by it too."""
    vault, adapter = hedged, v3.adapter
    faucet(usdc, stranger, 30_000_000 * USDC)
    usdc.approve(adapter, MAX, sender=stranger)
    adapter.swap(usdc, 30_000_000 * USDC, 0, stranger, sender=stranger)
    assert adapter.price_e8() > perp.index_price() * 10_150 // 10_000
    vault.deposit(100_000 * USDC, alice, sender=alice)  # idle to buy 10 WETH more with
    short, margin = hedge.short_size() + 10 * 10**18, perp.position(hedge).margin
    reverts(chain, hedge.rebalance, short, margin, 50, deadline, sender=keeper, reason="hedge: spot slippage")
    # a sale into it fills above the oracle: allowed, and the better price stays with the vault
    price_before = vault.convertToAssets(10**18)
    vault.redeem(vault.balanceOf(alice) // 10, alice, alice, sender=alice)
    assert vault.convertToAssets(10**18) >= price_before


def test_v3_vault__pool_pushed_below_the_oracle__exits_refuse_to_sell(
    hedged, alice, stranger, weth, v3, perp, chain
):
    vault, adapter = hedged, v3.adapter
    faucet(weth, stranger, 10_000 * 10**18)
    weth.approve(adapter, MAX, sender=stranger)
    adapter.swap(weth, 10_000 * 10**18, 0, stranger, sender=stranger)
    assert adapter.price_e8() < perp.index_price() * 9_900 // 10_000
    reverts(
        chain,
        vault.redeem,
        vault.balanceOf(alice),
        alice,
        alice,
        sender=alice,
        reason="pool: output below minimum",
    )


@pytest.fixture(scope="module")
def narrow_vault(project, deployer, venue, params, gov, keeper, guardian, stranger, usdc, bob):
    """A vault on a second v3 pool whose only liquidity is +/- 1 % around the oracle."""
    narrow = deploy_v3_on(project, deployer, venue, params, width_bps=100)
    narrow_venue = dataclasses.replace(venue, spot_pool=narrow.adapter)
    v = vault_factory(project, deployer, narrow_venue, gov, keeper, guardian, stranger)()
    fund(usdc, v, bob, 5_000_000 * USDC)
    return v, narrow


def test_v3_vault__concentrated_range_left__clear_revert_and_nothing_lost(
    narrow_vault, project, perp, keeper, bob, stranger, usdc, weth, deadline, chain
):
    """The range's edge is 1 % away. Someone sells the pool to just inside it; the
    keeper's park would sell the spot leg past the edge: it reverts with the adapter's
    reason before a token moves, the vault's books and balances unchanged."""
    vault, narrow = narrow_vault
    hedge = hedge_of(project, vault)
    vault.deposit(2_000_000 * USDC, bob, sender=bob)
    short, margin = hedge_targets(vault, perp, 2.0)
    hedge.rebalance(short, margin, 50, deadline, sender=keeper)  # inside the range: fine
    # push the pool to just inside its edge, so selling half the spot leg would leave it
    to_edge = input_to_edge(narrow, weth) * 10_005 // 10_000  # the fee comes off the input
    reverts(
        chain,
        narrow.adapter.get_amount_out,
        weth,
        to_edge * 11 // 10,
        sender=stranger,
        reason="pool: trade leaves the liquidity range",
    )
    faucet(weth, bob, to_edge)
    weth.approve(narrow.adapter, MAX, sender=bob)
    narrow.adapter.swap(weth, to_edge - hedge.spot_base() // 2, 0, bob, sender=bob)
    state = (
        vault.totalAssets(),
        hedge.spot_base(),
        weth.balanceOf(hedge),
        usdc.balanceOf(vault),
        perp.position(hedge),
    )
    reverts(
        chain,
        hedge.rebalance,
        0,
        0,
        50,
        deadline,
        sender=keeper,
        reason="pool: trade leaves the liquidity range",
    )
    assert (
        vault.totalAssets(),
        hedge.spot_base(),
        weth.balanceOf(hedge),
        usdc.balanceOf(vault),
        perp.position(hedge),
    ) == state


def test_v3_vault__keeper_reads_the_pool_in_its_two_round_trips_and_models_it(
    vault, hedge, v3_venue, v3, keeper, chain, usdc, weth
):
    """A keeper tick reads the adapter's virtual reserves in the same batch (2 round trips,
    nothing to do or not); on them the full-range model quotes what the pool fills."""
    addresses = Addresses(
        vault=vault.address, hedge=hedge.address, keeper=keeper.address, **v3_venue.addresses()
    )
    rpc = Rpc(chain.provider.uri, retries=0)
    static = read_static(rpc, addresses)
    snap = read_snapshot(rpc, addresses)
    assert rpc.round_trips == 3 and static.spot_fee_bps == 5  # read_static once, then 2 a tick
    assert (snap.reserve_base, snap.reserve_asset) == v3.adapter.get_reserves()
    model = UniswapV3FullRangeModel(snap.reserve_base, snap.reserve_asset, static.spot_fee_bps)
    for base_in, token, amount in ((False, usdc, 3_000_000 * USDC), (True, weth, 1_000 * 10**18)):
        pool_out = v3.adapter.get_amount_out(token, amount)
        assert abs(model.amount_out(base_in, amount) - pool_out) <= pool_out // 10**12


@pytest.fixture(scope="module")
def shallow_vault(project, deployer, venue, gov, keeper, guardian, stranger, usdc, weth, bob):
    """A vault on a third v3 pool: 10 WETH and 30,000 USDC, all of it within +/- 0.3 % of
    the oracle, so the whole spot leg of a 60,000 USDC vault cannot be sold in one trade."""
    faucet(weth, deployer, 10 * WETH)
    faucet(usdc, deployer, 30_000 * USDC)
    price = int(venue.price_feed.latestAnswer())
    ticks = range_ticks(price, 30, 500, 18, 6, int(weth.address, 16) < int(usdc.address, 16))
    shallow = deploy_uniswap_v3(project, deployer, weth, usdc, price, 10 * WETH, 30_000 * USDC, ticks=ticks)
    shallow_venue = dataclasses.replace(venue, spot_pool=shallow.adapter)
    v = vault_factory(project, deployer, shallow_venue, gov, keeper, guardian, stranger)()
    fund(usdc, v, bob, 1_000_000 * USDC)
    return v, shallow_venue


def test_v3_vault__shutdown_on_a_shallow_range__unwinds_in_steps_the_range_takes(
    shallow_vault, project, perp, keeper, guardian, bob, stranger, usdc, chain
):
    """The keeper builds the hedge in steps with the pool arbitraged between them; after a
    shutdown one unwind of everything would leave the range (clear revert), and the
    operator tool's `--step auto` sizes steps the range can take (a quote that reverts is a
    step that does not fit) until the hedge is flat."""
    vault, shallow_venue = shallow_vault
    hedge = hedge_of(project, vault)
    vault.deposit(60_000 * USDC, bob, sender=bob)

    def arb(v):
        arb_to_oracle(v, stranger)

    build_hedge(vault, hedge, perp, keeper, chain, arb, shallow_venue, steps=5)
    vault.shutdown(sender=guardian)
    reverts(chain, hedge.unwind, MAX, sender=stranger, reason="pool: trade leaves the liquidity range")
    dep = SimpleNamespace(
        hedge=hedge, spot_pool=shallow_venue.spot_pool, price_feed=shallow_venue.price_feed,
        asset=usdc, base=shallow_venue.base, perp_market=perp,
    )  # fmt: skip
    steps = 0
    while hedge.active() and steps < 12:
        step = auto_unwind_step(dep)
        assert 0 < step < MAX
        hedge.unwind(step, sender=stranger)
        arb(shallow_venue)
        steps += 1
    assert not hedge.active() and 1 < steps < 12
    assert vault.idle() == vault.totalAssets() == usdc.balanceOf(vault) > 60_000 * USDC * 99 // 100
