"""Exact models of the reference venue's markets: `SpotPool.vy` and `PerpMarket.vy`, and
the arbitrage that trades the pool back to the oracle.

Units follow the contracts (`keeper.core.fixed`): sizes in 1e18 base units, prices with 8
decimals (`*_e8`), funding rates per second and the mark's premium in 1e18 fixed point,
money in asset wei. Every function reproduces the contract's rounding, so model and chain
agree to the wei.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import isqrt
from typing import Self

from keeper.core.fixed import (
    BPS,
    MAX_FUNDING_RATE,
    MAX_PREMIUM,
    PPM,
    PRICE_DECIMALS,
    PRICE_UNIT,
    RATE_UNIT,
    SIZE_UNIT,
    mark_price,
    mul_div,
    mul_div_signed,
    value,
)
from keeper.core.rules import VenueParams

MINIMUM_LIQUIDITY = 1_000
REFERENCE = VenueParams()  # the reference venue as deployed by default
FUNDING_DENOMINATOR = SIZE_UNIT * RATE_UNIT * PRICE_UNIT


class ModelRevert(Exception):
    """The contract would revert with this reason."""


def rate_per_second(rate_per_hour: float | int) -> int:
    """A decimal hourly funding rate as the contract's 1e18-per-second integer (truncated)."""
    return int(rate_per_hour * RATE_UNIT / 3600)


