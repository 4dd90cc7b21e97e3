"""An exact model of `BasisVault.vy`'s share accounting: NAV, fee accrual, conversions,
entries and exits from idle.

What the vault does on the venue (rebalances, unwinding exits, emergency deleverage,
shutdown) depends on fills the venue models compute; callers apply those to the books
with `sync_books` after the fact, and the model keeps the share side (supply, balances,
fees, high-water mark) itself. Every function reproduces the contract's rounding, so
model and chain agree to the wei: the state-machine test compares them after every step,
and the keeper and the replay's model mode read NAV and share price from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keeper.model.venue import PRICE_UNIT, ModelRevert, mul_div

BPS = 10_000
YEAR = 365 * 86_400
PPS_UNIT = 10**18
DECIMALS_OFFSET = 6
VIRTUAL_SHARES = 10**DECIMALS_OFFSET


@dataclass
class AccountingModel:
    """The share side of one vault. Money in asset wei, spot in base wei, short in 1e18."""

    asset_unit: int
    base_unit: int
    last_fee_time: int
    fee_recipient: str | None = None
    management_fee_bps: int = 0
    performance_fee_bps: int = 0
    idle: int = 0
    spot_base: int = 0
    short_size: int = 0
    last_perp_equity: int = 0
    high_water_mark: int = PPS_UNIT // VIRTUAL_SHARES  # the constructor's starting mark
    balances: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------------ valuation

    @property
    def supply(self) -> int:
        return sum(self.balances.values())

    def base_value(self, amount: int, price_e8: int) -> int:
        return mul_div(amount, price_e8 * self.asset_unit, self.base_unit * PRICE_UNIT, False)

    def gross_nav(self, price_e8: int, perp_equity: int) -> int:
        """`_nav`: idle + spot at the oracle + perp equity (read only while a position or
        its last snapshot exists), floored at zero; before fees."""
        has_perp = self.short_size != 0 or self.last_perp_equity != 0
        nav = self.idle + self.base_value(self.spot_base, price_e8) + (perp_equity if has_perp else 0)
        return max(nav, 0)

    def pending_fees(self, nav: int, now: int) -> tuple[int, int, int]:
        """`_pending_fees`: (fee shares, management assets, performance assets)."""
        supply = self.supply
        if supply == 0 or nav == 0:
            return 0, 0, 0
        management = min(nav * self.management_fee_bps * (now - self.last_fee_time) // (BPS * YEAR), nav)
        performance = 0
        if self.performance_fee_bps:
            pps = mul_div(nav - management + 1, PPS_UNIT, supply + VIRTUAL_SHARES, False)
            if pps > self.high_water_mark:
                gain = mul_div(pps - self.high_water_mark, supply + VIRTUAL_SHARES, PPS_UNIT, False)
                performance = gain * self.performance_fee_bps // BPS
        fees = management + performance
        if fees == 0 or fees >= nav:
            return 0, management, performance
        return mul_div(fees, supply + VIRTUAL_SHARES, nav - fees + 1, False), management, performance

    def net_nav(self, nav: int, now: int) -> int:
        """`totalAssets()` at gross NAV `nav`."""
        _, management, performance = self.pending_fees(nav, now)
        return nav - management - performance

    def accrue(self, nav: int, now: int) -> int:
        """`_accrue_fees` at gross NAV `nav`: mints fee shares, moves the high-water mark,
        returns the supply to price against."""
        shares, _, _ = self.pending_fees(nav, now)
        self.last_fee_time = now
        if shares and self.fee_recipient is not None:
            self._credit(self.fee_recipient, shares)
        supply = self.supply
        if supply:
            self.high_water_mark = max(
                self.high_water_mark, mul_div(nav + 1, PPS_UNIT, supply + VIRTUAL_SHARES, False)
            )
        return supply

    def to_shares(self, assets: int, nav: int, supply: int, round_up: bool) -> int:
        return mul_div(assets, supply + VIRTUAL_SHARES, nav + 1, round_up)

    def to_assets(self, shares: int, nav: int, supply: int, round_up: bool) -> int:
        return mul_div(shares, nav + 1, supply + VIRTUAL_SHARES, round_up)

    # ------------------------------------------------------------------ entries and exits

    def deposit(self, who: str, assets: int, nav: int, now: int) -> int:
        if assets == 0:
            raise ModelRevert("vault: zero assets")
        shares = self.to_shares(assets, nav, self.accrue(nav, now), False)
        if shares == 0:
            raise ModelRevert("vault: zero shares")
        self.idle += assets
        self._credit(who, shares)
        return shares

    def mint(self, who: str, shares: int, nav: int, now: int) -> int:
        if shares == 0:
            raise ModelRevert("vault: zero shares")
        assets = self.to_assets(shares, nav, self.accrue(nav, now), True)
        self.idle += assets
        self._credit(who, shares)
        return assets

    def redeem_from_idle(self, who: str, shares: int, nav: int, now: int) -> int | None:
        """`redeem` when idle covers the assets: returns them; None when the vault would
        unwind instead (the caller then applies the fills with `burn` + `sync_books`)."""
        assets = self.to_assets(shares, nav, self.accrue(nav, now), False)
        if assets > self.idle:
            return None
        if assets == 0:
            raise ModelRevert("vault: zero assets")
        self.idle -= assets
        self.burn(who, shares)
        return assets

    def withdraw_from_idle(self, who: str, assets: int, nav: int, now: int) -> int | None:
        """`withdraw` when idle covers `assets`: returns the shares burned, else None."""
        supply = self.accrue(nav, now)
        if assets > self.idle:
            return None
        shares = self.to_shares(assets, nav, supply, True)
        self.idle -= assets
        self.burn(who, shares)
        return shares

    def transfer(self, src: str, dst: str, shares: int) -> None:
        self.burn(src, shares)
        self._credit(dst, shares)

    def burn(self, who: str, shares: int) -> None:
        balance = self.balances.get(who, 0)
        if shares > balance:
            raise ModelRevert("erc20: burn amount exceeds balance")
        self.balances[who] = balance - shares

    def sync_books(self, idle: int, spot_base: int, short_size: int, last_perp_equity: int) -> None:
        """Take the books as the venue left them after a rebalance or an unwind."""
        self.idle, self.spot_base, self.short_size = idle, spot_base, short_size
        self.last_perp_equity = last_perp_equity

    def _credit(self, who: str, shares: int) -> None:
        self.balances[who] = self.balances.get(who, 0) + shares
