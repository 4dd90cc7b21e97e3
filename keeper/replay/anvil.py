"""Chain-mode replay: the whole stack on a fresh anvil, the real keeper tick every step.

`chain_backend` starts its own anvil (the pinned one from node_modules/.bin) with its
genesis an hour before the history starts, connects ape to it, and freezes the clock
(`anvil_setBlockTimestampInterval 0`): every block of a step carries the step's time, so
the chain and the model see the same instants. At the start time it deploys the
reference venue and the vault with the deploy script's own code (`keeper.ops.deploy.deploy`,
`deploy/local.yaml` with the history's first price), writes the manifest, seeds the
depositors (`keeper.ops.actions.deposit`) and builds the keeper exactly as `basis-keeper run`
does (`keeper.bot.wiring.Stack`), with a local test key.

Each step then goes over raw JSON-RPC (ape's per-call overhead would dominate): the
feeder pushes the price and the funding rate (and the asset's USD feed where
`with_asset_pushes` says), a liquidator liquidates the hedge's short if the market says it
may (recorded as a `Liquidation`), an arbitrageur trades the pool back to the oracle, and
`Keeper.tick()` runs. The keeper's transactions are read back from their receipts
(`Swap`, `PositionModified` and `FundingSettled` logs) to attribute costs the same way
the model does (`keeper.replay.driver.book_trades`).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Unpack

from eth_account import Account
from eth_utils.address import to_checksum_address

from keeper.bot.runtime import Keeper
from keeper.bot.settings import KeeperSettings
from keeper.bot.strategy import EmergencyDeleverage, Hold, Rebalance, Unwind
from keeper.bot.wiring import Stack
from keeper.chain.abi import (
    FUNDING_SETTLED,
    POSITION_MODIFIED,
    SWAP,
    Call,
    calldata,
    position_call,
    reserves_call,
    revert_reason,
    round_call,
    topic_address,
)
from keeper.chain.manifest import write_manifest
from keeper.chain.reader import Addresses, run_calls
from keeper.core.errors import UserError
from keeper.core.fixed import BPS, PRICE_UNIT, SIZE_UNIT, mark_price, mul_div, value
from keeper.model.markets import SpotPoolModel, UniswapV3FullRangeModel, arb_trade
from keeper.model.vault import DECIMALS_OFFSET
from keeper.net.rpc import Rpc, RpcError
from keeper.replay import driver
from keeper.replay.driver import PROBE_ASSETS, MarketStep, ReplayConfig, ReplayOptions, ReplayResult, replay
from keeper.replay.exact import passive_run

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MAX_UINT = 2**256 - 1
TX_GAS = hex(1_000_000)  # feeder, arbitrageur and liquidator calls: no estimate round trip

# ----------------------------------------------------------------------------- anvil


def anvil_binary() -> str:
    local = PROJECT_ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found is None:
        raise UserError("anvil is not installed: run `make setup` (npm ci installs the pinned anvil)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def anvil(genesis_timestamp: int) -> Iterator[str]:
    """A throwaway anvil whose genesis is at `genesis_timestamp`; yields its URL."""
    port = _free_port()
    proc = subprocess.Popen(
        # --prune-history: only recent states in memory, so a long replay neither grows anvil's
        # memory nor slows its mining as much (old states are never read: the keeper reads
        # the latest block, and logs stay)
        [
            anvil_binary(),
            "--port",
            str(port),
            "--timestamp",
            str(genesis_timestamp),
            "--silent",
            "--prune-history",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        rpc = Rpc(url, timeout=2.0, retries=0)
        for _ in range(200):
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise UserError(f"anvil exited at start: {err.strip()[:200]}")
            try:
                rpc.call("eth_chainId")
                break
            except Exception:
                time.sleep(0.05)
        else:
            raise UserError("anvil did not answer within 10 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


# ----------------------------------------------------------------------------- set-up


def _deploy_config(config: ReplayConfig, price_e8: int, keeper_address: str) -> Any:
    from keeper.ops.config import config_path, load_deploy_config

    base = load_deploy_config(config_path("local"))
    v = config.venue
    params = {
        f: getattr(v, f)
        for f in v.__dataclass_fields__
        if f != "price_e8" and getattr(v, f) != v.__dataclass_fields__[f].default
    }
    # the arbitrageur needs more than the default faucet cap per call on a crash
    params["asset_mint_cap"] = max(v.asset_mint_cap, 10**12)
    params["base_mint_cap"] = max(v.base_mint_cap, 10**8)
    rules = {f: getattr(config.rules, f) for f in config.rules.__dataclass_fields__}
    return base.model_copy(
        update={
            "vault": base.vault.model_copy(
                update={
                    "management_fee_bps": config.management_fee_bps,
                    "performance_fee_bps": config.performance_fee_bps,
                }
            ),
            "rules": base.rules.model_copy(update=rules),
            "roles": base.roles.model_copy(update={"keeper": keeper_address}),
            "venue": base.venue.model_copy(
                update={
                    "deploy": base.venue.deploy.model_copy(
                        update={"price_usd": Decimal(price_e8) / PRICE_UNIT, "params": params}
                    ),
                    "spot": base.venue.spot.model_copy(
                        update={"kind": config.spot, "fee": v.spot_fee_bps * 100}
                    ),
                }
            ),
        }
    )


class ChainBackend:
    """The replay's market on a chain, and the production keeper acting on it."""

    def __init__(
        self,
        rpc: Rpc,
        keeper: Keeper,
        config: ReplayConfig,
        *,
        feeder: str,
        arbitrageur: str,
        liquidator: str,
        prober: str,
        holder: str,
        rate: int,
    ) -> None:
        self.rpc, self.keeper, self.config = rpc, keeper, config
        self.a: Addresses = keeper.addresses
        self.feeder, self.arbitrageur, self.liquidator = feeder, arbitrageur, liquidator
        self.prober, self.holder = prober, holder
        v = config.venue
        self.asset_unit, self.base_unit, self.pool_fee_bps = v.asset_unit, v.base_unit, v.spot_fee_bps
        # the arbitrageur's model of the pool it reads (v3: the adapter's virtual reserves)
        self.pool_model = UniswapV3FullRangeModel if config.spot == "uniswap-v3" else SpotPoolModel
        self.rate = rate
        self.premium = 0  # the perp's premium as last set (deployed at 0)
        self.costs = driver.Costs()
        self.trades: list[driver.Trade] = []
        self.reverts: list[str] = []
        self.liquidations: list[driver.Liquidation] = []
        self.asset_feed_pushes = 0
        self.maintenance_margin_bps = v.maintenance_margin_bps
        self.extreme_ratio_bps: int | None = None  # at the extreme the last advance valued
        self.settled = 0  # funding the vault's position settled, from FundingSettled logs
        self.pending: list[str] = []  # our own transactions whose receipts are unchecked
        self.now = 0
        self.last = self._read()

    # ------------------------------------------------------------------ plumbing

    def _send(self, sender: str, to: str, data: str) -> str:
        tx_hash: str = self.rpc.call(
            "eth_sendTransaction", {"from": sender, "to": to, "data": data, "gas": TX_GAS}
        )
        self.pending.append(tx_hash)
        return tx_hash

    def _receipts(self, hashes: list[str]) -> list[dict[str, Any]]:
        if not hashes:
            return []
        deadline, pause = time.monotonic() + 60.0, 0.001
        while True:  # anvil mines right after answering; a receipt can lag (more on a busy host)
            receipts = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
            if all(r and not isinstance(r, RpcError) for r in receipts) or time.monotonic() > deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        for h, r in zip(hashes, receipts, strict=True):
            if isinstance(r, RpcError) or not r:
                raise RuntimeError(f"replay transaction {h} has no receipt")
            if int(r["status"], 16) != 1:
                raise RuntimeError(f"replay transaction {h} reverted")
        return list(receipts)

    def _base_value(self, amount: int, price: int) -> int:
        return mul_div(amount, price * self.asset_unit, self.base_unit * PRICE_UNIT, False)

    def _read(self) -> dict[str, Any]:
        """The vault, its hedge and the market once what we sent is mined (one or two
        round trips)."""
        a = self.a
        calls = [
            Call("totalAssets", a.vault, "totalAssets()"),
            Call("totalSupply", a.vault, "totalSupply()"),
            Call("idle", a.vault, "idle()"),
            Call("is_shutdown", a.vault, "is_shutdown()", returns=("bool",)),
            Call("spot_base", a.hedge, "spot_base()"),
            Call("booked_short", a.hedge, "booked_short()"),
            Call("short_size", a.hedge, "short_size()"),
            position_call(a.perp_market, a.hedge),
            round_call("latestRoundData", a.price_feed),
            reserves_call(a.spot_pool),
            Call("is_liquidatable", a.perp_market, "is_liquidatable(address)", (a.hedge,), ("bool",)),
            Call("mark_price", a.perp_market, "mark_price()"),
        ]
        # Anvil answers a batch's requests concurrently: a read batched with a receipt can
        # still see the state before that transaction. So first the receipts, then the reads.
        self._settle()
        values = run_calls(self.rpc, calls, "latest")
        (
            total_assets,
            supply,
            idle,
            shutdown,
            spot_base,
            booked,
            short,
            pos,
            round_data,
            reserves,
            liquidatable,
            mark,
        ) = values
        price = round_data[1]
        size, _, margin, upnl, accrued, equity, _, ratio = pos
        if short != max(-size, 0):  # the hedge reads its short from the venue: never stale
            raise RuntimeError(f"hedge.short_size() {short} is not the venue's short {max(-size, 0)}")
        spot_value = self._base_value(spot_base, price)
        perp_equity = equity if (booked or size or margin) else 0
        return {
            "net_nav": total_assets,
            "nav": max(idle + spot_value + perp_equity, 0),
            "supply": supply,
            "shutdown": shutdown,
            "spot_base": spot_base,
            "short": short,
            "booked_short": booked,
            "price": price,
            "updated_at": round_data[3],
            "reserves": reserves,
            "spot_value": spot_value,
            "size": size,
            "margin": margin,
            "upnl": upnl,
            "mark": mark,
            # the short's value at the mark less at the index: the basis inside `upnl`
            "basis": value(size, mark, self.asset_unit, False) - value(size, price, self.asset_unit, False),
            "accrued": accrued,
            "ratio": None if ratio == MAX_UINT or size == 0 else ratio,
            "liquidatable": liquidatable,
        }

    def _funding_total(self, r: dict[str, Any]) -> int:
        return self.settled + int(r["accrued"])

    def _book_logs(
        self, logs: Sequence[dict[str, Any]]
    ) -> tuple[tuple[driver.Swap, ...], tuple[driver.Fill, ...]]:
        """The hedge's swaps and fills in a receipt's logs; settled funding is added up."""
        vault_topic = topic_address(self.a.hedge)
        swaps, fills = [], []
        for log in logs:
            topics = log["topics"]
            addr = log["address"].lower()
            if addr == self.a.spot_pool.lower() and topics[0] == SWAP.topic and topics[1] == vault_topic:
                amount_in, amount_out, _, _ = SWAP.data(log)
                base_in = topics[3] == topic_address(self.a.base)
                swaps.append(driver.Swap(base_in, amount_in, amount_out))
            elif addr == self.a.perp_market.lower() and len(topics) > 1 and topics[1] == vault_topic:
                if topics[0] == POSITION_MODIFIED.topic:
                    delta, fill, _, mark, fee, *_ = POSITION_MODIFIED.data(log)
                    fills.append(driver.Fill(delta, fill, mark, fee))
                elif topics[0] == FUNDING_SETTLED.topic:
                    amount, _ = FUNDING_SETTLED.data(log)
                    self.settled += amount
        return tuple(swaps), tuple(fills)

    # ------------------------------------------------------------------ the market

    def _at_price(self, r: dict[str, Any], price_e8: int) -> tuple[int | None, bool]:
        """The hedge's perp account as read (`r`) valued at `price_e8` instead: (margin
        ratio bps, liquidatable), as `PerpMarket.margin_ratio_bps` and `is_liquidatable`
        compute them at that index's mark (funding is checkpointed at this block, so only
        the PnL moves)."""
        size, unit = r["size"], self.asset_unit
        cost = value(size, r["mark"], unit, False) - r["upnl"]
        size_value = value(size, mark_price(price_e8, self.premium), unit, False)
        equity = r["margin"] + r["accrued"] + size_value - cost
        notional = abs(size_value)
        if size == 0 or notional == 0:
            return None, False
        ratio = 0 if equity <= 0 else equity * BPS // notional
        return ratio, equity < mul_div(notional, self.maintenance_margin_bps, BPS, True)

    def advance(self, step: MarketStep, previous: MarketStep | None = None) -> int:
        rpc, a = self.rpc, self.a
        before = self.last
        self.extreme_ratio_bps = None
        self.now = step.time
        rpc.call("evm_setNextBlockTimestamp", step.time)
        # As the market feeder does, funding accrues at the old price and rate before the
        # new price lands: a rate change accrues first by itself, else accrue_funding()
        # does (the model sets the price, then the rate, at the same instant: the same).
        sent = False
        if step.rate != self.rate:
            self._send(self.feeder, a.perp_market, calldata("set_funding_rate(int256)", step.rate))
            self.rate, sent = step.rate, True
        if step.push_oracle:
            if not sent:
                self._send(self.feeder, a.perp_market, calldata("accrue_funding()"))
            self._send(self.feeder, a.price_feed, calldata("set_price(int256)", step.price_e8))
            sent = True
        if step.premium_e18 != self.premium:
            self._send(self.feeder, a.perp_market, calldata("set_premium(int256)", step.premium_e18))
            self.premium, sent = step.premium_e18, True
        if step.push_asset:
            self._send(self.feeder, a.asset_feed, calldata("set_price(int256)", step.asset_price_e8))
            self.asset_feed_pushes += 1
            sent = True
        if not sent:
            rpc.call("evm_mine")
        moved = self._read()
        self._book_move(before, moved)
        if previous is not None and step.push_oracle and (previous.high_e8 or previous.low_e8):
            # the bar's adverse extreme since the last step, valued from the read (the model
            # visits it; here the oracle goes there only when the venue would liquidate)
            size = moved["size"]
            extreme = previous.high_e8 if size < 0 else previous.low_e8 if size > 0 else 0
            if extreme:
                self.extreme_ratio_bps, liquidatable = self._at_price(moved, extreme)
                if liquidatable:
                    self._send(self.feeder, a.price_feed, calldata("set_price(int256)", extreme))
                    at_extreme = self._read()
                    if not at_extreme["liquidatable"]:
                        raise RuntimeError(f"the venue does not liquidate at the extreme {extreme} as valued")
                    self._book_move(moved, at_extreme)
                    moved = self._liquidate(step.time, at_extreme)
                    self._send(self.feeder, a.price_feed, calldata("set_price(int256)", step.price_e8))
                    back = self._read()
                    self._book_move(moved, back)
                    moved = back
        if moved["liquidatable"]:
            moved = self._liquidate(step.time, moved)
        base, asset = moved["reserves"]
        pool = self.pool_model(base, asset, self.pool_fee_bps)
        pool_before = pool.price_e8(self.base_unit, self.asset_unit)
        targets = []
        if step.arbitrage:
            targets.append(moved["price"])
        if step.pool_offset_bps:
            targets.append(moved["price"] * (10_000 + step.pool_offset_bps) // 10_000)
        for target in targets:
            base_in, amount = arb_trade(
                pool.reserve_base, pool.reserve_asset, target, self.base_unit, self.asset_unit, pool.fee_bps
            )
            if amount and pool.amount_out(base_in, amount):
                pool.swap(base_in, amount)
                token = a.base if base_in else a.asset
                data = calldata("swap(address,uint256,uint256,address)", token, amount, 0, self.arbitrageur)
                self._send(self.arbitrageur, a.spot_pool, data)
        self.last = moved
        self._settle()  # the step's market is mined before anyone (keeper, prober) looks
        return pool_before

    def _book_move(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        self.costs.market_move(
            self._funding_total(after) - self._funding_total(before),
            after["spot_value"] - before["spot_value"],
            (after["upnl"] - after["basis"]) - (before["upnl"] - before["basis"]),
            after["basis"] - before["basis"],
        )

    def _liquidate(self, when: int, r: dict[str, Any]) -> dict[str, Any]:
        """A liquidator liquidates the hedge's short (`r`: the read before); returns the read after."""
        a = self.a
        tx = self._send(self.liquidator, a.perp_market, calldata("liquidate(address)", a.hedge))
        (receipt,) = self._receipts([tx])
        self.pending.clear()
        self._book_logs(receipt["logs"])
        after = self._read()
        loss = r["nav"] - after["nav"]
        self.liquidations.append(driver.Liquidation(when, r["short"] - after["short"], loss))
        self.costs.liquidation_loss += loss
        return after

    # ------------------------------------------------------------------ the keeper

    def _settle(self) -> None:
        """Waits until what we sent is mined: the next reads must see it."""
        if self.pending:
            self._receipts(self.pending)
            self.pending.clear()

    def tick(self) -> driver.Ticked:
        report = self.keeper.tick()
        decision = report.decision
        expected = None
        if decision is not None and decision.signals.funding.expected_rate_per_hour is not None:
            expected = float(decision.signals.funding.expected_rate_per_hour)
        if report.error is not None or decision is None:
            self.reverts.append(f"{report.block}: {report.error}")
            return driver.Ticked("revert", report.error or "no decision", expected)
        action = decision.action
        if isinstance(action, Hold) or report.sent is None:
            return driver.Ticked("hold", decision.reason, expected)
        assert isinstance(action, Rebalance | EmergencyDeleverage | Unwind)
        kind = (
            action.intent.value
            if isinstance(action, Rebalance)
            else "unwind"
            if isinstance(action, Unwind)
            else "emergency"
        )
        swaps, fills = self._book_logs(report.sent.logs)
        before, after = self.last, self._read()
        price = after["price"]
        self.costs.gas_units += report.sent.gas_used
        self.trades.append(driver.Trade(self.now, kind, price, swaps, fills, report.sent.gas_used))
        traded = driver.book_trades(
            self.costs, swaps, fills, price, self._base_value, self.pool_fee_bps, self.asset_unit
        )
        self.costs.spot_pnl += after["spot_value"] - before["spot_value"] - traded
        self.last = after
        return driver.Ticked(kind, decision.reason, expected)

    def probe(self) -> driver.Probe:
        a = self.a
        one = self.asset_unit
        deposit = calldata("deposit(uint256,address)", one, self.prober)
        shares = one * 10**DECIMALS_OFFSET  # about one asset unit's worth
        redeem = calldata("redeem(uint256,address,address)", shares, self.holder, self.holder)
        answers = self.rpc.batch(
            [
                ("eth_call", [{"from": self.prober, "to": a.vault, "data": deposit}, "latest"]),
                ("eth_call", [{"from": self.holder, "to": a.vault, "data": redeem}, "latest"]),
            ]
        )
        deposit_refused, redeem_refused = (
            revert_reason(x) if isinstance(x, RpcError) else None for x in answers
        )
        round_trip = None
        if deposit_refused is None and redeem_refused is None:
            round_trip = self._round_trip()
        return driver.Probe(deposit_refused, redeem_refused, round_trip)

    def _round_trip(self) -> float:
        """A newcomer deposits PROBE_ASSETS and redeems every share it got, for real, then
        the chain is put back (evm_snapshot / evm_revert): the other holders' share price
        after vs before, signed bps."""
        a, rpc = self.a, self.rpc
        price = [Call("totalAssets", a.vault, "totalAssets()"), Call("totalSupply", a.vault, "totalSupply()")]
        snapshot = rpc.call("evm_snapshot")
        try:
            assets_before, supply_before = run_calls(rpc, price, "latest")
            amount = PROBE_ASSETS * self.asset_unit
            self._send(self.prober, a.vault, calldata("deposit(uint256,address)", amount, self.prober))
            self._settle()
            (shares,) = run_calls(
                rpc, [Call("balanceOf", a.vault, "balanceOf(address)", (self.prober,))], "latest"
            )
            data = calldata("redeem(uint256,address,address)", shares, self.prober, self.prober)
            self._send(self.prober, a.vault, data)
            self._settle()
            assets_after, supply_after = run_calls(rpc, price, "latest")
        finally:
            self.pending.clear()
            if rpc.call("evm_revert", snapshot) is not True:
                raise RuntimeError("the round-trip probe could not be undone (evm_revert)")
        before = Decimal(assets_before) / supply_before
        after = Decimal(assets_after) / supply_after
        return float((after - before) / before * 10_000)

    def observe(self) -> driver.Observation:
        r = self.last = self._read()
        price = r["price"]
        short_value = mul_div(r["short"], price * self.asset_unit, SIZE_UNIT * PRICE_UNIT, False)
        base, asset = r["reserves"]
        return driver.Observation(
            nav=r["nav"],
            net_nav=r["net_nav"],
            supply=r["supply"],
            price_e8=price,
            spot_base=r["spot_base"],
            short_size=r["short"],
            spot_value=r["spot_value"],
            short_value=short_value,
            margin_ratio_bps=r["ratio"],
            pool_price_e8=SpotPoolModel(base, asset, self.pool_fee_bps).price_e8(
                self.base_unit, self.asset_unit
            ),
            booked_short=r["booked_short"],
            shutdown=r["shutdown"],
        )


@contextmanager
def chain_backend(config: ReplayConfig, first: MarketStep) -> Iterator[ChainBackend]:
    """Anvil, the deployed stack, the depositors in, the keeper built: at `first.time`."""
    from ape import accounts, chain, networks, project
    from ape.logging import logger as ape_logger

    from keeper.ops import actions
    from keeper.ops.contracts import faucet
    from keeper.ops.deploy import deploy
    from keeper.ops.deployment import Deployment

    if len(accounts.test_accounts) < 5 + config.depositors:  # 5 roles, then the depositors
        raise UserError(f"--depositors: at most {len(accounts.test_accounts) - 5} in chain mode")
    with (
        ape_logger.at_level("ERROR"),  # not a line per deploy transaction
        anvil(first.time - 3_600) as url,
        networks.parse_network_choice("ethereum:local:node", provider_settings={"uri": url}),
        tempfile.TemporaryDirectory(prefix="basis-replay-") as tmp,
    ):
        rpc = Rpc(url, timeout=30.0, retries=0)
        rpc.call("evm_setNextBlockTimestamp", first.time)
        rpc.call("anvil_setBlockTimestampInterval", 0)
        test = accounts.test_accounts
        operator, keeper_acct, arbitrageur, liquidator, prober = test[0], test[1], test[2], test[3], test[4]
        depositors = test[5 : 5 + config.depositors]
        deploy_config = _deploy_config(config, first.price_e8, keeper_acct.address)
        manifest, _ = deploy(project, chain, operator, deploy_config, network=f"replay ({url})")
        deployments = Path(tmp)
        write_manifest(manifest, deployments)
        dep = Deployment.bind(project, manifest)
        for who, amount in zip(depositors, config.deposits_wei(), strict=True):
            actions.deposit(dep, chain, who, amount, use_faucet=True)
        # the arbitrageur's inventory, the prober's approval (it probes, never deposits)
        faucet(dep.asset, arbitrageur, 10**12 * config.venue.asset_unit // 10)
        faucet(dep.base, arbitrageur, 10**7 * config.venue.base_unit)
        dep.asset.approve(dep.spot_pool.address, MAX_UINT, sender=arbitrageur)
        dep.base.approve(dep.spot_pool.address, MAX_UINT, sender=arbitrageur)
        faucet(dep.asset, prober, (PROBE_ASSETS + 1) * config.venue.asset_unit)
        dep.asset.approve(dep.vault.address, MAX_UINT, sender=prober)
        settings = KeeperSettings(
            rpc_url=url,
            deployments_dir=deployments,
            venues=[],
            metrics_port=0,
            rpc_retries=0,
            rpc_timeout_seconds=30.0,
            receipt_poll_seconds=0.002,
            strategy=config.settings,
        )
        key = Account.from_key(keeper_acct.private_key)
        stack = Stack(settings, need_account=True, account=key)
        backend = ChainBackend(
            stack.rpc,
            stack.keeper(),
            config,
            feeder=to_checksum_address(operator.address),
            arbitrageur=to_checksum_address(arbitrageur.address),
            liquidator=to_checksum_address(liquidator.address),
            prober=to_checksum_address(prober.address),
            holder=to_checksum_address(depositors[0].address),
            rate=0,
        )
        yield backend


@contextmanager
def _quiet_chain_backend(config: ReplayConfig, first: MarketStep) -> Iterator[ChainBackend]:
    quiet = logging.getLogger("keeper")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the keeper's alerts are in the steps' records
    try:
        with chain_backend(config, first) as backend:
            yield backend
    finally:
        quiet.setLevel(level)


def run_chain_steps(
    steps: list[MarketStep],
    config: ReplayConfig | None = None,
    *,
    passive: bool = True,
    **options: Unpack[ReplayOptions],
) -> ReplayResult:
    """Replays market steps (oldest first) on a fresh anvil with the real keeper; with
    `passive`, the never-park hedge on the same steps in model mode (`ReplayResult.passive`,
    labelled so)."""
    result = replay(_quiet_chain_backend, steps, config, mode="chain", **options)
    if passive:
        result.passive = passive_run(steps, result, end_price_e8=options.get("end_price_e8"))
    return result


def project_cwd() -> None:
    """Ape finds the project (contracts, ape-config.yaml) in the working directory."""
    if not (PROJECT_ROOT / "ape-config.yaml").is_file():
        raise UserError("chain mode runs from a checkout of the project (ape-config.yaml not found)")
    os.chdir(PROJECT_ROOT)
