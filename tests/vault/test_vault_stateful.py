"""BasisVault under random histories: a hypothesis RuleBasedStateMachine.

Rules: deposit, mint, withdraw, redeem, share transfers, keeper rebalances to random
leverage (parking included), oracle moves (the pool arbitraged back, as the market feeder
does), funding changes, time warps, emergency deleverage attempts and shutdown.
A Python model (keeper/model/accounting.py) runs beside the chain: it predicts every entry's
and idle exit's result to the wei, accrues the fees itself, and takes the books from the
chain only after the venue traded (rebalance, unwinding exit, emergency, shutdown).
Invariants after every step: the model agrees with the chain (balances, supply, fees,
high-water mark, books, NAV); supply = sum of balances; NAV = its components net of
fees; the vault holds what its books say; the collateral rules hold after every keeper
step; previews bound execution; no exit lowers the remaining holders' share price beyond
rounding; and at the end everyone can exit after a shutdown.
"""

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3.exceptions import ContractLogicError

from keeper.chain import POSITION_TYPES, Call
from keeper.model.accounting import AccountingModel
from keeper.venue import arb_to_oracle
from tests.conftest import E8, SIZE, USDC
from tests.fixtures.chain import BatchReader

USERS = ("fish", "whale", "shark")
PPS_PROBE = 10**18  # shares whose value we watch (1e6 whole shares)
DUST = USDC  # below one asset unit, rounding alone can exceed the vault's cost bounds


def _expect_revert(chain, method, args, sender) -> str:
    tx = {"from": sender.address, "to": method.contract.address, "data": method.encode_input(*args)}
    try:
        chain.provider.web3.eth.call(tx, "pending")
    except ContractLogicError as err:
        return err.message.removeprefix("execution reverted: ")
    return ""


@pytest.fixture(scope="module")
def world(chain, venue, create_vault, gov, keeper, guardian, treasury, feeder, operator, accounts, usdc):
    vault = create_vault()
    vault.set_fees(100, 1_000, sender=gov)
    users = {"fish": accounts[3], "whale": accounts[4], "shark": accounts[2]}
    for u in users.values():
        for _ in range(3):
            usdc.mint(u, 1_000_000 * USDC, sender=u)
        usdc.approve(vault, 2**256 - 1, sender=u)
    return dict(
        chain=chain, venue=venue, vault=vault, users=users, keeper=keeper, guardian=guardian,
        treasury=treasury, feeder=feeder, operator=operator, arbitrageur=accounts[6],
    )  # fmt: skip


