"""`VaultState`: everything the strategy needs from chain, in the contracts' integer units.

The executor fills one from a single batched read per tick; the strategy is a pure
function of it (plus funding views and settings), so after a restart the keeper decides
from chain state alone, never from memory. Each field names the call it comes from.
Units: asset wei (`asset_decimals`), base wei (`base_decimals`), sizes 1e18 = one whole
base unit, prices with 8 decimals (`_e8`), funding 1e18 = 100 % per second, seconds.
The derived values are computed once per state (`cached_property`: the state is frozen).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keeper.core.fixed import (
    BPS,
    PRICE_UNIT,
    SIZE_UNIT,
    TokenUnits,
    cached_property,
    mark_price,
    mul_div,
    value,
)
from keeper.core.rules import VaultRules


@dataclass(frozen=True)
class VaultState(TokenUnits):
    # -- chain
    block_timestamp: int  # the block the reads were made at
    asset_decimals: int  # asset.decimals()
    base_decimals: int  # base.decimals()
    # -- vault (BasisVault) and hedge (BasisHedge)
    rules: VaultRules  # both contracts' immutable getters (max_leverage_bps(), ...)
    paused: bool  # vault.paused(): deposits only; rebalance still works
    shutdown: bool  # vault.is_shutdown()
    last_rebalance_time: int  # hedge.last_rebalance_time()
    nav: int  # vault.totalAssets(): asset wei, net of accrued fees
    idle: int  # vault.idle()
    spot_base: int  # hedge.spot_base(): base wei
    short_size: int  # the venue's short of the hedge now (hedge.short_size() = max(-perp_size, 0)), 1e18
    booked_short: int  # hedge.booked_short(): the short as of the hedge's last touch
    budget_window_start: int  # hedge.budget_window_start()
    budget_nav: int  # hedge.budget_nav()
    budget_spent: int  # hedge.budget_spent()
    # -- oracles (latestRoundData()): the base/USD feed (vault's, hedge's and market's) and
    #    the asset's own USD feed (vault.asset_oracle())
    oracle_price_e8: int
    oracle_updated_at: int
    asset_price_e8: int
    asset_updated_at: int
    # -- perp account (PerpMarket.position(hedge))
    perp_size: int  # signed; -short_size while the hedge is short
    perp_margin: int  # margin, funding not yet settled
    perp_accrued_funding: int  # + = owed to the vault
    perp_unrealized_pnl: int  # at the mark
    perp_equity: int  # margin + PnL + funding
    margin_ratio_bps: int | None  # margin_ratio_bps(vault); None where the market says max (flat)
    # -- perp market
    funding_rate: int  # funding_rate(): 1e18 per second, + = longs pay shorts
    taker_fee_ppm: int  # taker_fee_ppm()
    initial_margin_bps: int  # initial_margin_bps()
    maintenance_margin_bps: int  # maintenance_margin_bps()
    perp_depth: int  # depth(): asset wei of linear price impact
    perp_premium_e18: int  # premium(): the mark's premium over the index, 1e18 = 100 %
    # -- spot pool (SpotPool.get_reserves(), fee_bps())
    pool_reserve_base: int
    pool_reserve_asset: int
    pool_fee_bps: int

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> VaultState:
        """The state from all its fields by name, checked as `__init__` checks it, without
        a frozen dataclass's setattr per field (the model replay builds one a step). Values
        of the derived properties may come along, computed as the properties would."""
        state = object.__new__(cls)
        state.__dict__.update(fields)
        state.__post_init__()
        return state

    def __post_init__(self) -> None:
        if (
            min(
                self.idle,
                self.spot_base,
                self.short_size,
                self.booked_short,
                self.perp_margin,
                self.pool_reserve_base,
                self.pool_reserve_asset,
                self.taker_fee_ppm,
                self.pool_fee_bps,
            )
            >= 0
            and self.oracle_price_e8 > 0
            and self.perp_depth > 0
        ):
            return  # the common case, in one test
        for name in (
            "idle",
            "spot_base",
            "short_size",
            "booked_short",
            "perp_margin",
            "pool_reserve_base",
            "pool_reserve_asset",
            "taker_fee_ppm",
            "pool_fee_bps",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"VaultState.{name} is negative")
        if self.oracle_price_e8 <= 0:
            raise ValueError("VaultState.oracle_price_e8 must be positive")
        if self.perp_depth <= 0:
            raise ValueError("VaultState.perp_depth must be positive")

    # -- oracle

    @cached_property
    def oracle_age(self) -> int:
        return self.block_timestamp - self.oracle_updated_at

    @cached_property
    def oracle_fresh(self) -> bool:
        """The vault's own check: rebalances revert when this is False."""
        return self.block_timestamp <= self.oracle_updated_at + self.rules.max_oracle_age

    # -- valuation at the oracle, as the vault rounds

    def base_value(self, amount: int) -> int:
        """`BasisVault._base_value`: base wei at the oracle, asset wei, rounded down."""
        return amount * (self.oracle_price_e8 * self.asset_unit) // (self.base_unit * PRICE_UNIT)

    def size_value(self, size: int, round_up: bool = False) -> int:
        """`BasisVault._size_value`: a 1e18 size at the oracle, asset wei."""
        product = size * (self.oracle_price_e8 * self.asset_unit)  # `mul_div` inlined
        return -(-product // (SIZE_UNIT * PRICE_UNIT)) if round_up else product // (SIZE_UNIT * PRICE_UNIT)

    @cached_property
    def spot_value(self) -> int:
        return self.base_value(self.spot_base)

    @cached_property
    def short_value(self) -> int:
        return self.size_value(self.short_size)

    @cached_property
    def gross_nav(self) -> int:
        """`BasisVault._nav`: idle + spot + perp equity, before fees, floored at 0 (what
        the NAV-loss rule measures against)."""
        return max(self.idle + self.spot_value + self.perp_equity, 0)

    @cached_property
    def delta(self) -> int:
        """Signed spot value - short value, asset wei."""
        return self.spot_value - self.short_value

    @cached_property
    def delta_bps(self) -> int:
        """|delta| in bps of gross NAV, rounded up (0 for an empty vault)."""
        nav = self.gross_nav
        return 0 if nav == 0 else -(-abs(self.delta) * BPS // nav)

    @cached_property
    def settled_margin(self) -> int:
        """Margin once pending funding settles (`BasisVault._settled_margin`, >= 0)."""
        return max(self.perp_margin + self.perp_accrued_funding, 0)

    @cached_property
    def perp_mark_price_e8(self) -> int:
        """`PerpMarket.mark_price()`: the oracle x (1 + premium), rounded down: the price
        the short fills around and is valued at."""
        return mark_price(self.oracle_price_e8, self.perp_premium_e18)

    @cached_property
    def perp_cost(self) -> int:
        """The position's signed cost as the market books it, recovered exactly from the
        view: unrealised PnL = value(size, mark, rounded down) - cost."""
        size_value = value(self.perp_size, self.perp_mark_price_e8, self.asset_unit, False)
        return size_value - self.perp_unrealized_pnl

    @property
    def liquidated(self) -> bool:
        """The venue cut the short below what the hedge booked (a liquidation); the next
        hedge call (or `sync()`) books it."""
        return self.booked_short > self.short_size

    @cached_property
    def budget_left(self) -> int | None:
        """Asset wei of NAV the keeper's rebalances may still lose in the current budget
        window, or None when the window has expired (the next charged call opens a new one
        with `keeper_loss_budget_bps` of the NAV then)."""
        if self.block_timestamp >= self.budget_window_start + 86_400:  # KEEPER_BUDGET_WINDOW
            return None
        allowed = self.budget_nav * self.rules.keeper_loss_budget_bps // BPS
        return max(allowed - self.budget_spent, 0)

    @cached_property
    def budget_allowance(self) -> int:
        """The most one charged rebalance may lose now, asset wei: `budget_left`, or a
        whole new window's budget at the gross NAV."""
        left = self.budget_left
        if left is None:
            return self.gross_nav * self.rules.keeper_loss_budget_bps // BPS
        return left

    @property
    def parked(self) -> bool:
        """No hedge open: what the strategy reads instead of remembering it parked."""
        return self.short_size == 0

    # -- spot pool

    @cached_property
    def pool_price_e8(self) -> int:
        """The pool's mid price (asset per base), 8 decimals, as `SpotPool.price_e8()`."""
        if self.pool_reserve_base == 0:
            return 0
        return mul_div(
            self.pool_reserve_asset * self.base_unit,
            PRICE_UNIT,
            self.pool_reserve_base * self.asset_unit,
            False,
        )

    @cached_property
    def pool_dislocation_bps(self) -> int:
        """(pool mid - oracle) / oracle, signed bps, rounded away from zero."""
        diff = self.pool_price_e8 - self.oracle_price_e8
        mag = -(-abs(diff) * BPS // self.oracle_price_e8)
        return mag if diff >= 0 else -mag

    @cached_property
    def basis_bps(self) -> int:
        """(perp marginal price - spot pool mid) / oracle, signed bps: positive means the
        perp trades rich to spot, which an entry (buy spot, sell perp) locks in."""
        diff = self.perp_mark_price_e8 - self.pool_price_e8
        mag = abs(diff) * BPS // self.oracle_price_e8
        return mag if diff >= 0 else -mag
