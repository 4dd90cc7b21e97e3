"""ERC-4626 properties (after a16z/erc4626-tests) under hypothesis, on a vault that is idle
(exits paid from idle at NAV) and on one hedged at 2x with accrued funding and fees (every
exit unwinds its pro-rata slice through the hedge), so NAV is not just a balance. Each
example starts from the same snapshot and checks one property with random amounts."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.exceptions import ContractLogicError

from keeper.ops.contracts import hedge_of
from tests.units import E8, SIZE, SOAK, USDC

SETTINGS = settings(
    max_examples=12 * SOAK,  # each property runs idle and hedged; `make soak`: more
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
amounts = st.one_of(st.integers(1, 10**6), st.integers(1, 200_000 * USDC))
# Round trips redeem everything, dust included (the hedge's rounding slack applies only
# below the venue's initial margin, so a dust slice pays at least its preview).
DUST = 0


@pytest.fixture(scope="module", params=["idle", "hedged"])
def prop_vault(request, project, create_vault, gov, keeper, perp, operator, usdc, alice, bob, chain):
    vault = create_vault()
    vault.set_fees(100, 1_000, sender=gov)
    users = [alice, bob]
    for u in users:
        for _ in range(2):
            usdc.mint(u, 1_000_000 * USDC, sender=u)
        usdc.approve(vault, 2**256 - 1, sender=u)
    vault.deposit(300_000 * USDC, users[0], sender=users[0])
    vault.deposit(500_000 * USDC, users[1], sender=users[1])
    hedge = hedge_of(project, vault)
    if request.param == "hedged":
        nav = vault.totalAssets()
        spot = nav * 2 // 3
        size = spot * 9_980 // 10_000 * SIZE * E8 // (perp.index_price() * USDC)
        hedge.rebalance(size, nav - spot, 50, chain.pending_timestamp + 3_600, sender=keeper)
        perp.set_funding_rate(27_777_777_777, sender=operator)
    chain.mine(deltatime=3_600)
    assert hedge.active() == (request.param == "hedged")
    return vault, users


def run_isolated(chain, fn):
    """Runs one example from the module's snapshot with the clock stopped: every block in it
    has the head's timestamp, so previews and calls, and both legs of a round trip, price at
    the same second (a second of funding would otherwise be real yield, not a rounding leak)."""
    snapshot = chain.snapshot()  # not chain.isolate(): it swallows assertion errors
    chain.provider.make_request("anvil_setBlockTimestampInterval", [0])
    try:
        chain.pending_timestamp = chain.blocks.head.timestamp
        fn()
    finally:
        chain.provider.make_request("anvil_removeBlockTimestampInterval", [])
        chain.restore(snapshot)


def reverts(chain, method, args, sender) -> bool:
    tx = {"from": sender.address, "to": method.contract.address, "data": method.encode_input(*args)}
    try:
        chain.provider.web3.eth.call(tx, "pending")
    except ContractLogicError:
        return True
    return False


@SETTINGS
@given(assets=amounts)
def test_deposit__preview_and_round_trip(chain, project, prop_vault, usdc, assets):
    vault, (a, _) = prop_vault
    hedged = hedge_of(project, vault).active()

    def check():
        before = usdc.balanceOf(a)
        preview = vault.previewDeposit(assets)
        if preview == 0:
            assert reverts(chain, vault.deposit, (assets, a.address), a)
            return
        shares = vault.deposit(assets, a, sender=a).return_value
        assert shares == preview >= vault.convertToShares(assets) - 1
        # dust worth 0 assets cannot be redeemed (reverts); see DUST while hedged
        if vault.previewRedeem(shares) > (DUST if hedged else 0):
            vault.redeem(shares, a, a, sender=a)  # round trip never profits
        assert usdc.balanceOf(a) <= before

    run_isolated(chain, check)


@SETTINGS
@given(shares=st.integers(1, 10**20))
def test_mint__preview_and_round_trip(chain, project, prop_vault, usdc, shares):
    vault, (a, _) = prop_vault
    hedged = hedge_of(project, vault).active()

    def check():
        before, second = usdc.balanceOf(a), chain.blocks.head.timestamp
        preview = vault.previewMint(shares)
        if preview > before:  # more than the caller holds: refused, nothing taken
            assert reverts(chain, vault.mint, (shares, a.address), a)
            return
        assets = vault.mint(shares, a, sender=a).return_value
        assert assets == preview >= vault.convertToAssets(shares)
        if vault.previewRedeem(shares) > (DUST if hedged else 0):
            vault.redeem(shares, a, a, sender=a)
        assert usdc.balanceOf(a) <= before
        assert chain.blocks.head.timestamp == second  # the clock really stood still

    run_isolated(chain, check)


@SETTINGS
@given(fraction=st.integers(1, 10_000))
def test_redeem__at_least_preview_and_by_spender_needs_allowance(chain, prop_vault, usdc, fraction):
    vault, (a, b) = prop_vault

    def check():
        shares = vault.balanceOf(a) * fraction // 10_000
        if shares == 0:
            return
        preview = vault.previewRedeem(shares)
        assert preview <= vault.convertToAssets(shares)
        assert reverts(chain, vault.redeem, (shares, b.address, a.address), b)
        vault.approve(b, shares, sender=a)
        before = usdc.balanceOf(b)
        assets = vault.redeem(shares, b, a, sender=b).return_value
        assert assets >= preview
        assert usdc.balanceOf(b) - before == assets
        assert vault.allowance(a, b) == 0

    run_isolated(chain, check)


@SETTINGS
@given(fraction=st.integers(1, 10_000))
def test_withdraw__at_most_preview_and_max_is_withdrawable(chain, prop_vault, usdc, fraction):
    vault, (a, _) = prop_vault

    def check():
        assets = vault.maxWithdraw(a) * fraction // 10_000
        if assets == 0:
            return
        preview = vault.previewWithdraw(assets)
        assert preview >= vault.convertToShares(assets)
        before = usdc.balanceOf(a)
        shares = vault.withdraw(assets, a, a, sender=a).return_value
        assert shares <= preview
        assert usdc.balanceOf(a) - before == assets

    run_isolated(chain, check)


@SETTINGS
@given(cap_units=st.integers(800_000, 2_000_000))
def test_max_deposit__is_exact(chain, prop_vault, gov, cap_units):
    vault, (_, b) = prop_vault

    def check():
        vault.set_deposit_cap(cap_units * USDC, sender=gov)
        chain.pending_timestamp = chain.blocks.head.timestamp
        room = vault.maxDeposit(b)
        assert vault.maxMint(b) == vault.convertToShares(room)
        if room:
            assert reverts(chain, vault.deposit, (room + 1, b.address), b)
            vault.deposit(room, b, sender=b)
        assert vault.maxDeposit(b) == 0

    run_isolated(chain, check)
