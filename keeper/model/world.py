"""A plain-Python world: the reference venue (exact models from `keeper.model.venue`) plus
a BasisVault transcribed here, call by call, from `contracts/BasisVault.vy`.

The strategy's tests use it as their oracle, and the replay's model mode
(`keeper.replay.model`) runs the vault on it. It deliberately shares nothing with the
strategy's own vault model (`keeper.model.vault`): it keeps the market's real funding
index, account cost and the vault's `last_perp_equity` as the chain does, where the
strategy has to rebuild them from a `VaultState`. A proposal the strategy gets wrong is
refused here with the vault's revert reason. Fees (management/performance) are not kept
here, so `_nav` is the gross NAV; `keeper.model.accounting` keeps the share side.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from keeper.model.venue import (
    BPS,
    FUNDING_DENOMINATOR,
    PRICE_UNIT,
    SIZE_UNIT,
    ModelRevert,
    PerpModel,
    SpotPoolModel,
    mul_div,
    mul_div_signed,
    value,
)
from keeper.state import VaultState
from keeper.venue import VaultRules, arb_trade

VAULT = "vault"
EMERGENCY_BUFFER_BPS = 200


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise ModelRevert(reason)


@dataclass
class World:
    perp: PerpModel
    pool: SpotPoolModel
    rules: VaultRules = field(default_factory=VaultRules)
    asset_unit: int = 10**6
    base_unit: int = 10**18
    idle: int = 0
    spot_base: int = 0
    short_size: int = 0
    last_perp_equity: int = 0
    last_rebalance_time: int = 0
    shutdown: bool = False

    # ------------------------------------------------------------------ set-up

    @classmethod
    def new(
        cls,
        price_e8: int = 3_000 * PRICE_UNIT,
        now: int = 1_700_000_000,
        *,
        pool_asset: int = 1_000_000_000 * 10**6,
        pool_fee_bps: int = 5,
        depth: int = 5_000_000_000 * 10**6,
        taker_fee_ppm: int = 450,
        rules: VaultRules | None = None,
    ) -> World:
        perp = PerpModel(
            asset_unit=10**6,
            price_e8=price_e8,
            now=now,
            taker_fee_ppm=taker_fee_ppm,
            depth=depth,
            pool_liquidity=10**30,
        )
        pool_base = pool_asset * 10**18 * PRICE_UNIT // (price_e8 * 10**6)
        return cls(
            perp,
            SpotPoolModel(pool_base, pool_asset, pool_fee_bps),
            rules or VaultRules(),
            last_rebalance_time=now,
        )

    def copy(self) -> World:
        return copy.deepcopy(self)

    @property
    def now(self) -> int:
        return self.perp.now

    @property
    def price(self) -> int:
        return self.perp.price_e8

    def deposit(self, amount: int) -> None:
        self.idle += amount

    def warp(self, seconds: int) -> None:
        self.perp.warp(seconds)

    def push_price(self, price_e8: int) -> None:
        """The feeder: checkpoint funding, then the new answer, stamped now."""
        self.perp.set_price(price_e8)

    def set_funding_rate(self, rate: int) -> None:
        self.perp.set_funding_rate(rate)

    def arb_pool(self, to_price_e8: int | None = None) -> None:
        """An arbitrageur trades the pool to `to_price_e8` (default: the oracle)."""
        base_in, amount = arb_trade(
            self.pool.reserve_base,
            self.pool.reserve_asset,
            to_price_e8 or self.price,
            self.base_unit,
            self.asset_unit,
            self.pool.fee_bps,
        )
        if amount and self.pool.amount_out(base_in, amount):
            self.pool.swap(base_in, amount)

    # ------------------------------------------------------------------ reads

    def state(self) -> VaultState:
        """What the executor reads from chain, field by field."""
        perp, pool = self.perp, self.pool
        acct = perp.account(VAULT)
        price = perp.price_e8
        # the market's views (`accrued_funding`, `unrealized_pnl`, `notional`), each computed
        # once from the one account (equity = margin + PnL + funding)
        size = acct.size
        if size == 0:
            accrued = pnl = 0
            ratio = None
        else:
            unit = perp.asset_unit
            index = perp.current_funding_index()
            accrued = mul_div_signed(-size, index - acct.funding_entry, FUNDING_DENOMINATOR // unit, False)
            size_value = value(size, price, unit, False)
            pnl = size_value - acct.cost
            notional = abs(size_value)
        equity = acct.margin + pnl + accrued
        if size != 0:
            ratio = None if notional == 0 else (0 if equity <= 0 else equity * BPS // notional)
        perp_equity = 0 if self.short_size == 0 and self.last_perp_equity == 0 else equity
        return VaultState(
            block_timestamp=perp.now,
            asset_decimals=6,
            base_decimals=18,
            rules=self.rules,
            paused=False,
            shutdown=self.shutdown,
            last_rebalance_time=self.last_rebalance_time,
            nav=max(self.idle + self._base_value(self.spot_base, price) + perp_equity, 0),
            idle=self.idle,
            spot_base=self.spot_base,
            short_size=self.short_size,
            oracle_price_e8=price,
            oracle_updated_at=perp.price_updated_at,
            perp_size=acct.size,
            perp_margin=acct.margin,
            perp_accrued_funding=accrued,
            perp_unrealized_pnl=pnl,
            perp_equity=equity,
            margin_ratio_bps=ratio,
            funding_rate=perp.funding_rate,
            taker_fee_ppm=perp.taker_fee_ppm,
            initial_margin_bps=perp.initial_margin_bps,
            maintenance_margin_bps=perp.maintenance_margin_bps,
            perp_depth=perp.depth,
            perp_mark_price_e8=price,
            pool_reserve_base=pool.reserve_base,
            pool_reserve_asset=pool.reserve_asset,
            pool_fee_bps=pool.fee_bps,
        )

    # ------------------------------------------------------------------ BasisVault.vy

    def _fresh_price(self) -> int:
        require(self.now <= self.perp.price_updated_at + self.rules.max_oracle_age, "vault: stale oracle")
        return self.price

    def _base_value(self, amount: int, price: int) -> int:
        return amount * (price * self.asset_unit) // (self.base_unit * PRICE_UNIT)  # `mul_div`, rounded down

    def _size_value(self, size: int, price: int, round_up: bool) -> int:
        return mul_div(size, price * self.asset_unit, SIZE_UNIT * PRICE_UNIT, round_up)

    def _perp_equity(self) -> int:
        if self.short_size == 0 and self.last_perp_equity == 0:
            return 0
        return self.perp.equity(VAULT)

    def _nav(self, price: int) -> int:
        return max(self.idle + self._base_value(self.spot_base, price) + self._perp_equity(), 0)

    def _settled_margin(self) -> int:
        if self.short_size == 0 and self.last_perp_equity == 0:
            return 0
        acct = self.perp.account(VAULT)
        return max(acct.margin + self.perp.accrued_funding(VAULT), 0)

    def _perp_trade(self, size_delta: int, slippage: int, price: int) -> None:
        if size_delta > 0:
            acceptable = mul_div(price, BPS + slippage, BPS, False)
            require(self.perp.fill_price(size_delta) <= acceptable, "perp: price above acceptable")
        else:
            acceptable = mul_div(price, BPS - slippage, BPS, True)
            require(self.perp.fill_price(size_delta) >= acceptable, "perp: price below acceptable")
        self.perp.modify_position(VAULT, size_delta)

    def _sell_spot(self, amount: int, slippage: int, price: int) -> int:
        if amount == 0 or self.pool.amount_out(True, amount) == 0:
            return 0
        min_out = mul_div(self._base_value(amount, price), BPS - slippage, BPS, True)
        self.spot_base -= amount
        out = self.pool.swap(True, amount, min_out)
        self.idle += out
        return out

    def _buy_spot(self, amount: int, slippage: int, price: int) -> None:
        cost = self.pool.amount_in(True, amount)
        worst = mul_div(self._base_value(amount, price), BPS + slippage, BPS, False)
        require(cost is not None and cost <= worst, "vault: spot slippage")
        assert cost is not None
        require(cost <= self.idle, "vault: idle too low")
        self.idle -= cost
        self.spot_base += self.pool.swap(False, cost, amount)

    def _move_to(self, target_short: int, target_margin: int, slippage: int, price: int) -> None:
        short = self.short_size
        target_base = target_short * self.base_unit // SIZE_UNIT
        spot = self.spot_base
        if target_short < short:
            self._perp_trade(short - target_short, slippage, price)
        if target_base < spot:
            self._sell_spot(spot - target_base, slippage, price)
        margin = self._settled_margin()
        if margin > target_margin:
            self.perp.withdraw_margin(VAULT, margin - target_margin)
            self.idle += margin - target_margin
        elif margin < target_margin:
            amount = target_margin - margin
            require(amount <= self.idle, "vault: idle too low")
            self.idle -= amount
            self.perp.deposit_margin(VAULT, amount)
        if target_base > spot:
            self._buy_spot(target_base - spot, slippage, price)
        if target_short > short:
            self._perp_trade(-(target_short - short), slippage, price)
        self.short_size = target_short
        self.last_perp_equity = self.perp.equity(VAULT)

    def _check_position_rules(self, price: int, nav: int) -> None:
        spot_value = self._base_value(self.spot_base, price)
        short_value = self._size_value(self.short_size, price, False)
        require(abs(spot_value - short_value) * BPS <= nav * self.rules.max_delta_bps, "vault: delta rule")
        if self.short_size != 0:
            equity = self.perp.equity(VAULT)
            require(equity > 0, "vault: perp equity <= 0")
            require(short_value * BPS <= equity * self.rules.max_leverage_bps, "vault: leverage rule")
            ratio = self.perp.margin_ratio_bps(VAULT)
            require(
                ratio is not None and ratio >= self.rules.min_margin_ratio_bps, "vault: margin ratio rule"
            )

    def rebalance(self, target_short: int, target_margin: int, max_slippage: int) -> None:
        """`BasisVault.rebalance`; raises ModelRevert (state then undefined: use a copy)."""
        require(not self.shutdown, "vault: shut down")
        require(max_slippage <= self.rules.max_slippage_bps, "vault: slippage above rule")
        price = self._fresh_price()
        nav_before = self._nav(price)
        self._move_to(target_short, target_margin, max_slippage, price)
        nav_after = self._nav(price)
        if nav_after < nav_before:
            require(
                (nav_before - nav_after) * BPS <= nav_before * self.rules.max_nav_loss_bps,
                "vault: nav loss rule",
            )
        self._check_position_rules(price, nav_after)
        self.last_rebalance_time = self.now

    def emergency_deleverage(self) -> None:
        """`BasisVault.emergency_deleverage`."""
        price = self._fresh_price()
        short = self.short_size
        require(short != 0, "vault: no position")
        ratio = self.perp.margin_ratio_bps(VAULT)
        assert ratio is not None
        rules = self.rules
        require(
            ratio < rules.critical_margin_ratio_bps
            or self.now > self.last_rebalance_time + rules.dead_man_interval,
            "vault: deleverage not allowed",
        )
        require(ratio < rules.min_margin_ratio_bps, "vault: margin ratio healthy")
        target = rules.min_margin_ratio_bps + EMERGENCY_BUFFER_BPS
        notional = self._size_value(short, price, False)
        need = target * notional - BPS * self.perp.equity(VAULT)
        reduce_value = max(need, 0) // (BPS + target) + 1
        reduce = min(short, mul_div(reduce_value, SIZE_UNIT * PRICE_UNIT, price * self.asset_unit, True))
        base_amount = min(self.spot_base, reduce * self.base_unit // SIZE_UNIT)
        self._perp_trade(reduce, rules.max_slippage_bps, price)
        self.short_size = short - reduce
        proceeds = self._sell_spot(base_amount, rules.max_slippage_bps, price)
        if proceeds:
            self.perp.deposit_margin(VAULT, proceeds)
        self.idle -= proceeds
        after = self.perp.margin_ratio_bps(VAULT)
        require(after is not None and after > ratio, "vault: deleverage failed")
        self.last_perp_equity = self.perp.equity(VAULT)

    # ------------------------------------------------------------------ scenario helpers

    def open_hedge(self, leverage: float, slippage: int = 50) -> None:
        """Open (or move to) a hedge at about `leverage` x with a simple split, as a test's
        starting point (not the strategy's sizing)."""
        nav = self._nav(self.price)
        spot_value = int(nav * leverage / (leverage + 1))
        size = spot_value * 9_970 // BPS * SIZE_UNIT * PRICE_UNIT // (self.price * self.asset_unit)
        self.rebalance(size, nav - spot_value, slippage)