def arb_trade(
    reserve_base: int,
    reserve_asset: int,
    target_price_e8: int,
    base_unit: int,
    asset_unit: int,
    fee_bps: int,
) -> tuple[bool, int]:
    """The swap that brings a constant-product pool's mid price to `target_price_e8`.

    Returns (base_in, amount_in): sell `amount_in` base when `base_in`, else sell that much
    asset. Solves for the reserves on the same k at the target ratio, grossed up for the fee
    taken off the input. (0 when already there.)
    """
    k = reserve_base * reserve_asset
    target_asset = isqrt(k * target_price_e8 * asset_unit // (base_unit * 10**PRICE_DECIMALS))
    if target_asset > reserve_asset:
        return False, (target_asset - reserve_asset) * BPS // (BPS - fee_bps)
    target_base = k // max(target_asset, 1)
    if target_base > reserve_base:
        return True, (target_base - reserve_base) * BPS // (BPS - fee_bps)
    return False, 0


# ----------------------------------------------------------------------------- spot pool


@dataclass
class SpotPoolModel:
    """`SpotPool.vy`: constant product with the fee taken off the input."""

    reserve_base: int
    reserve_asset: int
    fee_bps: int = 5

    @classmethod
    def seeded(cls, v: VenueParams, price_e8: int) -> Self:
        """The pool as the reference venue's deploy seeds it: `spot_seed_asset` and the base
        that balances it at `price_e8`."""
        asset = v.asset_wei(v.spot_seed_asset)
        return cls(asset * v.base_unit * PRICE_UNIT // (price_e8 * v.asset_unit), asset, v.spot_fee_bps)

    def amount_out(self, base_in: bool, amount_in: int) -> int:
        r_in, r_out = self._reserves(base_in)
        return self._out(r_in, r_out, amount_in)

    def amount_in(self, base_out: bool, amount_out: int) -> int | None:
        """`get_amount_in`; None where the contract returns max_value(uint256)."""
        r_out, r_in = self._reserves(base_out)
        if amount_out == 0:
            return 0
        if amount_out >= r_out:
            return None
        return self._cost(r_in, r_out, amount_out)

    def _reserves(self, base_first: bool) -> tuple[int, int]:
        """(base, asset) reserves when `base_first`, else (asset, base)."""
        if base_first:
            return self.reserve_base, self.reserve_asset
        return self.reserve_asset, self.reserve_base

    def _out(self, r_in: int, r_out: int, amount_in: int) -> int:
        """Uniswap V2 `getAmountOut`: the fee off the input, the output rounded down."""
        in_after_fee = amount_in * (BPS - self.fee_bps)
        return in_after_fee * r_out // (r_in * BPS + in_after_fee)

    def _cost(self, r_in: int, r_out: int, amount_out: int) -> int:
        """Uniswap V2 `getAmountIn`, rounded up (0 < amount_out < r_out)."""
        return mul_div(r_in * BPS, amount_out, (r_out - amount_out) * (BPS - self.fee_bps), True)

    def swap(self, base_in: bool, amount_in: int, min_out: int = 0) -> int:
        if amount_in == 0:
            raise ModelRevert("pool: zero amount")
        out = self.amount_out(base_in, amount_in)
        if out == 0:
            raise ModelRevert("pool: zero output")
        if out < min_out:
            raise ModelRevert("pool: output below minimum")
        curve_in = self._curve_in(amount_in)
        if base_in:
            self.reserve_base += curve_in
            self.reserve_asset -= out
        else:
            self.reserve_asset += curve_in
            self.reserve_base -= out
        return out

    def _curve_in(self, amount_in: int) -> int:
        """What of the input joins the reserves: all of it (the fee stays in the pool)."""
        return amount_in

    def price_e8(self, base_unit: int, asset_unit: int) -> int:
        if self.reserve_base == 0:
            return 0
        return mul_div(self.reserve_asset * base_unit, PRICE_UNIT, self.reserve_base * asset_unit, False)


@dataclass
class UniswapV3FullRangeModel(SpotPoolModel):
    """A full-range Uniswap v3 pool (through `UniswapV3Spot.vy`) on its virtual reserves
    (L / sqrt(P), L * sqrt(P): what the adapter's `get_reserves` answers). Its curve is
    x * y = L**2 with the fee off the input, as `SpotPoolModel`'s, but v3 pays the fee to
    the position (fee growth), not into the curve: the reserves move by the input less the
    fee, so L stays put where the reference pool's k grows. Quotes match the pool's to
    its sqrt-price rounding (wei)."""

    def _out(self, r_in: int, r_out: int, amount_in: int) -> int:
        """v3 `SwapMath` on the curve: the fee comes off first, rounded down (so an input of
        a few wei buys nothing), then x * y on what is left."""
        curve_in = self._curve_in(amount_in)
        return curve_in * r_out // (r_in + curve_in)

    def _cost(self, r_in: int, r_out: int, amount_out: int) -> int:
        """v3's exact-output cost: the curve input rounded up, plus its fee rounded up."""
        curve_in = mul_div(r_in, amount_out, r_out - amount_out, True)
        return curve_in + mul_div(curve_in, self.fee_bps, BPS - self.fee_bps, True)

    def _curve_in(self, amount_in: int) -> int:
        """v3 `SwapMath`: the fee is the input's fee-pips part, paid to the position; only
        the rest moves the price."""
        return amount_in * (BPS - self.fee_bps) // BPS


# ----------------------------------------------------------------------------- perp market


@dataclass
class Account:
    margin: int = 0
    size: int = 0
    cost: int = 0
    funding_entry: int = 0


@dataclass
class PerpModel:
    """`PerpMarket.vy` accounting: funding index, fills, PnL, fees, margin, liquidation.

    `price_e8` is the index (the oracle): funding accrues on it. Fills, PnL, equity,
    margin and liquidation are at the mark, `mark_e8` = index x (1 + `premium`)."""

    asset_unit: int
    price_e8: int
    now: int
    # the market's parameters, by default the reference venue's (`VenueParams`)
    taker_fee_ppm: int = REFERENCE.taker_fee_ppm
    initial_margin_bps: int = REFERENCE.initial_margin_bps
    maintenance_margin_bps: int = REFERENCE.maintenance_margin_bps
    liquidation_fee_bps: int = REFERENCE.liquidation_fee_bps
    depth: int = 0
    max_oracle_age: int = REFERENCE.max_oracle_age
    price_updated_at: int = 0
    funding_rate: int = 0
    premium: int = 0  # the mark's premium over the index, 1e18 = 100 %
    funding_index: int = 0
    last_funding_time: int = 0
    pool_liquidity: int = 0
    accounts: dict[str, Account] = field(default_factory=dict)
    # `withdraw_margin`'s floor (transient storage): per account, (equity + 1, notional)
    # before its first reduction in the current transaction. `in_tx` is set by a caller
    # that runs several market calls as one transaction (`keeper.model.vault`); otherwise
    # every call is its own transaction.
    floors: dict[str, tuple[int, int]] = field(default_factory=dict)
    in_tx: bool = False

    @classmethod
    def deployed(cls, v: VenueParams, price_e8: int, now: int, pool_liquidity: int) -> Self:
        """The market as the reference venue's deploy sets it up (fees, margins, depth, oracle
        age from `v`), at `price_e8` and time `now`, its counterparty pool holding `pool_liquidity`."""
        return cls(
            v.asset_unit,
            price_e8,
            now,
            v.taker_fee_ppm,
            v.initial_margin_bps,
            v.maintenance_margin_bps,
            v.liquidation_fee_bps,
            v.asset_wei(v.depth_asset),
            v.max_oracle_age,
            pool_liquidity=pool_liquidity,
        )

    def __post_init__(self) -> None:
        if self.last_funding_time == 0:
            self.last_funding_time = self.now
        if self.price_updated_at == 0:
            self.price_updated_at = self.now

    def _fresh_price(self) -> None:
        if self.now - self.price_updated_at > self.max_oracle_age:
            raise ModelRevert("perp: stale oracle")

    # -- time, price, funding

    def current_funding_index(self) -> int:
        return self.funding_index + self.funding_rate * (self.now - self.last_funding_time) * self.price_e8

    def accrue(self) -> None:
        if self.now != self.last_funding_time:
            self.funding_index = self.current_funding_index()
            self.last_funding_time = self.now

    def warp(self, seconds: int) -> None:
        self.now += seconds

    def set_price(self, price_e8: int) -> None:
        """The feeder's order: checkpoint funding at the old price, then push the new one."""
        self.accrue()
        self.price_e8 = price_e8
        self.price_updated_at = self.now

    def set_funding_rate(self, rate: int) -> None:
        if abs(rate) > MAX_FUNDING_RATE:
            raise ModelRevert("perp: funding rate above bound")
        self.accrue()
        self.funding_rate = rate

    def set_premium(self, premium: int) -> None:
        """`set_premium`: the mark moves at once; funding (on the index) is not touched."""
        if abs(premium) > MAX_PREMIUM:
            raise ModelRevert("perp: premium out of range")
        self.premium = premium

    @property
    def mark_e8(self) -> int:
        """`mark_price()`: index x (1 + premium), rounded down, 8 decimals."""
        return mark_price(self.price_e8, self.premium)

    # -- views

    def account(self, who: str) -> Account:
        a = self.accounts.get(who)
        if a is None:
            a = self.accounts[who] = Account(funding_entry=self.funding_index)
        return a

    def accrued_funding(self, who: str, index: int | None = None) -> int:
        a = self.account(who)
        if a.size == 0:
            return 0
        idx = self.current_funding_index() if index is None else index
        return mul_div_signed(-a.size, idx - a.funding_entry, FUNDING_DENOMINATOR // self.asset_unit, False)

    def unrealized_pnl(self, who: str) -> int:
        a = self.account(who)
        return value(a.size, self.mark_e8, self.asset_unit, False) - a.cost if a.size else 0

    def equity(self, who: str) -> int:
        """margin + unrealized_pnl (at the mark) + accrued_funding (on the index), one
        account lookup."""
        a = self.account(who)
        size = a.size
        if size == 0:  # no PnL, no funding accrues
            return a.margin
        unit = self.asset_unit
        pnl = value(size, self.mark_e8, unit, False) - a.cost
        index = self.funding_index + self.funding_rate * (self.now - self.last_funding_time) * self.price_e8
        funding = mul_div_signed(-size, index - a.funding_entry, FUNDING_DENOMINATOR // unit, False)
        return a.margin + pnl + funding

    def notional(self, size: int) -> int:
        """|size| at the mark, asset wei (what margin and leverage are measured on)."""
        return abs(value(size, self.mark_e8, self.asset_unit, False))

    def margin_requirement(self, size: int, bps: int) -> int:
        return mul_div(self.notional(size), bps, BPS, True)

    def margin_ratio_bps(self, who: str) -> int | None:
        """None where the contract returns max_value(uint256) (flat account)."""
        a = self.account(who)
        notional = self.notional(a.size)
        if notional == 0:
            return None
        eq = self.equity(who)
        return 0 if eq <= 0 else eq * BPS // notional

    def is_liquidatable(self, who: str) -> bool:
        a = self.account(who)
        return a.size != 0 and self.equity(who) < self.margin_requirement(a.size, self.maintenance_margin_bps)

    def pool_value(self) -> int:
        """`pool_value()`: liquidity minus the open positions' claim (rounded up)."""
        net_size = sum(a.size for a in self.accounts.values())
        total_cost = sum(a.cost for a in self.accounts.values())
        sum_size_entry = sum(a.size * a.funding_entry for a in self.accounts.values())
        claim = value(net_size, self.mark_e8, self.asset_unit, True) - total_cost
        owed = -(net_size * self.current_funding_index() - sum_size_entry)
        claim += mul_div_signed(owed, 1, FUNDING_DENOMINATOR // self.asset_unit, True)
        return self.pool_liquidity - claim

    def fill_price(self, size_delta: int) -> int:
        """`quote_fill_price`: the mark moved against the taker by linear impact."""
        mark = self.mark_e8
        notional = abs(value(size_delta, mark, self.asset_unit, False))
        if size_delta > 0:
            return mul_div(mark, self.depth + notional, self.depth, True)
        if notional >= self.depth:
            raise ModelRevert("perp: trade larger than depth")
        return mul_div(mark, self.depth - notional, self.depth, False)

    # -- state changes

    def _book(self, who: str, amount: int) -> None:
        a = self.account(who)
        if amount > 0:
            if amount > self.pool_liquidity:
                raise ModelRevert("perp: counterparty pool cannot pay")
            self.pool_liquidity -= amount
            a.margin += amount
        elif amount < 0:
            if -amount > a.margin:
                raise ModelRevert("perp: loss exceeds margin")
            a.margin += amount
            self.pool_liquidity -= amount

    def _settle_funding(self, who: str) -> int:
        a = self.account(who)
        amount = self.accrued_funding(who, self.funding_index)
        if a.size != 0:
            self._book(who, amount)
        a.funding_entry = self.funding_index
        return amount

    def deposit_margin(self, who: str, amount: int) -> None:
        if amount == 0:
            raise ModelRevert("perp: zero amount")
        self.accrue()
        self.account(who).margin += amount
        self._settle_funding(who)

    def withdraw_margin(self, who: str, amount: int) -> None:
        if amount == 0:
            raise ModelRevert("perp: zero amount")
        if self.account(who).size != 0:
            self._fresh_price()
        self.accrue()
        self._settle_funding(who)
        a = self.account(who)
        if amount > a.margin:
            raise ModelRevert("perp: amount above margin")
        a.margin -= amount
        if a.size != 0:
            equity = self.equity(who)
            if equity < self.margin_requirement(a.size, self.initial_margin_bps):
                # below initial margin only if the ratio stays >= the one before this
                # transaction's first reduction (equity / notional >= floor_e / floor_n)
                floor = self.floors.get(who) if self.in_tx else None
                floor_e, floor_n = (floor[0] - 1, floor[1]) if floor else (-1, 0)
                if floor_e < 0 or equity <= 0 or equity * floor_n < floor_e * self.notional(a.size):
                    raise ModelRevert("perp: below initial margin")
        if not self.in_tx:
            self.floors.pop(who, None)

    def modify_position(self, who: str, size_delta: int) -> tuple[int, int, int]:
        """Returns (fill_price_e8, fee, realized_pnl)."""
        if size_delta == 0:
            raise ModelRevert("perp: zero size")
        self._fresh_price()
        self.accrue()
        self._settle_funding(who)
        if not self.in_tx:
            self.floors.pop(who, None)
        fill = self.fill_price(size_delta)
        a = self.account(who)
        old_size = a.size
        close_delta = 0
        if old_size != 0 and (old_size > 0) != (size_delta > 0):
            close_delta = size_delta if abs(size_delta) <= abs(old_size) else -old_size
        open_delta = size_delta - close_delta
        realized = closed_cost = notional = 0
        if close_delta:
            floor = self.floors.get(who)
            if floor is None or floor[1] == 0:
                self.floors[who] = (max(self.equity(who), -1) + 1, self.notional(old_size))
            close_value = value(close_delta, fill, self.asset_unit, True)
            closed_cost = a.cost
            if close_delta != -old_size:
                closed_cost = mul_div_signed(a.cost, abs(close_delta), abs(old_size), True)
            realized = -(close_value + closed_cost)
            notional += abs(close_value)
        open_value = value(open_delta, fill, self.asset_unit, True) if open_delta else 0
        notional += abs(open_value)
        fee = mul_div(notional, self.taker_fee_ppm, PPM, True)
        self._book(who, realized - fee)
        a.size = old_size + size_delta
        a.cost = a.cost - closed_cost + open_value
        if open_delta and self.equity(who) < self.margin_requirement(a.size, self.initial_margin_bps):
            raise ModelRevert("perp: below initial margin")
        return fill, fee, realized

    def liquidate(self, who: str) -> tuple[int, int]:
        """Returns (liquidator_fee, bad_debt)."""
        self._fresh_price()
        self.accrue()
        a = self.account(who)
        if a.size == 0:
            raise ModelRevert("perp: no position")
        eq = self.equity(who)
        if eq >= self.margin_requirement(a.size, self.maintenance_margin_bps):
            raise ModelRevert("perp: account not liquidatable")
        notional = self.notional(a.size)
        fee = remaining = bad_debt = 0
        if eq > 0:
            fee = min(eq, notional * self.liquidation_fee_bps // BPS)
            remaining = eq - fee
        else:
            bad_debt = -eq
        pool_delta = a.margin - (remaining + fee)
        if pool_delta < 0 and -pool_delta > self.pool_liquidity:
            raise ModelRevert("perp: counterparty pool cannot pay")
        self.pool_liquidity += pool_delta
        self.accounts[who] = Account(margin=remaining, funding_entry=self.funding_index)
        return fee, bad_debt
