"""BasisVault + BasisHedge under random histories, side by side with the one Python model.

A hypothesis RuleBasedStateMachine drives the real contracts on anvil and
`keeper.model.vault.BasisModel` with the same calls at the same block timestamps. The
model is built from the chain once per example (the freshly deployed vault and the
venue's state), then never reads the chain again: every call is run on both, a revert
must come with the same reason from both, and a success with the same return value.

Rules: deposit, mint, withdraw, redeem, share transfers, keeper rebalances to random
leverage (parking included; the keeper loss budget and the NAV-loss rule refuse some),
oracle moves (the pool arbitraged back, as the market feeder does), a large price push
after which a liquidator liquidates the hedge when the venue allows it, funding changes,
the perp's premium over the index (its mark: the short's value and its fills' bound),
time warps, the asset's own feed off its peg, `sync`, emergency deleverage attempts,
shutdown and `unwind` steps. Invariants after every step: every book of the vault, the
hedge, the perp account and the spot pool, the NAV, supply, balances and token balances
equal the model's to the wei; previews bound execution; no exit lowers the stayers'
share price beyond rounding; at the end everyone can exit after a shutdown.
"""

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3.exceptions import ContractLogicError

from keeper.chain.abi import Call, position_call, reserves_call
from keeper.core.rules import VaultRules
from keeper.model.markets import ModelRevert, SpotPoolModel, arb_trade
from keeper.model.vault import HEDGE, BasisModel
from keeper.ops.contracts import faucet, hedge_of
from tests.fixtures.chain import BatchReader
from tests.fixtures.perp_harness import perp_model_of
from tests.units import E8, SIZE, SOAK, USDC

USERS = ("fish", "whale", "shark")
PPS_PROBE = 10**18  # shares whose value we watch (1e6 whole shares)
DUST = USDC  # exits worth less may be refused (a slice's margin share below the slack)
# what may refuse an exit worth more: the oracles and the peg, nothing about its size
EXIT_GATES = ("vault: asset de-pegged", "vault: stale asset oracle", "vault: stale oracle")


def _revert_reason(chain, method, args, sender) -> str | None:
    tx = {"from": sender.address, "to": method.contract.address, "data": method.encode_input(*args)}
    try:
        chain.provider.web3.eth.call(tx, "pending")
    except ContractLogicError as err:
        return err.message.removeprefix("execution reverted: ")
    return None


def _view(method, *args):
    """A view's answer, or None where it reverts (previewWithdraw with nothing to withdraw)."""
    try:
        return method(*args)
    except ContractLogicError:
        return None


@pytest.fixture(scope="module")
def stateful(
    chain,
    project,
    venue,
    create_vault,
    gov,
    keeper,
    guardian,
    stranger,
    feeder,
    operator,
    liquidator,
    alice,
    bob,
    usdc,
):
    vault = create_vault()
    vault.set_fees(100, 1_000, sender=gov)
    users = {"fish": alice, "whale": bob, "shark": operator}
    for u in users.values():
        for _ in range(3):
            usdc.mint(u, 1_000_000 * USDC, sender=u)
        usdc.approve(vault, 2**256 - 1, sender=u)
    # the arbitrageur holds enough of both tokens for the oracle's range, approved once,
    # so each arbitrage is one swap
    arbitrageur = stranger
    faucet(venue.asset, arbitrageur, 100_000_000 * USDC)
    faucet(venue.base, arbitrageur, 40_000 * SIZE)
    for token in (venue.asset, venue.base):
        token.approve(venue.spot_pool, 2**256 - 1, sender=arbitrageur)
    return dict(
        chain=chain, venue=venue, vault=vault, hedge=hedge_of(project, vault), users=users, keeper=keeper,
        guardian=guardian, treasury=stranger, feeder=feeder, operator=operator, arbitrageur=stranger,
        liquidator=liquidator,
    )  # fmt: skip


