"""The one exact model of a vault: `BasisVault.vy` (shares, fees, entries, exits) and its
`BasisHedge.vy` (spot leg, perp account, rebalance, emergency deleverage, unwind steps,
exit slices, liquidation booking, the keeper's loss budget), on the venue models of
`keeper.model.markets`.

Transcribed call by call from the two contracts with the same integer rounding and the
same revert reasons ("vault: ...", "hedge: ...", and the venue's "perp: ..."). A call
that reverts raises `ModelRevert`; the model is then in an undefined state, so callers
that go on after a revert work on a `copy()`.

Three users, one code path:
- the strategy and planner (`from_state`: the model rebuilt from a `VaultState`; the
  perp account's pending funding is settled into margin up front, which is exactly what
  the first touch books, and the counterparty pool is assumed able to pay);
- the replay's model backend and the offline tests (`BasisModel.new`: a whole world that
  moves in time, with deposits, exits, liquidations);
- the hypothesis state machine, which drives it beside the contracts on anvil.

Units: asset wei, base wei (spot), sizes 1e18 = one whole base unit, prices 8 decimals.

Prices: spot at the oracle (the perp model's index, `price`); the short at the venue's mark
(`perp.mark_e8` = index x (1 + premium)): its equity in NAV, its fills bounded against it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from keeper.core.fixed import BPS, PPM, PRICE_UNIT, SIZE_UNIT, mark_price, mul_div, mul_div_signed, value
from keeper.core.rules import VaultRules
from keeper.core.state import VaultState
from keeper.model.markets import FUNDING_DENOMINATOR, ModelRevert, PerpModel, SpotPoolModel, arb_trade

HEDGE = "hedge"  # the hedge's account at the perp model
EMERGENCY_BUFFER_BPS = 200  # BasisHedge.EMERGENCY_BUFFER_BPS
KEEPER_BUDGET_WINDOW = 86_400  # BasisHedge.KEEPER_BUDGET_WINDOW
MARGIN_SLACK = 8  # BasisHedge._MARGIN_SLACK
EXIT_ROUNDING = 10  # BasisVault.EXIT_ROUNDING
YEAR = 365 * 86_400
PPS_UNIT = 10**18
DECIMALS_OFFSET = 6
VIRTUAL_SHARES = 10**DECIMALS_OFFSET
_UNLIMITED = 10**40  # counterparty pool liquidity of a model rebuilt from a state
_SIZE_PRICE = SIZE_UNIT * PRICE_UNIT
_MAX_RATIO = 2**256 - 1  # the market's margin ratio of a flat account


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise ModelRevert(reason)


@dataclass(frozen=True)
class Outcome:
    """The hedge and vault after a modelled hedge call. Money in asset wei, sizes 1e18,
    base in base wei."""

    idle: int
    spot_base: int
    short_size: int  # the venue's short after
    settled_margin: int
    perp_equity: int
    margin_ratio_bps: int | None  # None when flat
    nav_before: int  # gross NAV the call measured its loss against
    nav_after: int
    spot_value: int
    short_value: int
    pool_reserve_base: int
    pool_reserve_asset: int
    perp_fees: int  # taker fees paid
    worst_fill_bps: int  # the worst fill of any leg against its reference (spot: oracle, perp: mark), bps
    risk_reducing: bool = False  # the call started outside the rules: not charged to the budget
    budget_left: int | None = None  # loss the budget still allowed before the call (None: a new window)
    perp_notional: int = 0  # the market's notional of the position after (what the leverage rule reads)

    @property
    def cost(self) -> int:
        """NAV lost (negative: gained), asset wei."""
        return self.nav_before - self.nav_after

    @property
    def delta(self) -> int:
        return abs(self.spot_value - self.short_value)


def _adverse_bps(worse_by: int, reference: int) -> int:
    """How far a fill is from the oracle value against the vault, bps rounded up (0 if better)."""
    if worse_by <= 0 or reference <= 0:
        return 0
    return -(-worse_by * BPS // reference)


class BasisModel:
    """A vault, its hedge, the hedge's spot pool and perp market, and the asset's feed.

    The scalar books start at their class defaults below (a model rebuilt from a state
    for every candidate the planner prices sets only what the state says)."""

    # -- the asset's own USD feed
    asset_price_e8: int = PRICE_UNIT
    asset_updated_at: int = 0
    # -- BasisVault
    idle: int = 0
    supply: int = 0
    is_shutdown: bool = False
    paused: bool = False
    deposit_cap: int = 0
    management_fee_bps: int = 0
    performance_fee_bps: int = 0
    fee_recipient: str | None = None
    last_fee_time: int = 0
    high_water_mark: int = PPS_UNIT // VIRTUAL_SHARES
    last_valid_price: int = 0
    # -- BasisHedge
    spot_base: int = 0
    booked_short: int = 0
    booked_equity: int = 0
    account_open: bool = False
    last_rebalance_time: int = 0
    budget_window_start: int = 0
    budget_nav: int = 0
    budget_spent: int = 0
    # -- what the modelled calls did (for the strategy's checks and the replay)
    deficit: int = 0  # funding owed above the margin (a state-rebuilt model only)
    perp_fees: int = 0
    worst_fill_bps: int = 0
    _after: tuple[int, int, int, int | None] = (0, 0, 0, None)  # the position after a rebalance

    def __init__(
        self,
        perp: PerpModel,
        pool: SpotPoolModel,
        rules: VaultRules,
        asset_unit: int = 10**6,
        base_unit: int = 10**18,
    ) -> None:
        self.perp = perp
        self.pool = pool
        self.rules = rules
        self.asset_unit = asset_unit
        self.base_unit = base_unit
        self.asset_updated_at = perp.now
        self.balances: dict[str, int] = {}
        self.deposit_cap = rules.deposit_cap_ceiling
        self.last_fee_time = perp.now
        self.last_rebalance_time = perp.now
        self.liquidations: list[tuple[int, int, int, int]] = []  # LiquidationBooked events

    # ================================================================== set-up

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
    ) -> BasisModel:
        """A fresh vault on the reference venue (`keeper.core.rules.VenueParams`'s shape)."""
        perp = PerpModel(
            asset_unit=10**6,
            price_e8=price_e8,
            now=now,
            taker_fee_ppm=taker_fee_ppm,
            depth=depth,
            pool_liquidity=10**30,
        )
        pool_base = pool_asset * 10**18 * PRICE_UNIT // (price_e8 * 10**6)
        return cls(perp, SpotPoolModel(pool_base, pool_asset, pool_fee_bps), rules or VaultRules())

    @classmethod
    def from_state(cls, state: VaultState) -> BasisModel:
        """The model at a keeper's `VaultState` (time does not move in it)."""
        perp = PerpModel(
            asset_unit=state.asset_unit,
            price_e8=state.oracle_price_e8,
            now=state.block_timestamp,
            taker_fee_ppm=state.taker_fee_ppm,
            initial_margin_bps=state.initial_margin_bps,
            maintenance_margin_bps=state.maintenance_margin_bps,
            depth=state.perp_depth,
            # the hedge's own oracle rule is the stricter one and is checked separately
            max_oracle_age=10**12,
            price_updated_at=state.oracle_updated_at,
            funding_rate=state.funding_rate,
            premium=state.perp_premium_e18,
            pool_liquidity=_UNLIMITED,
        )
        m = cls.__new__(cls)
        m.perp = perp
        m.pool = SpotPoolModel(state.pool_reserve_base, state.pool_reserve_asset, state.pool_fee_bps)
        m.rules = state.rules
        m.asset_unit = state.asset_unit
        m.base_unit = state.base_unit
        m.balances = {}
        m.liquidations = []
        account = perp.account(HEDGE)
        account.size = state.perp_size
        account.cost = state.perp_cost
        # Funding settles on the first touch; booking it now is what that touch books.
        # A funding debt above the margin makes every perp call but a top-up revert.
        settled = state.perp_margin + state.perp_accrued_funding
        m.deficit = max(-settled, 0)
        account.margin = max(settled, 0)
        m.idle = state.idle
        m.is_shutdown = state.shutdown
        m.paused = state.paused
        m.spot_base = state.spot_base
        m.booked_short = state.booked_short
        # the hedge books the account open whenever it last saw size or margin there;
        # the venue cannot add either behind its back, so "open" = the venue holds some
        # (or the hedge booked a short the venue has since liquidated)
        m.account_open = bool(state.perp_size or state.perp_margin or state.booked_short)
        m.booked_equity = state.perp_equity if m.account_open else 0
        m.last_rebalance_time = state.last_rebalance_time
        m.budget_window_start = state.budget_window_start
        m.budget_nav = state.budget_nav
        m.budget_spent = state.budget_spent
        m.asset_price_e8 = state.asset_price_e8
        m.asset_updated_at = state.asset_updated_at
        return m

    def copy(self) -> BasisModel:
        return copy.deepcopy(self)

    # ================================================================== world

    @property
    def now(self) -> int:
        return self.perp.now

    @property
    def price(self) -> int:
        return self.perp.price_e8

    def warp(self, seconds: int) -> None:
        self.perp.warp(seconds)

    def push_price(self, price_e8: int) -> None:
        """The feeder: checkpoint funding, then the new answer, stamped now."""
        self.perp.set_price(price_e8)

    def push_asset_price(self, price_e8: int = PRICE_UNIT) -> None:
        self.asset_price_e8 = price_e8
        self.asset_updated_at = self.perp.now

    def set_funding_rate(self, rate: int) -> None:
        self.perp.set_funding_rate(rate)

    def set_premium(self, premium: int) -> None:
        """The operator moves the perp's mark off the index (1e18 = 100 %)."""
        self.perp.set_premium(premium)

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

    def liquidate(self) -> tuple[int, int]:
        """A liquidator calls `PerpMarket.liquidate(hedge)`: (liquidator fee, bad debt)."""
        return self.perp.liquidate(HEDGE)

    def liquidatable(self) -> bool:
        return self.perp.is_liquidatable(HEDGE)

    # ================================================================== views

    def state(self, *, paused: bool | None = None) -> VaultState:
        """What the keeper reads from chain, field by field (the account read once)."""
        perp, pool = self.perp, self.pool
        acct = perp.account(HEDGE)
        price = perp.price_e8
        size = acct.size
        if size == 0:
            accrued = pnl = 0
            ratio = None
        else:
            unit = perp.asset_unit
            index = perp.funding_index + perp.funding_rate * (perp.now - perp.last_funding_time) * price
            accrued = mul_div_signed(-size, index - acct.funding_entry, FUNDING_DENOMINATOR // unit, False)
            size_value = value(size, perp.mark_e8, unit, False)
            pnl = size_value - acct.cost
            notional = abs(size_value)
        equity = acct.margin + pnl + accrued
        if size != 0:
            ratio = None if notional == 0 else (0 if equity <= 0 else equity * BPS // notional)
        spot_value = self._base_value(self.spot_base, price)
        gross = max(self.idle + spot_value + (equity if self.account_open else 0), 0)
        _, management, performance = self._pending_fees(gross, self.supply)
        short = self._venue_short()
        short_value = self._size_value(short, price, False)
        gross_nav = max(self.idle + spot_value + equity, 0)
        delta = spot_value - short_value
        pool_price = pool.price_e8(self.base_unit, self.asset_unit)
        dislocation = -(-abs(pool_price - price) * BPS // price)
        mark = mark_price(price, perp.premium)
        basis = abs(mark - pool_price) * BPS // price
        return VaultState.from_fields(
            {
                # derived values the state would compute on first read, as it computes them
                # (tests/replay/test_honesty.py checks they match a state built plainly)
                "asset_unit": self.asset_unit,
                "base_unit": self.base_unit,
                "spot_value": spot_value,
                "short_value": short_value,
                "gross_nav": gross_nav,
                "delta": delta,
                "delta_bps": 0 if gross_nav == 0 else -(-abs(delta) * BPS // gross_nav),
                "settled_margin": max(acct.margin + accrued, 0),
                "oracle_age": perp.now - perp.price_updated_at,
                "oracle_fresh": perp.now <= perp.price_updated_at + self.rules.max_oracle_age,
                "pool_price_e8": pool_price,
                "pool_dislocation_bps": dislocation if pool_price >= price else -dislocation,
                "basis_bps": basis if mark >= pool_price else -basis,
                "perp_mark_price_e8": mark,
                "block_timestamp": perp.now,
                "asset_decimals": len(str(self.asset_unit)) - 1,
                "base_decimals": len(str(self.base_unit)) - 1,
                "rules": self.rules,
                "paused": self.paused if paused is None else paused,
                "shutdown": self.is_shutdown,
                "last_rebalance_time": self.last_rebalance_time,
                "nav": gross - management - performance,
                "idle": self.idle,
                "spot_base": self.spot_base,
                "short_size": short,
                "booked_short": self.booked_short,
                "budget_window_start": self.budget_window_start,
                "budget_nav": self.budget_nav,
                "budget_spent": self.budget_spent,
                "oracle_price_e8": price,
                "oracle_updated_at": perp.price_updated_at,
                "asset_price_e8": self.asset_price_e8,
                "asset_updated_at": self.asset_updated_at,
                "perp_size": size,
                "perp_margin": acct.margin,
                "perp_accrued_funding": accrued,
                "perp_unrealized_pnl": pnl,
                "perp_equity": equity,
                "margin_ratio_bps": ratio,
                "funding_rate": perp.funding_rate,
                "taker_fee_ppm": perp.taker_fee_ppm,
                "initial_margin_bps": perp.initial_margin_bps,
                "maintenance_margin_bps": perp.maintenance_margin_bps,
                "perp_depth": perp.depth,
                "perp_premium_e18": perp.premium,
                "pool_reserve_base": pool.reserve_base,
                "pool_reserve_asset": pool.reserve_asset,
                "pool_fee_bps": pool.fee_bps,
            }
        )

    def outcome(
        self,
        nav_before: int,
        risk_reducing: bool = False,
        budget_left: int | None = None,
        pos: tuple[int, int, int, int | None] | None = None,
    ) -> Outcome:
        """The books after a modelled hedge call (the hedge's and the market's views);
        `pos`: the position as the call's last snapshot read it (saves a read)."""
        if not self.account_open:
            size, settled, equity, ratio = 0, 0, 0, None
        else:
            size, settled, equity, ratio = self._view() if pos is None else pos
        price = self.price
        spot_value = self._base_value(self.spot_base, price)
        short = -size if size < 0 else 0
        # built as `keeper.data.records.frozen_record` builds records (a planned move runs
        # this for every candidate it prices)
        outcome = object.__new__(Outcome)
        outcome.__dict__.update(
            idle=self.idle,
            spot_base=self.spot_base,
            short_size=short,
            settled_margin=settled,
            perp_equity=equity,
            margin_ratio_bps=ratio,
            nav_before=nav_before,
            nav_after=max(self.idle + spot_value + equity, 0),
            spot_value=spot_value,
            short_value=self._size_value(short, price, False),
            pool_reserve_base=self.pool.reserve_base,
            pool_reserve_asset=self.pool.reserve_asset,
            perp_fees=self.perp_fees,
            worst_fill_bps=self.worst_fill_bps,
            risk_reducing=risk_reducing,
            budget_left=budget_left,
            perp_notional=self.perp.notional(size) if size else 0,
        )
        return outcome

    # ================================================================== BasisHedge.vy

    # ---------------------------------------------------------------- books

    def _view(self) -> tuple[int, int, int, int | None]:
        """`perp_market.position(hedge)` as the hedge reads it: (size, settled margin =
        max(margin + accrued funding, 0), equity, margin ratio bps or None when flat)."""
        perp = self.perp
        a = perp.account(HEDGE)
        size = a.size
        if size == 0:
            return 0, max(a.margin, 0), a.margin, None
        price, unit = perp.price_e8, perp.asset_unit
        index = perp.funding_index + perp.funding_rate * (perp.now - perp.last_funding_time) * price
        accrued = mul_div_signed(-size, index - a.funding_entry, FUNDING_DENOMINATOR // unit, False)
        size_value = value(size, perp.mark_e8, unit, False)
        equity = a.margin + size_value - a.cost + accrued
        notional = abs(size_value)
        ratio = None if notional == 0 else (0 if equity <= 0 else equity * BPS // notional)
        return size, max(a.margin + accrued, 0), equity, ratio

    def _position(self) -> tuple[int, int, int, int | None]:
        """`_position()`: the venue's view, all zero while no account is open."""
        if not self.account_open:
            return 0, 0, 0, 0
        return self._view()

    def _book(self, pos: tuple[int, int, int, int | None]) -> None:
        size = pos[0]
        self.booked_short = -size if size < 0 else 0
        self.account_open = size != 0 or self.perp.account(HEDGE).margin != 0
        self.booked_equity = pos[2]

    def _sync(self) -> tuple[int, int, int, int | None]:
        pos = self._position()
        size = pos[0]
        short = -size if size < 0 else 0
        if short < self.booked_short:
            self.liquidations.append((self.booked_short, short, self.booked_equity, pos[2]))
            self._book(pos)
        return pos

    def _snapshot(self) -> tuple[int, int, int, int | None]:
        pos = self._view()
        self._book(pos)
        return pos

    def _account_open(self) -> bool:
        return self.account_open

    def _venue_short(self) -> int:
        if not self.account_open:
            return 0
        size = self.perp.account(HEDGE).size
        return -size if size < 0 else 0

    def _charge_budget(self, loss: int, nav: int) -> None:
        spent, base_nav = loss, nav
        if self.now < self.budget_window_start + KEEPER_BUDGET_WINDOW:
            spent += self.budget_spent
            base_nav = self.budget_nav
        else:
            self.budget_window_start = self.now
        allowed = base_nav * self.rules.keeper_loss_budget_bps
        require(spent * BPS <= allowed, "hedge: keeper loss budget spent")
        self.budget_nav = base_nav
        self.budget_spent = spent

    def budget_left(self) -> int | None:
        """Loss the keeper may still charge in the current window (None: the next charged
        call opens a new window, with `keeper_loss_budget_bps` of the NAV then)."""
        if self.now >= self.budget_window_start + KEEPER_BUDGET_WINDOW:
            return None
        return max(self.budget_nav * self.rules.keeper_loss_budget_bps // BPS - self.budget_spent, 0)

    # ---------------------------------------------------------------- oracle, valuation

    def _hedge_fresh_price(self) -> int:
        require(self.now <= self.perp.price_updated_at + self.rules.max_oracle_age, "hedge: stale oracle")
        return self.perp.price_e8

    def _base_value(self, amount: int, price: int) -> int:
        return amount * (price * self.asset_unit) // (self.base_unit * PRICE_UNIT)

    def _size_value(self, size: int, price: int, round_up: bool) -> int:
        product = size * (price * self.asset_unit)
        return -(-product // _SIZE_PRICE) if round_up else product // _SIZE_PRICE

    def _perp_equity(self) -> int:
        if not self.account_open:
            return 0
        return self.perp.equity(HEDGE)

    def _nav_of(self, idle: int, spot: int, equity: int, price: int) -> int:
        return max(idle + self._base_value(spot, price) + equity, 0)

    def _settled_margin(self) -> int:
        return self._position()[1]

    def _within_rules(self, spot: int, pos: tuple[int, int, int, int | None], price: int, nav: int) -> bool:
        size = pos[0]
        spot_value = self._base_value(spot, price)
        short_value = self._size_value(-size if size < 0 else 0, price, False)
        if abs(spot_value - short_value) * BPS > nav * self.rules.max_delta_bps:
            return False
        ratio = pos[3]
        return size == 0 or ratio is None or ratio >= self.rules.min_margin_ratio_bps

    def value(self, price: int) -> int:
        """`BasisHedge.value(price)`."""
        return self._base_value(self.spot_base, price) + self._perp_equity()

    def active(self) -> bool:
        return self.spot_base != 0 or self.account_open

    @property
    def short_size(self) -> int:
        """`BasisHedge.short_size()`: the venue's short now."""
        return self._venue_short()

    def exit_cost_bound(self, price: int) -> int:
        # the short at the mark: the venue's notional of it (rounded up for a short)
        short_value = self._size_value(self._venue_short(), self.perp.mark_e8, True)
        spot_value = self._base_value(self.spot_base, price)
        fee_ppm = self.perp.taker_fee_ppm if short_value else 0
        slippage = (spot_value + short_value) * self.rules.max_slippage_bps // BPS + 1
        return slippage + short_value * fee_ppm // PPM + 1 + 4 + MARGIN_SLACK

    # ---------------------------------------------------------------- legs

    def _touch_perp(self) -> None:
        if self.deficit:
            raise ModelRevert("perp: loss exceeds margin")

    def _perp_trade(self, size_delta: int, slippage: int) -> None:
        """Bounded against the venue's mark: a premium is a price, not slippage."""
        self._touch_perp()
        perp = self.perp
        mark = perp.mark_e8
        if size_delta > 0:
            acceptable = mul_div(mark, BPS + slippage, BPS, False)
        else:
            acceptable = mul_div(mark, BPS - slippage, BPS, True)
        perp._fresh_price()
        fill = perp.fill_price(size_delta)
        if size_delta > 0:
            require(fill <= acceptable, "perp: price above acceptable")
        else:
            require(fill >= acceptable, "perp: price below acceptable")
        _, fee, _ = perp.modify_position(HEDGE, size_delta)
        self.perp_fees += fee
        worse = fill - mark if size_delta > 0 else mark - fill
        self.worst_fill_bps = max(self.worst_fill_bps, _adverse_bps(worse, mark))

    def _below_initial_margin(self, pos: tuple[int, int, int, int | None], withdrawal: int) -> bool:
        """Whether withdrawing `withdrawal` leaves the position below initial margin."""
        perp = self.perp
        required = mul_div(perp.notional(pos[0]), perp.initial_margin_bps, BPS, True)
        return pos[2] - withdrawal < required

    def _withdraw_margin(self, amount: int) -> None:
        self._touch_perp()
        self.perp.withdraw_margin(HEDGE, amount)

    def _sell_spot(self, amount: int, slippage: int, price: int) -> int:
        if amount == 0:
            return 0
        if self.pool.amount_out(True, amount) == 0:
            # unsellable dust worth nothing at the oracle either leaves the book
            if self._base_value(amount, price) == 0:
                self.spot_base -= amount
            return 0
        fair = self._base_value(amount, price)
        min_out = mul_div(fair, BPS - slippage, BPS, True)
        self.spot_base -= amount
        out = self.pool.swap(True, amount, min_out)
        self.worst_fill_bps = max(self.worst_fill_bps, _adverse_bps(fair - out, fair))
        return out

    def _buy_spot(self, amount: int, cost: int, slippage: int, price: int) -> None:
        fair = self._base_value(amount, price)
        worst = mul_div(fair, BPS + slippage, BPS, False)
        require(cost <= worst, "hedge: spot slippage")
        self.spot_base += self.pool.swap(False, cost, amount)
        self.worst_fill_bps = max(self.worst_fill_bps, _adverse_bps(cost - fair, fair))

    def _deposit_margin(self, amount: int) -> None:
        if amount == 0:
            return
        # The market credits a top-up before it settles funding, so it can cure a deficit.
        if amount <= self.deficit:
            raise ModelRevert("perp: loss exceeds margin")
        self.perp.deposit_margin(HEDGE, amount - self.deficit)
        self.deficit = 0
        self.account_open = True

    def _move_to(
        self,
        pos: tuple[int, int, int, int | None],
        target_short: int,
        target_margin: int,
        slippage: int,
        price: int,
        idle: int,
        relaxed: bool = False,
    ) -> int:
        """`BasisHedge._move_to`: borrows from idle only what the cash freed on the way
        does not cover; returns the vault's idle after. `relaxed` (the planner's pricing
        run, before a margin is chosen): idle may go negative and a margin top-up is
        credited before the legs; the fills, fees and PnL are the same, but a reduction
        whose realised loss exceeds the old margin does not stop the run."""
        size = pos[0]
        short = -size if size < 0 else 0
        target_base = target_short * self.base_unit // SIZE_UNIT
        spot = self.spot_base
        held = 0
        early = 0
        if relaxed and target_margin > pos[1]:
            early = target_margin - pos[1]
            self._deposit_margin(early)
            pos = self._view()
        if target_short < short:
            self._perp_trade(short - target_short, slippage)
        if target_base < spot:
            held += self._sell_spot(spot - target_base, slippage, price)
        margin = pos[1]
        if target_short < short:
            margin = self._view()[1]
        need = 0
        if margin > target_margin:
            self._withdraw_margin(margin - target_margin)
            held += margin - target_margin
        else:
            need = target_margin - margin
        buy_cost = 0
        if target_base > spot:
            quote = self.pool.amount_in(True, target_base - spot)
            buy_cost = 2**256 - 1 if quote is None else quote
            need += buy_cost
        lent = 0
        if need > held:
            lent = need - held
            require(relaxed or lent <= idle, "hedge: idle too low")
            held = need
        if margin < target_margin:
            held -= target_margin - margin
            self._deposit_margin(target_margin - margin)
        if target_base > spot:
            held -= buy_cost
            self._buy_spot(target_base - spot, buy_cost, slippage, price)
        if target_short > short:
            self._perp_trade(-(target_short - short), slippage)
        return idle - lent + held - early

    # ---------------------------------------------------------------- calls

    def _begin(self) -> None:
        self.perp.in_tx = True
        self.perp.floors.clear()
        self.perp_fees = 0
        self.worst_fill_bps = 0

    def _end(self) -> None:
        self.perp.in_tx = False
        self.perp.floors.clear()

    def rebalance_trades(
        self, target_short: int, target_margin: int, max_slippage: int, *, relaxed: bool = False
    ) -> Outcome:
        """`BasisHedge.rebalance` up to (not including) its rule checks: the gates, the
        trades and the repayment; `rebalance_checks` raises what the rules refuse."""
        require(not self.is_shutdown, "hedge: shut down")
        if relaxed:
            max_slippage = BPS - 1
        else:
            require(max_slippage <= self.rules.max_slippage_bps, "hedge: slippage above rule")
        price = self._hedge_fresh_price()
        self._begin()
        try:
            before = self._sync()
            idle = self.idle
            spot = self.spot_base
            nav_before = self._nav_of(idle, spot, before[2], price)
            risk_reducing = not self._within_rules(spot, before, price, nav_before)
            budget_left = self.budget_left()
            self.idle = self._move_to(before, target_short, target_margin, max_slippage, price, idle, relaxed)
            self._after = after = self._snapshot()
        finally:
            self._end()
        return self.outcome(nav_before, risk_reducing, budget_left, after)

    def rebalance_checks(self, outcome: Outcome) -> None:
        """`BasisHedge.rebalance`'s checks after the trades (in its order)."""
        price = self.price
        nav_before, nav_after = outcome.nav_before, outcome.nav_after
        if nav_after < nav_before:
            loss = nav_before - nav_after
            require(loss * BPS <= nav_before * self.rules.max_nav_loss_bps, "hedge: nav loss rule")
            if not outcome.risk_reducing:
                self._charge_budget(loss, nav_before)
        after = self._after
        require(self._within_rules(self.spot_base, after, price, nav_after), "hedge: position rules")
        if after[0] != 0:
            equity = after[2]
            require(equity > 0, "hedge: perp equity <= 0")
            notional = self.perp.notional(after[0])
            require(notional * BPS <= equity * self.rules.max_leverage_bps, "hedge: leverage rule")
        self.last_rebalance_time = self.now

    def rebalance(self, target_short: int, target_margin: int, max_slippage: int) -> Outcome:
        """`BasisHedge.rebalance(target_short, target_margin, max_slippage, deadline)`."""
        outcome = self.rebalance_trades(target_short, target_margin, max_slippage)
        self.rebalance_checks(outcome)
        return outcome

    def emergency_allowed(self) -> bool:
        """Whether `emergency_deleverage()` passes its gates now (oracle aside)."""
        pos = self._position()
        if pos[0] >= 0:
            return False
        ratio = pos[3]
        if ratio is None:
            return False
        rules = self.rules
        dead_man = self.now > self.last_rebalance_time + rules.dead_man_interval
        return (ratio < rules.critical_margin_ratio_bps or dead_man) and ratio < rules.min_margin_ratio_bps

    def emergency_deleverage(self) -> Outcome:
        """`BasisHedge.emergency_deleverage()`."""
        price = self._hedge_fresh_price()
        self._begin()
        try:
            pos = self._sync()
            short = -pos[0] if pos[0] < 0 else 0
            require(short != 0, "hedge: no position")
            nav_before = self._nav_of(self.idle, self.spot_base, pos[2], price)
            ratio = pos[3]
            assert ratio is not None
            rules = self.rules
            require(
                ratio < rules.critical_margin_ratio_bps
                or self.now > self.last_rebalance_time + rules.dead_man_interval,
                "hedge: deleverage not allowed",
            )
            require(ratio < rules.min_margin_ratio_bps, "hedge: margin ratio healthy")
            mark = self.perp.mark_e8  # the venue measures the ratio at its mark
            target = rules.min_margin_ratio_bps + EMERGENCY_BUFFER_BPS
            notional = self._size_value(short, mark, False)
            need = target * notional - BPS * pos[2]
            reduce_value = max(need, 0) // (BPS + target) + 1
            reduce = min(short, mul_div(reduce_value, _SIZE_PRICE, mark * self.asset_unit, True))
            base_amount = min(self.spot_base, reduce * self.base_unit // SIZE_UNIT)
            self._perp_trade(reduce, rules.max_slippage_bps)
            proceeds = self._sell_spot(base_amount, rules.max_slippage_bps, price)
            self._deposit_margin(proceeds)
            after = self._snapshot()
            after_ratio = _MAX_RATIO if after[3] is None else after[3]
            require(after_ratio > ratio, "hedge: deleverage failed")
        finally:
            self._end()
        return self.outcome(nav_before)

    def unwind(self, max_size: int) -> int:
        """`BasisHedge.unwind(max_size)`: one step of the shutdown unwind; the proceeds."""
        require(self.is_shutdown, "hedge: not shut down")
        require(max_size != 0, "hedge: zero size")
        price = self._hedge_fresh_price()
        self._begin()
        try:
            pos = self._sync()
            short = -pos[0] if pos[0] < 0 else 0
            closed = min(short, max_size)
            margin_out = 0
            slippage = self.rules.max_slippage_bps
            if self.account_open:
                keep = 0
                if closed < short:
                    keep = mul_div(pos[1], short - closed, short, True)
                if closed != 0:
                    self._perp_trade(closed, slippage)
                after = self._view()
                margin_now = after[1]
                if margin_now > keep:
                    margin_out = margin_now - keep
                    if after[0] != 0 and self._below_initial_margin(after, margin_out):
                        margin_out -= min(margin_out, MARGIN_SLACK)
                if margin_out != 0:
                    self._withdraw_margin(margin_out)
                self._snapshot()
            sold = self.spot_base
            if max_size < sold * SIZE_UNIT // self.base_unit:
                sold = max_size * self.base_unit // SIZE_UNIT
            proceeds = self._sell_spot(sold, slippage, price) + margin_out
            self.idle += proceeds
        finally:
            self._end()
        return proceeds

    def sync(self) -> None:
        """`BasisHedge.sync()`."""
        self._sync()

    def exit_slice(self, shares: int, denominator: int, price: int) -> int:
        """`BasisHedge.exit_slice` (the vault's call): the proceeds sent to the vault."""
        pos = self._sync()
        short = -pos[0] if pos[0] < 0 else 0
        base_part = self.spot_base * shares // denominator
        short_part = short * shares // denominator
        margin_out = 0
        slippage = self.rules.max_slippage_bps
        if self.account_open and (short_part != 0 or short == 0):
            keep = mul_div(pos[1], denominator - shares, denominator, True)
            if short_part != 0:
                self._perp_trade(short_part, slippage)
            after = self._view()
            margin_now = after[1]
            require(margin_now >= keep, "hedge: exit slice insolvent")
            margin_out = margin_now - keep
            if margin_out != 0 and after[0] != 0 and self._below_initial_margin(after, margin_out):
                # below initial margin the venue allows the withdrawal only if the ratio
                # does not fall: a few wei more for the stayers absorb the rounding
                margin_out -= min(margin_out, MARGIN_SLACK)
            if margin_out != 0:
                self._withdraw_margin(margin_out)
            self._snapshot()
        return self._sell_spot(base_part, slippage, price) + margin_out

    # ================================================================== BasisVault.vy

    def _pegged(self, asset_price: int) -> bool:
        return abs(asset_price - PRICE_UNIT) * BPS <= PRICE_UNIT * self.rules.max_depeg_bps

    def _fresh_price(self) -> int:
        """`BasisVault._fresh_price`: the asset feed fresh and pegged, the base feed fresh."""
        rules, now = self.rules, self.now
        require(self.asset_price_e8 > 0, "vault: asset oracle answer invalid")
        require(now <= self.asset_updated_at + rules.max_asset_oracle_age, "vault: stale asset oracle")
        require(self._pegged(self.asset_price_e8), "vault: asset de-pegged")
        price = self.perp.price_e8
        require(price > 0, "vault: oracle answer invalid")
        require(now <= self.perp.price_updated_at + rules.max_oracle_age, "vault: stale oracle")
        self.last_valid_price = price
        return price

    def exits_open(self) -> bool:
        rules, now = self.rules, self.now
        return (
            now <= self.perp.price_updated_at + rules.max_oracle_age
            and self.asset_price_e8 > 0
            and now <= self.asset_updated_at + rules.max_asset_oracle_age
            and self._pegged(self.asset_price_e8)
        )

    def deposits_open(self) -> bool:
        return not self.is_shutdown and not self.paused and self.exits_open()

    def nav(self, price: int | None = None) -> int:
        """`BasisVault._nav`: gross NAV (before accrued fees), floored at zero."""
        return max(self.idle + self.value(self.price if price is None else price), 0)

    def _pending_fees(self, nav: int, supply: int) -> tuple[int, int, int]:
        if supply == 0 or nav == 0 or self.fee_recipient is None:
            return 0, 0, 0
        elapsed = self.now - self.last_fee_time
        management = min(nav * self.management_fee_bps * elapsed // (BPS * YEAR), nav)
        performance = 0
        if self.performance_fee_bps:
            pps = mul_div(nav - management + 1, PPS_UNIT, supply + VIRTUAL_SHARES, False)
            if pps > self.high_water_mark:
                gain = mul_div(pps - self.high_water_mark, supply + VIRTUAL_SHARES, PPS_UNIT, False)
                performance = gain * self.performance_fee_bps // BPS
        fees = management + performance
        if fees == 0 or fees >= nav:
            return 0, 0, 0
        return mul_div(fees, supply + VIRTUAL_SHARES, nav - fees + 1, False), management, performance

    def _accrue_fees(self, price: int) -> tuple[int, int]:
        nav = self.nav(price)
        supply = self.supply
        fee_shares, _, _ = self._pending_fees(nav, supply)
        self.last_fee_time = self.now
        if fee_shares:
            assert self.fee_recipient is not None
            self._credit(self.fee_recipient, fee_shares)
            supply += fee_shares
        if supply:
            pps = mul_div(nav + 1, PPS_UNIT, supply + VIRTUAL_SHARES, False)
            if pps > self.high_water_mark:
                self.high_water_mark = pps
        return nav, supply

    def _view_price(self) -> int:
        return self.perp.price_e8 if self.perp.price_e8 > 0 else self.last_valid_price

    def _view_state(self) -> tuple[int, int]:
        nav = self.nav(self._view_price())
        fee_shares, _, _ = self._pending_fees(nav, self.supply)
        return nav, self.supply + fee_shares

    def total_assets(self) -> int:
        """`totalAssets()`."""
        gross = self.nav(self._view_price())
        _, management, performance = self._pending_fees(gross, self.supply)
        return gross - management - performance

    def convert_to_assets(self, shares: int) -> int:
        nav, supply = self._view_state()
        return mul_div(shares, nav + 1, supply + VIRTUAL_SHARES, False)

    def convert_to_shares(self, assets: int) -> int:
        nav, supply = self._view_state()
        return mul_div(assets, supply + VIRTUAL_SHARES, nav + 1, False)

    def preview_redeem(self, shares: int) -> int:
        nav, supply = self._view_state()
        if not self.active():
            return mul_div(shares, nav + 1, supply + VIRTUAL_SHARES, False)
        cost = self.exit_cost_bound(self._view_price())
        if cost >= nav:
            return 0
        assets = mul_div(shares, nav - cost, supply + VIRTUAL_SHARES, False)
        return assets - min(assets, EXIT_ROUNDING)

    def preview_withdraw(self, assets: int) -> int:
        nav, supply = self._view_state()
        if not self.active():
            return mul_div(assets, supply + VIRTUAL_SHARES, nav + 1, True)
        return self._shares_for_unwind_exit(assets, nav, supply, self._view_price())

    def max_deposit(self) -> int:
        if not self.deposits_open():
            return 0
        nav, _ = self._view_state()
        return self._max_deposit(nav)

    def max_withdraw(self, who: str) -> int:
        return self.preview_redeem(self.balances.get(who, 0)) if self.exits_open() else 0

    def _max_deposit(self, nav: int) -> int:
        return 0 if nav >= self.deposit_cap else self.deposit_cap - nav

    def _open_entry(self) -> tuple[int, int, int]:
        require(not self.is_shutdown, "vault: shut down")
        require(not self.paused, "vault: deposits paused")
        price = self._fresh_price()
        nav, supply = self._accrue_fees(price)
        if supply == 0:
            self.high_water_mark = mul_div(nav + 1, PPS_UNIT, VIRTUAL_SHARES, False)
        return nav, supply, price

    def _open_exit(self) -> tuple[int, int, int]:
        price = self._fresh_price()
        nav, supply = self._accrue_fees(price)
        return nav, supply, price

    def deposit(self, assets: int, who: str, min_shares: int = 0) -> int:
        require(assets != 0, "vault: zero assets")
        nav, supply, _ = self._open_entry()
        require(assets <= self._max_deposit(nav), "vault: deposit above maximum")
        shares = mul_div(assets, supply + VIRTUAL_SHARES, nav + 1, False)
        require(shares != 0, "vault: zero shares")
        require(shares >= min_shares, "vault: shares below minimum")
        self.idle += assets
        self._credit(who, shares)
        return shares

    def mint(self, shares: int, who: str, max_assets: int | None = None) -> int:
        require(shares != 0, "vault: zero shares")
        nav, supply, _ = self._open_entry()
        assets = mul_div(shares, nav + 1, supply + VIRTUAL_SHARES, True)
        require(assets <= self._max_deposit(nav), "vault: mint above maximum")
        require(max_assets is None or assets <= max_assets, "vault: assets above maximum")
        self.idle += assets
        self._credit(who, shares)
        return assets

    def _shares_for_unwind_exit(self, assets: int, nav: int, supply: int, price: int) -> int:
        cost = self.exit_cost_bound(price)
        require(cost < nav, "vault: nothing to withdraw")
        return mul_div(assets + EXIT_ROUNDING, supply + VIRTUAL_SHARES, nav - cost, True)

    def _exit_slice(self, shares: int, supply: int, price: int) -> int:
        denominator = supply + VIRTUAL_SHARES
        idle_part: int = self.idle * shares // denominator
        self.perp.in_tx = True
        self.perp.floors.clear()
        try:
            proceeds: int = self.exit_slice(shares, denominator, price)
        finally:
            self._end()
        self.idle -= idle_part
        return idle_part + proceeds

    def withdraw(self, assets: int, who: str, max_shares: int | None = None) -> int:
        """`withdraw(assets, receiver, owner=who)`: the shares burned."""
        require(assets != 0, "vault: zero assets")
        nav, supply, price = self._open_exit()
        hedged = self.active()
        if hedged:
            shares = self._shares_for_unwind_exit(assets, nav, supply, price)
        else:
            shares = mul_div(assets, supply + VIRTUAL_SHARES, nav + 1, True)
        require(max_shares is None or shares <= max_shares, "vault: shares above maximum")
        require(shares <= self.balances.get(who, 0), "vault: withdraw above maximum")
        self._burn(who, shares)
        if hedged:
            proceeds = self._exit_slice(shares, supply, price)
            require(proceeds >= assets, "vault: exit cost above bound")
            self.idle += proceeds - assets
        else:
            self.idle -= assets
        return shares

    def redeem(self, shares: int, who: str, min_assets: int = 0) -> int:
        """`redeem(shares, receiver, owner=who)`: the assets paid."""
        require(shares != 0, "vault: zero shares")
        nav, supply, price = self._open_exit()
        require(shares <= self.balances.get(who, 0), "vault: redeem above maximum")
        self._burn(who, shares)
        assets = mul_div(shares, nav + 1, supply + VIRTUAL_SHARES, False)
        if self.active():
            proceeds = self._exit_slice(shares, supply, price)
            if proceeds > assets:
                self.idle += proceeds - assets
            else:
                assets = proceeds
        else:
            self.idle -= assets
        require(assets != 0, "vault: zero assets")
        require(assets >= min_assets, "vault: assets below minimum")
        return assets

    def shutdown(self) -> None:
        require(not self.is_shutdown, "vault: shut down")
        self.is_shutdown = True

    def set_fees(self, management_fee_bps: int, performance_fee_bps: int) -> None:
        require(management_fee_bps <= self.rules.max_management_fee_bps, "vault: management fee above cap")
        require(performance_fee_bps <= self.rules.max_performance_fee_bps, "vault: performance fee above cap")
        self._accrue_fees(self._fresh_price())
        self.management_fee_bps = management_fee_bps
        self.performance_fee_bps = performance_fee_bps

    def set_fee_recipient(self, recipient: str | None) -> None:
        self._accrue_fees(self._fresh_price())
        self.fee_recipient = recipient

    def transfer(self, src: str, dst: str, shares: int) -> None:
        self._burn(src, shares)
        self._credit(dst, shares)

    def _burn(self, who: str, shares: int) -> None:
        balance = self.balances.get(who, 0)
        require(shares <= balance, "erc20: burn amount exceeds balance")
        self.balances[who] = balance - shares
        self.supply -= shares

    def _credit(self, who: str, shares: int) -> None:
        self.balances[who] = self.balances.get(who, 0) + shares
        self.supply += shares

    # ================================================================== test helpers

    def open_hedge(self, leverage: float, slippage: int = 50) -> Outcome:
        """Open (or move to) a hedge at about `leverage` x with a simple split, as a test's
        starting point (not the strategy's sizing)."""
        nav = self.nav()
        spot_value = int(nav * leverage / (leverage + 1))
        size = spot_value * 9_970 // BPS * SIZE_UNIT * PRICE_UNIT // (self.price * self.asset_unit)
        return self.rebalance(size, nav - spot_value, slippage)


# ============================================================================ from a state


def simulate_rebalance(
    state: VaultState, target_short: int, target_margin: int, slippage_bps: int, *, relaxed: bool = False
) -> Outcome:
    """`rebalance(target_short, target_margin, slippage_bps, deadline)` at `state`, up to
    (not including) the rule checks; `rule_violations` gives those.

    `relaxed` runs the same trades without the slippage bounds and lets idle go negative:
    what a move costs in cash and fills before its margin and bounds are chosen."""
    return BasisModel.from_state(state).rebalance_trades(
        target_short, target_margin, slippage_bps, relaxed=relaxed
    )


def rule_violations(outcome: Outcome, state: VaultState) -> list[str]:
    """`BasisHedge.rebalance`'s checks after the trades, as the revert reasons they would
    raise (the first is the one the hedge reverts with); empty when the call goes through."""
    rules = state.rules
    found = []
    loss = outcome.nav_before - outcome.nav_after
    if loss > 0:
        if loss * BPS > outcome.nav_before * rules.max_nav_loss_bps:
            found.append("hedge: nav loss rule")
        if not outcome.risk_reducing:
            if outcome.budget_left is None:
                over = loss * BPS > outcome.nav_before * rules.keeper_loss_budget_bps
            else:
                over = loss > outcome.budget_left
            if over:
                found.append("hedge: keeper loss budget spent")
    if outcome.delta * BPS > outcome.nav_after * rules.max_delta_bps or (
        outcome.short_size != 0
        and outcome.margin_ratio_bps is not None
        and outcome.margin_ratio_bps < rules.min_margin_ratio_bps
    ):
        found.append("hedge: position rules")
    if outcome.short_size != 0:
        if outcome.perp_equity <= 0:
            found.append("hedge: perp equity <= 0")
        elif outcome.perp_notional * BPS > outcome.perp_equity * rules.max_leverage_bps:
            found.append("hedge: leverage rule")
    return found


def emergency_allowed(state: VaultState) -> bool:
    """Whether `emergency_deleverage()` passes its gate at `state`."""
    ratio = state.margin_ratio_bps
    if state.short_size == 0 or ratio is None:
        return False
    rules = state.rules
    dead_man = state.block_timestamp > state.last_rebalance_time + rules.dead_man_interval
    return (ratio < rules.critical_margin_ratio_bps or dead_man) and ratio < rules.min_margin_ratio_bps


def simulate_emergency_deleverage(state: VaultState) -> Outcome:
    """`emergency_deleverage()` at `state`."""
    return BasisModel.from_state(state).emergency_deleverage()


def simulate_unwind(state: VaultState, max_size: int) -> tuple[int, Outcome]:
    """`unwind(max_size)` at `state`: (proceeds, the books after)."""
    model = BasisModel.from_state(state)
    nav_before = model.nav()
    proceeds = model.unwind(max_size)
    return proceeds, model.outcome(nav_before)


def taker_fee(notional: int, fee_ppm: int) -> int:
    """The market's taker fee on `notional` asset wei (rounded up)."""
    return mul_div(notional, fee_ppm, PPM, True)
