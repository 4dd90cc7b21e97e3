import pytest

from keeper.bot.runtime import vault_state
from keeper.chain.reader import Addresses, ChainReadError, read_snapshot, read_static
from keeper.core.rules import VaultRules
from keeper.model.vault import BasisModel
from keeper.net.rpc import Rpc, RpcError, RpcUnavailable


def test_read_static__rules_from_both_contracts_decimals_fees_and_role(rpc, addresses, stranger):
    info = read_static(rpc, addresses)
    assert info.rules == {k: v for k, v in vars(VaultRules()).items()}
    assert VaultRules(**info.rules) == VaultRules()
    assert (info.asset_decimals, info.base_decimals) == (6, 18)
    assert (info.taker_fee_ppm, info.initial_margin_bps, info.maintenance_margin_bps) == (450, 500, 250)
    assert info.spot_fee_bps == 5
    assert info.is_keeper and rpc.round_trips == 1
    other = Addresses(**{**vars(addresses), "keeper": stranger.address})
    assert not read_static(rpc, other).is_keeper


def test_read_snapshot__two_round_trips_same_values_as_the_chain(
    rpc, addresses, vault, hedge, venue, alice, keeper, chain
):
    vault.deposit(300_000 * 10**6, alice, sender=alice)
    price = venue.perp_market.index_price()
    nav = vault.totalAssets()
    size = nav * 2 // 3 * 9_980 // 10_000 * 10**18 * 10**8 // (price * 10**6)
    hedge.rebalance(size, nav - nav * 2 // 3, 50, chain.pending_timestamp + 600, sender=keeper)

    snap = read_snapshot(rpc, addresses)
    assert rpc.round_trips == 2
    head = chain.blocks.head
    assert (snap.block_number, snap.block_timestamp) == (head.number, head.timestamp)
    assert snap.total_assets == vault.totalAssets() and snap.total_supply == vault.totalSupply()
    assert (snap.idle, snap.spot_base, snap.short_size, snap.booked_short) == (
        vault.idle(),
        hedge.spot_base(),
        hedge.short_size(),
        hedge.booked_short(),
    )
    assert snap.short_size == size
    assert (snap.budget_window_start, snap.budget_nav, snap.budget_spent) == (
        hedge.budget_window_start(),
        hedge.budget_nav(),
        hedge.budget_spent(),
    )
    assert snap.position["size"] == -size and snap.position["equity"] == venue.perp_market.equity(hedge)
    assert snap.position["margin_ratio_bps"] == venue.perp_market.margin_ratio_bps(hedge)
    assert snap.oracle_answer == venue.price_feed.latestAnswer()
    _, answer, _, updated_at, _ = venue.asset_feed.latestRoundData()
    assert (snap.asset_answer, snap.asset_updated_at) == (answer, updated_at) and answer == 10**8
    assert snap.perp_depth == venue.perp_market.depth()
    assert (snap.reserve_base, snap.reserve_asset) == venue.spot_pool.get_reserves()
    assert snap.last_rebalance_time == head.timestamp and not snap.paused and not snap.is_shutdown
    assert snap.nonce_latest == snap.nonce_pending == keeper.nonce and not snap.tx_in_flight


def test_read_snapshot__after_a_liquidation__venue_short_below_the_books(
    rpc, addresses, vault, hedge, venue, alice, keeper, chain, deployer, stranger
):
    """The venue is the truth: a liquidation shows at once as short_size 0 while
    booked_short keeps the old size until the hedge is touched (`sync`)."""
    vault.deposit(300_000 * 10**6, alice, sender=alice)
    price = venue.perp_market.index_price()
    nav = vault.totalAssets()
    size = nav * 2 // 3 * 9_980 // 10_000 * 10**18 * 10**8 // (price * 10**6)
    hedge.rebalance(size, nav - nav * 2 // 3, 50, chain.pending_timestamp + 600, sender=keeper)
    venue.price_feed.set_price(price * 16 // 10, sender=deployer)  # +60 %: past the short's bankruptcy
    venue.perp_market.liquidate(hedge, sender=stranger)

    snap = read_snapshot(rpc, addresses)
    assert snap.short_size == 0 and snap.booked_short == size
    hedge.sync(sender=stranger)
    assert read_snapshot(rpc, addresses).booked_short == 0


def test_read_snapshot__at_a_premium__the_state_marks_as_the_market_and_the_model_agrees(
    rpc, addresses, vault, hedge, venue, alice, keeper, chain, operator
):
    """The keeper reads the perp's premium in the same batch: its state's mark is the
    market's, and the model it plans with values the short at that mark, to the wei."""
    vault.deposit(300_000 * 10**6, alice, sender=alice)
    price = venue.perp_market.index_price()
    nav = vault.totalAssets()
    size = nav * 2 // 3 * 9_980 // 10_000 * 10**18 * 10**8 // (price * 10**6)
    hedge.rebalance(size, nav - nav * 2 // 3, 50, chain.pending_timestamp + 600, sender=keeper)
    venue.perp_market.set_premium(10**16, sender=operator)  # the perp 1 % rich

    snap = read_snapshot(rpc, addresses)
    assert snap.premium == 10**16 and rpc.round_trips == 2
    state = vault_state(read_static(rpc, addresses), snap)
    assert state.perp_mark_price_e8 == venue.perp_market.mark_price() == price * 101 // 100
    assert state.basis_bps > 90  # the mark over the spot pool, which followed the oracle
    assert state.perp_equity == venue.perp_market.equity(hedge)
    model = BasisModel.from_state(state)
    assert model.state().perp_equity == state.perp_equity
    assert model.nav() == hedge.value(price) + vault.idle()


def test_read_snapshot__wrong_address__names_the_value(rpc, addresses, stranger):
    bad = Addresses(**{**vars(addresses), "vault": stranger.address})
    with pytest.raises(ChainReadError, match="totalAssets: empty answer"):
        read_snapshot(rpc, bad)


def test_rpc__node_errors_are_not_retried(rpc):
    with pytest.raises(RpcError, match="eth_nonexistentMethod"):
        rpc.call("eth_nonexistentMethod")
    assert rpc.round_trips == 1


def test_rpc__unreachable_node__retries_then_says_so_without_the_url_path():
    naps = []
    rpc = Rpc("http://127.0.0.1:9/secret-api-key", timeout=1, retries=2, sleep=naps.append)
    with pytest.raises(RpcUnavailable, match=r"node at http://127\.0\.0\.1:9 unreachable") as err:
        rpc.call("eth_blockNumber")
    assert "secret" not in str(err.value)
    assert rpc.round_trips == 3 and naps == [0.5, 1.0]