def leverage_split(m: BasisModel, leverage: float) -> tuple[int, int]:
    """(short size, margin) that take the model's vault to `leverage` x: the spot leg
    NAV x L / (L + 1), a short of it less 0.5 % for the buy's fees and impact, the rest as
    margin (0 parks)."""
    nav = m.nav()
    spot_value = int(nav * leverage / (leverage + 1))
    size = spot_value * 9_950 // 10_000 * SIZE * E8 // (m.price * USDC)
    return size, nav - spot_value if size else 0


def _model_from_chain(stateful, now: int) -> BasisModel:
    """The model of the freshly deployed vault and the venue as they are (read once)."""
    venue, vault, hedge = stateful["venue"], stateful["vault"], stateful["hedge"]
    perp, pool, feed = venue.perp_market, venue.spot_pool, venue.price_feed
    perp_m = perp_model_of(perp, feed, lambda: now)
    reserve_base, reserve_asset = pool.get_reserves()
    m = BasisModel(
        perp_m, SpotPoolModel(reserve_base, reserve_asset, pool.fee_bps()), VaultRules(), USDC, SIZE
    )
    _, asset_answer, _, asset_updated_at, _ = venue.asset_feed.latestRoundData()
    m.asset_price_e8, m.asset_updated_at = asset_answer, asset_updated_at
    m.fee_recipient = stateful["treasury"].address
    m.management_fee_bps, m.performance_fee_bps = vault.management_fee_bps(), vault.performance_fee_bps()
    m.last_fee_time, m.high_water_mark = vault.last_fee_time(), vault.high_water_mark()
    m.deposit_cap = vault.deposit_cap()
    m.last_rebalance_time = hedge.last_rebalance_time()
    return m


