import pytest

from keeper.chain.abi import emergency_calldata, rebalance_calldata, unwind_calldata
from keeper.chain.executor import ActionRejected, Executor, TxFailed
from keeper.chain.reader import read_snapshot
from keeper.chain.signer import SignerError, load_keystore_account


@pytest.fixture(scope="module", autouse=True)
def _deploy_first(vault):
    """The vault exists before the first test's snapshot (no isolation rebase)."""


def test_keystore__unlocks_from_apes_passphrase_variable(keystore, keeper):
    assert load_keystore_account("bot").address == keeper.address


def test_keystore__missing_locked_or_wrong(keystore, monkeypatch):
    with pytest.raises(SignerError, match=r"no keystore account 'nobody'.*known: bot"):
        load_keystore_account("nobody")
    monkeypatch.setenv("APE_ACCOUNTS_bot_PASSPHRASE", "wrong")
    with pytest.raises(SignerError, match="wrong passphrase in APE_ACCOUNTS_bot_PASSPHRASE"):
        load_keystore_account("bot")
    monkeypatch.delenv("APE_ACCOUNTS_bot_PASSPHRASE")
    with pytest.raises(SignerError, match="locked: export BASIS_KEEPER_PASSPHRASE"):
        load_keystore_account("bot")


@pytest.fixture
def executor(rpc, keystore, chain, hedge):
    return Executor(
        rpc,
        load_keystore_account("bot"),
        chain.chain_id,
        hedge.address,
        receipt_timeout=0.5,
        poll_interval=0.05,
    )


def targets(vault, venue, leverage=2.0):
    nav, price = vault.totalAssets(), venue.perp_market.index_price()
    spot = int(nav * leverage / (leverage + 1))
    return spot * 9_980 // 10_000 * 10**18 * 10**8 // (price * 10**6), nav - spot


def test_send__rebalance_lands_on_the_hedge_and_reports(executor, vault, hedge, venue, alice, chain, keeper):
    vault.deposit(100_000 * 10**6, alice, sender=alice)
    short, margin = targets(vault, venue)
    nonce = keeper.nonce
    sent = executor.send("open", rebalance_calldata(short, margin, 50, chain.pending_timestamp + 600))
    assert hedge.short_size() == short and keeper.nonce == nonce + 1
    receipt = chain.provider.get_receipt(sent.tx_hash)
    assert receipt.gas_used == sent.gas_used and receipt.block_number == sent.block_number


def test_simulate__a_refused_call_reports_the_hedges_reason_and_sends_nothing(executor, vault, chain, keeper):
    nonce = keeper.nonce
    with pytest.raises(ActionRejected, match="hedge: deadline expired"):
        executor.send("late", rebalance_calldata(0, 0, 50, chain.blocks.head.timestamp - 1))
    with pytest.raises(ActionRejected, match="hedge: no position"):
        executor.simulate("emergency", emergency_calldata())
    with pytest.raises(ActionRejected, match="hedge: not shut down"):
        executor.simulate("unwind", unwind_calldata(10**18))
    assert keeper.nonce == nonce


def test_send__unwind_steps_after_shutdown(executor, vault, hedge, venue, alice, chain, deployer):
    vault.deposit(100_000 * 10**6, alice, sender=alice)
    short, margin = targets(vault, venue)
    executor.send("open", rebalance_calldata(short, margin, 50, chain.pending_timestamp + 600))
    vault.shutdown(sender=deployer)
    executor.send("unwind", unwind_calldata(short // 2))
    assert 0 < hedge.short_size() < short and hedge.active()
    executor.send("unwind", unwind_calldata(short))
    assert hedge.short_size() == 0 and not hedge.active()


def test_send__not_mined_in_time__left_in_flight_and_seen_by_the_next_read(
    executor, rpc, addresses, vault, alice, venue, chain
):
    vault.deposit(100_000 * 10**6, alice, sender=alice)
    short, margin = targets(vault, venue)
    chain.provider.make_request("evm_setAutomine", [False])
    try:
        with pytest.raises(TxFailed, match=r"not mined within 0\.5s"):
            executor.send("open", rebalance_calldata(short, margin, 50, chain.pending_timestamp + 600))
        assert read_snapshot(rpc, addresses).tx_in_flight  # the next tick waits instead of resending
        chain.provider.make_request("evm_mine", [])
    finally:
        chain.provider.make_request("evm_setAutomine", [True])
    assert not read_snapshot(rpc, addresses).tx_in_flight
    assert read_snapshot(rpc, addresses).short_size == short