def run_machine(world):
    chain, venue, vault = world["chain"], world["venue"], world["vault"]
    perp, feed = venue.perp_market, venue.price_feed
    users = world["users"]
    v = vault.address
    reader = BatchReader(chain)

    class VaultMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.snapshot = chain.snapshot()
            self.shut = False
            self.model = AccountingModel(
                asset_unit=USDC,
                base_unit=10**18,
                last_fee_time=vault.last_fee_time(),
                high_water_mark=vault.high_water_mark(),
                fee_recipient=world["treasury"].address,
                management_fee_bps=vault.management_fee_bps(),
                performance_fee_bps=vault.performance_fee_bps(),
            )

        def teardown(self):
            try:
                if not self.shut:
                    vault.shutdown(sender=world["guardian"])
                for u in users.values():
                    # nothing is stuck: every balance worth at least a wei comes out
                    if vault.previewRedeem(vault.balanceOf(u)):
                        vault.redeem(vault.balanceOf(u), u, u, sender=u)
                    assert vault.convertToAssets(vault.balanceOf(u)) == 0
            finally:
                chain.restore(self.snapshot)

        # ---------------------------------------------------------------- helpers

        def pps(self) -> int:
            return vault.convertToAssets(PPS_PROBE)

        def same_block(self):
            chain.pending_timestamp = chain.blocks.head.timestamp

        def nav(self) -> int:
            """Gross NAV as the model values it, from the oracle and the perp's equity."""
            return self.model.gross_nav(feed.latestAnswer(), perp.equity(vault))

        def now(self) -> int:
            return chain.blocks.head.timestamp

        def sync_books(self):
            self.model.sync_books(
                vault.idle(), vault.spot_base(), vault.short_size(), vault.last_perp_equity()
            )

        def push_price(self, price):
            perp.accrue_funding(sender=world["feeder"])
            feed.set_price(price, sender=world["feeder"])
            arb_to_oracle(venue, world["arbitrageur"])

        # ---------------------------------------------------------------- rules

        @precondition(lambda self: not self.shut)
        @rule(who=st.sampled_from(USERS), amount=st.integers(1, 300_000 * USDC))
        def deposit(self, who, amount):
            u = users[who]
            self.same_block()
            preview = vault.previewDeposit(amount)
            if amount > vault.maxDeposit(u) or preview == 0:
                assert _expect_revert(chain, vault.deposit, (amount, u.address), u)
                return
            pps, nav = self.pps(), self.nav()
            shares = vault.deposit(amount, u, sender=u).return_value
            assert shares == preview == self.model.deposit(u.address, amount, nav, self.now())
            assert self.pps() >= pps - 1

        @precondition(lambda self: not self.shut)
        @rule(who=st.sampled_from(USERS), shares=st.integers(1, 10**17))
        def mint(self, who, shares):
            u = users[who]
            self.same_block()
            preview = vault.previewMint(shares)
            if preview > vault.maxDeposit(u):
                return
            nav = self.nav()
            assets = vault.mint(shares, u, sender=u).return_value
            assert assets == preview == self.model.mint(u.address, shares, nav, self.now())

        @rule(who=st.sampled_from(USERS), fraction=st.integers(1, 10_000))
        def redeem(self, who, fraction):
            u = users[who]
            shares = vault.balanceOf(u) * fraction // 10_000
            if shares == 0:
                return
            self.same_block()
            preview = vault.previewRedeem(shares)
            if preview == 0:
                # worth less than a wei from idle: refused, not paid with nothing
                reason = _expect_revert(chain, vault.redeem, (shares, u.address, u.address), u)
                if reason:
                    assert reason == "vault: zero assets"
                    return
            pps, nav = self.pps(), self.nav()
            if preview < DUST and vault.short_size():
                reason = _expect_revert(chain, vault.redeem, (shares, u.address, u.address), u)
                if reason:  # as for withdraw: dust exits may be refused, never mispaid
                    assert reason == "vault: exit cost above bound"
                    return
            paid = vault.redeem(shares, u, u, sender=u).return_value
            assert paid >= preview
            assert self.pps() >= pps - 1, "an exit lowered the stayers' share price"
            from_idle = self.model.redeem_from_idle(u.address, shares, nav, self.now())
            if from_idle is None:  # unwound: the venue's fills decided the books
                self.model.burn(u.address, shares)
                self.sync_books()
            else:
                assert paid == from_idle

        @rule(who=st.sampled_from(USERS), fraction=st.integers(1, 10_000))
        def withdraw(self, who, fraction):
            u = users[who]
            assets = vault.maxWithdraw(u) * fraction // 10_000
            if assets == 0:
                return
            self.same_block()
            preview = vault.previewWithdraw(assets)
            pps, nav = self.pps(), self.nav()
            if assets < DUST and vault.short_size():
                reason = _expect_revert(chain, vault.withdraw, (assets, u.address, u.address), u)
                if reason:  # a dust exit's unwind loses a rounding wei: above the cost bound
                    assert reason == "vault: exit cost above bound"
                    return
            burned = vault.withdraw(assets, u, u, sender=u).return_value
            assert burned <= preview
            assert self.pps() >= pps - 1, "an exit lowered the stayers' share price"
            from_idle = self.model.withdraw_from_idle(u.address, assets, nav, self.now())
            if from_idle is None:
                self.model.burn(u.address, burned)
                self.sync_books()
            else:
                assert burned == from_idle

        @rule(src=st.sampled_from(USERS), dst=st.sampled_from(USERS), fraction=st.integers(0, 10_000))
        def transfer(self, src, dst, fraction):
            amount = vault.balanceOf(users[src]) * fraction // 10_000
            vault.transfer(users[dst], amount, sender=users[src])
            self.model.transfer(users[src].address, users[dst].address, amount)

        @precondition(lambda self: not self.shut)
        @rule(leverage=st.sampled_from((0.0, 1.0, 2.0, 3.0)))
        def rebalance(self, leverage):
            nav = vault.totalAssets()
            if nav < DUST:
                # A vault worth less than a unit: the pool's rounded-up quote for a few wei is
                # beyond any slippage bound and the vault refuses; the keeper never acts on
                # less than its minimum action value (100 USDC by default) anyway.
                return
            price = perp.index_price()
            spot_value = int(nav * leverage / (leverage + 1))
            size = spot_value * 9_950 // 10_000 * SIZE * E8 // (price * USDC)
            margin = nav - spot_value if size else 0
            self.same_block()
            gross = self.nav()
            vault.rebalance(size, margin, 50, chain.pending_timestamp + 3_600, sender=world["keeper"])
            self.model.accrue(gross, self.now())
            self.sync_books()
            # the rules hold after every keeper step
            assert vault.short_size() == size
            if size:
                assert perp.margin_ratio_bps(vault) >= vault.min_margin_ratio_bps()

        @rule(move_bps=st.integers(-800, 800))
        def price_move(self, move_bps):
            price = feed.latestAnswer() * (10_000 + move_bps) // 10_000
            self.push_price(min(max(price, 2_400 * E8), 3_600 * E8))

        @rule(rate=st.integers(-55_555_555_555, 55_555_555_555))  # +-0.02 %/h
        def funding(self, rate):
            perp.set_funding_rate(rate, sender=world["operator"])

        @rule(seconds=st.integers(1, 2 * 3_600))
        def warp(self, seconds):
            chain.mine(deltatime=seconds)
            self.push_price(feed.latestAnswer())  # the feeder keeps the oracle fresh

        @rule(caller=st.sampled_from(USERS))
        def emergency(self, caller):
            self.same_block()
            reason = _expect_revert(chain, vault.emergency_deleverage, (), users[caller])
            assert reason in (
                "",
                "vault: no position",
                "vault: deleverage not allowed",
                "vault: margin ratio healthy",
            )
            if reason:
                return
            ratio, gross = perp.margin_ratio_bps(vault), self.nav()
            vault.emergency_deleverage(sender=users[caller])
            assert perp.margin_ratio_bps(vault) > ratio
            self.model.accrue(gross, self.now())
            self.sync_books()

        @precondition(lambda self: not self.shut)
        @rule()
        def shutdown(self):
            self.same_block()
            gross = self.nav()
            vault.shutdown(sender=world["guardian"])
            self.shut = True
            self.model.accrue(gross, self.now())
            self.sync_books()
            assert vault.short_size() == vault.spot_base() == 0

        # ---------------------------------------------------------------- invariants
        # Each invariant reads its views in one JSON-RPC batch at the head block (the same
        # eth_calls ape would make one request at a time).

        def read(self, *calls):
            return reader.read(calls)[1]

        @invariant()
        def model_agrees_with_chain(self):
            m = self.model
            holders = [*users.values(), world["treasury"]]
            *balances, supply, idle, spot, short, fee_time, hwm, net, answer, equity = self.read(
                *(Call("balanceOf", v, "balanceOf(address)", (h.address,)) for h in holders),
                Call("totalSupply", v, "totalSupply()"),
                Call("idle", v, "idle()"),
                Call("spot_base", v, "spot_base()"),
                Call("short_size", v, "short_size()"),
                Call("last_fee_time", v, "last_fee_time()"),
                Call("high_water_mark", v, "high_water_mark()"),
                Call("totalAssets", v, "totalAssets()"),
                Call("latestAnswer", feed.address, "latestAnswer()", (), ("int256",)),
                Call("equity", perp.address, "equity(address)", (v,), ("int256",)),
            )
            assert balances == [m.balances.get(h.address, 0) for h in holders]
            assert supply == m.supply
            assert (idle, spot, short) == (m.idle, m.spot_base, m.short_size)
            assert (fee_time, hwm) == (m.last_fee_time, m.high_water_mark)
            assert net == m.net_nav(m.gross_nav(answer, equity), self.now())

        @invariant()
        def supply_is_sum_of_balances(self):
            holders = [*users.values(), world["treasury"]]
            supply, *balances = self.read(
                Call("totalSupply", v, "totalSupply()"),
                *(Call("balanceOf", v, "balanceOf(address)", (h.address,)) for h in holders),
            )
            assert supply == sum(balances)

        @invariant()
        def nav_is_its_components(self):
            price, spot_base, short, last_equity, idle, equity, net = self.read(
                Call("latestAnswer", feed.address, "latestAnswer()", (), ("int256",)),
                Call("spot_base", v, "spot_base()"),
                Call("short_size", v, "short_size()"),
                Call("last_perp_equity", v, "last_perp_equity()", (), ("int256",)),
                Call("idle", v, "idle()"),
                Call("equity", perp.address, "equity(address)", (v,), ("int256",)),
                Call("totalAssets", v, "totalAssets()"),
            )
            spot = spot_base * price * USDC // (10**18 * E8)
            equity = equity if short or last_equity else 0
            gross = idle + spot + equity
            assert net <= gross
            assert gross - net <= gross // 1_000 + 1  # only accrued fees in between

        @invariant()
        def books_are_backed(self):
            asset_held, base_held, idle, spot, short, position = self.read(
                Call("asset", venue.asset.address, "balanceOf(address)", (v,)),
                Call("base", venue.base.address, "balanceOf(address)", (v,)),
                Call("idle", v, "idle()"),
                Call("spot_base", v, "spot_base()"),
                Call("short_size", v, "short_size()"),
                Call("position", perp.address, "position(address)", (v,), POSITION_TYPES),
            )
            assert asset_held >= idle
            assert base_held >= spot
            assert -position[0] == short

    run_state_machine_as_test(
        VaultMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=12,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_vault_state_machine(world):
    # Every block 12 s after the last, whatever the wall clock does: funding and fees then
    # accrue the same on every machine, so the derandomized examples are the same ones.
    provider = world["chain"].provider
    provider.make_request("anvil_setBlockTimestampInterval", [12])
    try:
        run_machine(world)
    finally:
        provider.make_request("anvil_removeBlockTimestampInterval", [])