def run_machine(stateful):
    chain, venue, vault, hedge = stateful["chain"], stateful["venue"], stateful["vault"], stateful["hedge"]
    perp, feed, asset_feed = venue.perp_market, venue.price_feed, venue.asset_feed
    users = stateful["users"]
    provider = chain.provider
    v, h = vault.address, hedge.address
    reader = BatchReader(chain)

    class VaultMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.snapshot = chain.snapshot()
            self.ts = chain.blocks.head.timestamp
            self.model = _model_from_chain(stateful, self.ts)

        def teardown(self):
            try:
                self.pin()
                asset_feed.set_price(E8, sender=stateful["feeder"])  # back on its peg
                if not self.model.is_shutdown:
                    vault.shutdown(sender=stateful["guardian"])
                for _ in range(8):
                    if not hedge.active():
                        break
                    hedge.unwind(10**30, sender=stateful["liquidator"])
                for u in users.values():
                    # nothing is stuck: every balance worth at least a wei comes out
                    if vault.previewRedeem(vault.balanceOf(u)):
                        vault.redeem(vault.balanceOf(u), u, u, sender=u)
                    assert vault.convertToAssets(vault.balanceOf(u)) == 0
            finally:
                chain.restore(self.snapshot)

        # ---------------------------------------------------------------- helpers

        def pin(self) -> None:
            """The next transaction lands at the head's timestamp (`self.ts`, kept since
            the last unpinned block); the model is there too."""
            provider.make_request("evm_setNextBlockTimestamp", [self.ts])
            self.model.perp.now = self.ts

        def arb(self) -> None:
            """An arbitrageur trades the pool back to the oracle (one swap, both sides)."""
            m = self.model
            pool_m = m.pool
            base_in, amount = arb_trade(
                pool_m.reserve_base, pool_m.reserve_asset, m.price, SIZE, USDC, pool_m.fee_bps
            )
            if amount == 0 or pool_m.amount_out(base_in, amount) == 0:
                return
            token = venue.base if base_in else venue.asset
            self.pin()
            venue.spot_pool.swap(token, amount, 0, stateful["arbitrageur"], sender=stateful["arbitrageur"])
            pool_m.swap(base_in, amount)

        def both(self, call, method, args, sender, allowed=None):
            """`call(model)` on a copy of the model and `method(*args)` on chain: the same
            revert reason, or both go through (the model kept) with the same return."""
            self.pin()
            trial = self.model.copy()
            try:
                expected = call(trial)
                model_reason = None
            except ModelRevert as err:
                expected, model_reason = None, str(err)
            chain_reason = _revert_reason(chain, method, args, sender)
            assert model_reason == chain_reason, (model_reason, chain_reason)
            if chain_reason is not None:
                if allowed is not None:
                    assert chain_reason in allowed, chain_reason
                return False, None
            got = method(*args, sender=sender).return_value
            self.model = trial
            if isinstance(got, int) and not isinstance(got, bool):
                assert got == expected, (got, expected)
            return True, got

        def pps(self) -> int:
            return vault.convertToAssets(PPS_PROBE)

        def push_price(self, price, arbitrage=True):
            self.pin()
            perp.accrue_funding(sender=stateful["feeder"])
            self.pin()
            feed.set_price(price, sender=stateful["feeder"])
            self.pin()
            asset_feed.set_price(self.model.asset_price_e8, sender=stateful["feeder"])
            self.model.push_price(price)
            self.model.push_asset_price(self.model.asset_price_e8)
            if arbitrage:
                self.arb()

        # ---------------------------------------------------------------- entries, exits

        @initialize(
            fish=st.integers(0, 300_000),
            whale=st.integers(1, 2_000_000),
            leverage=st.sampled_from((0.0, 2.0, 3.0, 3.0)),
        )
        def start(self, fish, whale, leverage):
            """Most histories start from a funded vault, often hedged."""
            if fish:
                self.deposit("fish", fish * USDC)
            self.deposit("whale", whale * USDC)
            if leverage:
                self.rebalance(leverage, 50)

        @rule(who=st.sampled_from(USERS), amount=st.integers(1, 300_000 * USDC))
        def deposit(self, who, amount):
            u = users[who]
            pps = self.pps()
            ok, _ = self.both(lambda m: m.deposit(amount, u.address), vault.deposit, (amount, u), u)
            if ok:
                assert self.pps() >= pps - 1

        @rule(who=st.sampled_from(USERS), shares=st.integers(1, 10**17))
        def mint(self, who, shares):
            u = users[who]
            self.both(lambda m: m.mint(shares, u.address), vault.mint, (shares, u), u)

        @rule(who=st.sampled_from(USERS), fraction=st.integers(1, 10_000))
        def redeem(self, who, fraction):
            u = users[who]
            shares = self.model.balances.get(u.address, 0) * fraction // 10_000
            preview, pps = _view(vault.previewRedeem, shares), self.pps()
            allowed = EXIT_GATES if (preview or 0) >= DUST else None
            ok, paid = self.both(
                lambda m: m.redeem(shares, u.address), vault.redeem, (shares, u, u), u, allowed
            )
            if ok and preview is not None:
                # previews take EXIT_ROUNDING off for the wei every slice loses to rounding
                assert paid >= preview, (paid, preview)
                assert self.pps() >= pps - 1, "an exit lowered the stayers' share price"

        @rule(who=st.sampled_from(USERS), fraction=st.integers(1, 10_000))
        def withdraw(self, who, fraction):
            u = users[who]
            assets = vault.maxWithdraw(u) * fraction // 10_000
            preview, pps = _view(vault.previewWithdraw, assets), self.pps()
            allowed = EXIT_GATES if assets >= DUST else None
            ok, burned = self.both(
                lambda m: m.withdraw(assets, u.address), vault.withdraw, (assets, u, u), u, allowed
            )
            if ok and preview is not None:
                assert burned <= preview
                assert self.pps() >= pps - 1, "an exit lowered the stayers' share price"

        @rule(src=st.sampled_from(USERS), dst=st.sampled_from(USERS), fraction=st.integers(0, 10_000))
        def transfer(self, src, dst, fraction):
            amount = self.model.balances.get(users[src].address, 0) * fraction // 10_000
            self.pin()
            vault.transfer(users[dst], amount, sender=users[src])
            self.model.transfer(users[src].address, users[dst].address, amount)

        # ---------------------------------------------------------------- the hedge

        @rule(leverage=st.sampled_from((0.0, 1.0, 2.0, 3.0)), slippage=st.sampled_from((50, 20)))
        def rebalance(self, leverage, slippage):
            size, margin = leverage_split(self.model, leverage)
            deadline = self.model.now + 3_600
            self.both(
                lambda mm: mm.rebalance(size, margin, slippage),
                hedge.rebalance,
                (size, margin, slippage, deadline),
                stateful["keeper"],
            )

        @rule(caller=st.sampled_from(USERS))
        def emergency(self, caller):
            self.both(lambda m: m.emergency_deleverage(), hedge.emergency_deleverage, (), users[caller])

        @rule()
        def sync(self):
            self.both(lambda m: m.sync(), hedge.sync, (), stateful["liquidator"])

        @rule(go=st.integers(0, 3))
        def shutdown(self, go):
            if go == 0:  # a quarter as often as the other rules
                self.both(lambda m: m.shutdown(), vault.shutdown, (), stateful["guardian"])

        @precondition(lambda self: self.model.is_shutdown)
        @rule(fraction=st.integers(1, 12_000))
        def unwind(self, fraction):
            m = self.model
            whole = max(m.short_size, m.spot_base * SIZE // m.base_unit, 1)
            size = max(whole * fraction // 10_000, 1)
            self.both(lambda mm: mm.unwind(size), hedge.unwind, (size,), stateful["liquidator"])

        # ---------------------------------------------------------------- the market

        @rule(move_bps=st.integers(-800, 800))
        def price_move(self, move_bps):
            price = self.model.price * (10_000 + move_bps) // 10_000
            self.push_price(min(max(price, 2_400 * E8), 3_600 * E8))

        @rule(jump_bps=st.integers(2_500, 6_000))
        def liquidation(self, jump_bps):
            """The oracle jumps (too fast for the pool to follow); a liquidator takes the
            hedge's short if the venue allows; the price comes back."""
            price = self.model.price
            self.push_price(price * (10_000 + jump_bps) // 10_000, arbitrage=False)
            liquidatable = self.model.liquidatable()
            assert perp.is_liquidatable(h) == liquidatable
            if liquidatable:
                self.pin()
                perp.liquidate(h, sender=stateful["liquidator"])
                self.model.liquidate()
                assert hedge.booked_short() > hedge.short_size() == 0
            self.push_price(price, arbitrage=False)

        @rule(rate=st.integers(-55_555_555_555, 55_555_555_555))  # +-0.02 %/h
        def funding(self, rate):
            self.pin()
            perp.set_funding_rate(rate, sender=stateful["operator"])
            self.model.set_funding_rate(rate)

        @rule(premium=st.sampled_from((0, 0, 10**16, -(10**16), 3 * 10**15, -5 * 10**15, 5 * 10**16)))
        def premium(self, premium):
            """The perp's mark moves off the index (+-1 %, +0.3 %, -0.5 %, +5 %)."""
            self.pin()
            perp.set_premium(premium, sender=stateful["operator"])
            self.model.set_premium(premium)

        @rule(seconds=st.sampled_from((1, 600, 3_600, 7_200, 86_400)))
        def warp(self, seconds):
            self.ts += seconds
            self.pin()
            chain.mine()
            self.push_price(self.model.price)  # the feeder keeps the oracles fresh

        @rule(off_bps=st.sampled_from((0, 0, 50, -99, 101, -150)))
        def asset_price(self, off_bps):
            """The asset's own USD feed moves (beyond 100 bps: entries and exits stop)."""
            price = E8 * (10_000 + off_bps) // 10_000
            self.pin()
            asset_feed.set_price(price, sender=stateful["feeder"])
            self.model.push_asset_price(price)

        # ---------------------------------------------------------------- invariants

        def read(self, *calls):
            return reader.read(calls)[1]

        @invariant()
        def model_agrees_with_chain(self):
            m = self.model
            holders = [*users.values(), stateful["treasury"]]
            asset, base = venue.asset.address, venue.base.address
            head, values = reader.read(
                [
                    *(Call("balanceOf", v, "balanceOf(address)", (x.address,)) for x in holders),
                    Call("totalSupply", v, "totalSupply()"),
                    Call("idle", v, "idle()"),
                    Call("last_fee_time", v, "last_fee_time()"),
                    Call("high_water_mark", v, "high_water_mark()"),
                    Call("totalAssets", v, "totalAssets()"),
                    Call("is_shutdown", v, "is_shutdown()", (), ("bool",)),
                    Call("spot_base", h, "spot_base()"),
                    Call("booked_short", h, "booked_short()"),
                    Call("booked_equity", h, "booked_equity()", (), ("int256",)),
                    Call("short_size", h, "short_size()"),
                    Call("active", h, "active()", (), ("bool",)),
                    Call("last_rebalance_time", h, "last_rebalance_time()"),
                    Call("budget_window_start", h, "budget_window_start()"),
                    Call("budget_nav", h, "budget_nav()"),
                    Call("budget_spent", h, "budget_spent()"),
                    position_call(perp.address, h),
                    reserves_call(venue.spot_pool.address),
                    Call("vault_asset", asset, "balanceOf(address)", (v,)),
                    Call("hedge_asset", asset, "balanceOf(address)", (h,)),
                    Call("hedge_base", base, "balanceOf(address)", (h,)),
                ]
            )
            m.perp.now = head  # views are read at the head block: time has moved on
            balances, books = values[: len(holders)], values[len(holders) :]
            assert balances == [m.balances.get(x.address, 0) for x in holders]
            (supply, idle, fee_time, hwm, net, shut, spot, booked, booked_equity, short, active) = books[:11]
            (last_rebalance, window, budget_nav, spent, position, reserves) = books[11:17]
            vault_asset, hedge_asset, hedge_base = books[17:]
            assert supply == m.supply == sum(balances)
            assert (idle, fee_time, hwm, shut) == (m.idle, m.last_fee_time, m.high_water_mark, m.is_shutdown)
            assert net == m.total_assets()
            assert (spot, booked, booked_equity, short, active) == (
                m.spot_base,
                m.booked_short,
                m.booked_equity,
                m.short_size,
                m.active(),
            )
            assert (last_rebalance, window, budget_nav, spent) == (
                m.last_rebalance_time,
                m.budget_window_start,
                m.budget_nav,
                m.budget_spent,
            )
            acct = m.perp.account(HEDGE)
            assert (position[0], position[2]) == (acct.size, acct.margin)
            assert position[5] == m.perp.equity(HEDGE)
            assert tuple(reserves) == (m.pool.reserve_base, m.pool.reserve_asset)
            # the vault holds its idle, the hedge its spot and nothing idle between calls
            assert (vault_asset, hedge_asset, hedge_base) == (m.idle, 0, m.spot_base)

    run_state_machine_as_test(
        VaultMachine,
        settings=settings(
            max_examples=8 * SOAK,  # `make soak`: more
            stateful_step_count=12,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_vault_state_machine(stateful):
    # Every block 12 s after the last, whatever the wall clock does: funding and fees then
    # accrue the same on every machine, so the derandomized examples are the same ones.
    provider = stateful["chain"].provider
    provider.make_request("anvil_setBlockTimestampInterval", [12])
    try:
        run_machine(stateful)
    finally:
        provider.make_request("anvil_removeBlockTimestampInterval", [])
