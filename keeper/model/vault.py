"""An exact model of `BasisVault.rebalance` and `emergency_deleverage`, started from a
`VaultState` and run on the venue models (`keeper.model.venue`).

It replays the contract step by step (reduce short, sell spot, move margin, buy spot,
grow short; then the rule checks) with the same integer rounding, so what it accepts the
vault accepts at the same state, and what it refuses raises `ModelRevert` with the
vault's or the venue's revert reason. The strategy uses it to size every proposal and to
price it (fills, fees, NAV cost) before proposing it.

Approximations, all on the safe side or outside a single block: time does not move (the
keeper's transaction lands a block or two later; the strategy's headroom covers that),
the market's counterparty pool is assumed able to pay, and pending funding is settled
into margin up front (exactly what the first touch of the perp account books).
"""

from __future__ import annotations

from dataclasses import dataclass

from keeper.model.venue import BPS, PPM, PRICE_UNIT, SIZE_UNIT, ModelRevert, PerpModel, SpotPoolModel, mul_div
from keeper.state import VaultState

VAULT = "vault"
EMERGENCY_BUFFER_BPS = 200  # BasisVault.EMERGENCY_BUFFER_BPS
_UNLIMITED = 10**40  # counterparty pool liquidity: assumed able to pay


@dataclass(frozen=True)
class Outcome:
    """The vault after a modelled call. Money in asset wei, sizes 1e18, base in base wei."""

    idle: int
    spot_base: int
    short_size: int
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
    worst_fill_bps: int  # the worst fill of any leg against the oracle, bps, rounded up

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


class VaultModel:
    """The vault's books, its spot pool and its perp account, from a `VaultState`."""

    def __init__(self, state: VaultState) -> None:
        self.s = state
        self.price = state.oracle_price_e8
        self.idle = state.idle
        self.spot_base = state.spot_base
        self.short_size = state.short_size
        self.pool = SpotPoolModel(state.pool_reserve_base, state.pool_reserve_asset, state.pool_fee_bps)
        self.perp = PerpModel(
            asset_unit=state.asset_unit,
            price_e8=self.price,
            now=state.block_timestamp,
            taker_fee_ppm=state.taker_fee_ppm,
            initial_margin_bps=state.initial_margin_bps,
            maintenance_margin_bps=state.maintenance_margin_bps,
            depth=state.perp_depth,
            # the vault's own oracle rule is the stricter one and is checked separately
            max_oracle_age=10**12,
            price_updated_at=state.oracle_updated_at,
            funding_rate=state.funding_rate,
            pool_liquidity=_UNLIMITED,
        )
        account = self.perp.account(VAULT)
        account.size = state.perp_size
        account.cost = state.perp_cost
        # Funding settles on the first touch; booking it now is what that touch books.
        # A funding debt above the margin makes every perp call but a top-up revert.
        settled = state.perp_margin + state.perp_accrued_funding
        self.deficit = max(-settled, 0)
        account.margin = max(settled, 0)
        self.perp_fees = 0
        self.worst_fill_bps = 0

    # -- views as the vault computes them

    def base_value(self, amount: int) -> int:
        return self.s.base_value(amount)

    def size_value(self, size: int, round_up: bool) -> int:
        return self.s.size_value(size, round_up)

    def equity(self) -> int:
        return self.perp.equity(VAULT)

    def nav(self) -> int:
        return max(self.idle + self.base_value(self.spot_base) + self.equity(), 0)

    def settled_margin(self) -> int:
        if self.perp.account(VAULT).size == 0 and self.perp.account(VAULT).margin == 0:
            return 0
        return self.perp.account(VAULT).margin

    # -- legs (BasisVault internals)

    def _touch_perp(self) -> None:
        if self.deficit:
            raise ModelRevert("perp: loss exceeds margin")

    def deposit_margin(self, amount: int) -> None:
        # The market credits a top-up before it settles funding, so a deposit can cure a deficit.
        if amount <= self.deficit:
            raise ModelRevert("perp: loss exceeds margin")
        self.perp.deposit_margin(VAULT, amount - self.deficit)
        self.deficit = 0

    def perp_trade(self, size_delta: int, slippage: int) -> None:
        self._touch_perp()
        if size_delta > 0:
            acceptable = mul_div(self.price, BPS + slippage, BPS, False)
        else:
            acceptable = mul_div(self.price, BPS - slippage, BPS, True)
        fill = self.perp.fill_price(size_delta)
        if size_delta > 0 and fill > acceptable:
            raise ModelRevert("perp: price above acceptable")
        if size_delta < 0 and fill < acceptable:
            raise ModelRevert("perp: price below acceptable")
        _, fee, _ = self.perp.modify_position(VAULT, size_delta)
        self.perp_fees += fee
        worse = fill - self.price if size_delta > 0 else self.price - fill
        self.worst_fill_bps = max(self.worst_fill_bps, _adverse_bps(worse, self.price))

    def sell_spot(self, amount: int, slippage: int) -> int:
        if amount == 0 or self.pool.amount_out(True, amount) == 0:
            return 0
        fair = self.base_value(amount)
        min_out = mul_div(fair, BPS - slippage, BPS, True)
        self.spot_base -= amount
        out = self.pool.swap(True, amount, min_out)
        self.idle += out
        self.worst_fill_bps = max(self.worst_fill_bps, _adverse_bps(fair - out, fair))
        return out

    def buy_spot(self, amount: int, slippage: int, enforce_idle: bool) -> None:
        cost = self.pool.amount_in(True, amount)
        fair = self.base_value(amount)
        worst = mul_div(fair, BPS + slippage, BPS, False)
        if cost is None or cost > worst:
            raise ModelRevert("vault: spot slippage")
        if enforce_idle and cost > self.idle:
            raise ModelRevert("vault: idle too low")
        self.idle -= cost
        self.spot_base += self.pool.swap(False, cost, amount)
        self.worst_fill_bps = max(self.worst_fill_bps, _adverse_bps(cost - fair, fair))

    def move_to(
        self, target_short: int, target_margin: int, slippage: int, enforce_idle: bool = True
    ) -> None:
        """`BasisVault._move_to`. With `enforce_idle=False` (a relaxed run, which prices a
        move before its margin is chosen) idle may go negative and a margin top-up is
        credited before the legs instead of after the reductions: the fills, fees and
        PnL are the same, but a reduction whose realised loss exceeds the old margin
        does not stop the run."""
        short = self.short_size
        target_base = target_short * self.s.base_unit // SIZE_UNIT
        spot = self.spot_base
        if not enforce_idle and target_margin > self.settled_margin():
            amount = target_margin - self.settled_margin()
            self.idle -= amount
            self.deposit_margin(amount)
        if target_short < short:
            self.perp_trade(short - target_short, slippage)
        if target_base < spot:
            self.sell_spot(spot - target_base, slippage)
        margin = self.settled_margin()
        if margin > target_margin:
            self._touch_perp()
            self.perp.withdraw_margin(VAULT, margin - target_margin)
            self.idle += margin - target_margin
        elif margin < target_margin:
            amount = target_margin - margin
            if enforce_idle and amount > self.idle:
                raise ModelRevert("vault: idle too low")
            self.idle -= amount
            self.deposit_margin(amount)
        if target_base > spot:
            self.buy_spot(target_base - spot, slippage, enforce_idle)
        if target_short > short:
            self.perp_trade(-(target_short - short), slippage)
        self.short_size = target_short

    def outcome(self, nav_before: int) -> Outcome:
        # the views `settled_margin`, `equity`, `margin_ratio_bps` and `nav` give, with the
        # account, the equity and the spot value each computed once
        account = self.perp.account(VAULT)
        size = account.size
        equity = self.perp.equity(VAULT)
        spot_value = self.base_value(self.spot_base)
        ratio = None
        if size != 0:
            notional = self.perp.notional(size)
            if notional != 0:
                ratio = 0 if equity <= 0 else equity * BPS // notional
        return Outcome(
            idle=self.idle,
            spot_base=self.spot_base,
            short_size=self.short_size,
            settled_margin=0 if size == 0 and account.margin == 0 else account.margin,
            perp_equity=equity,
            margin_ratio_bps=ratio,
            nav_before=nav_before,
            nav_after=max(self.idle + spot_value + equity, 0),
            spot_value=spot_value,
            short_value=self.size_value(self.short_size, False),
            pool_reserve_base=self.pool.reserve_base,
            pool_reserve_asset=self.pool.reserve_asset,
            perp_fees=self.perp_fees,
            worst_fill_bps=self.worst_fill_bps,
        )


def simulate_rebalance(
    state: VaultState, target_short: int, target_margin: int, slippage_bps: int, *, relaxed: bool = False
) -> Outcome:
    """`rebalance(target_short, target_margin, slippage_bps, deadline)` at `state`, up to
    (not including) the rule checks; `rule_violations` gives those.

    `relaxed` runs the same trades without the slippage bounds and lets idle go negative:
    what a move costs in cash and fills before its margin and bounds are chosen."""
    if state.shutdown:
        raise ModelRevert("vault: shut down")
    if relaxed:
        slippage_bps = BPS - 1
    elif slippage_bps > state.rules.max_slippage_bps:
        raise ModelRevert("vault: slippage above rule")
    if not state.oracle_fresh:
        raise ModelRevert("vault: stale oracle")
    model = VaultModel(state)
    nav_before = model.nav()
    model.move_to(target_short, target_margin, slippage_bps, enforce_idle=not relaxed)
    return model.outcome(nav_before)


def rule_violations(outcome: Outcome, state: VaultState) -> list[str]:
    """The vault's post-rebalance checks (`rebalance` + `_check_position_rules`), as the
    revert reasons they would raise; empty when the call goes through."""
    rules = state.rules
    found = []
    if outcome.nav_after < outcome.nav_before and (
        (outcome.nav_before - outcome.nav_after) * BPS > outcome.nav_before * rules.max_nav_loss_bps
    ):
        found.append("vault: nav loss rule")
    if outcome.delta * BPS > outcome.nav_after * rules.max_delta_bps:
        found.append("vault: delta rule")
    if outcome.short_size != 0:
        if outcome.perp_equity <= 0:
            found.append("vault: perp equity <= 0")
        elif outcome.short_value * BPS > outcome.perp_equity * rules.max_leverage_bps:
            found.append("vault: leverage rule")
        if (outcome.margin_ratio_bps or 0) < rules.min_margin_ratio_bps:
            found.append("vault: margin ratio rule")
    return found


def emergency_allowed(state: VaultState) -> bool:
    """Whether `emergency_deleverage()` passes its gate at `state`."""
    ratio = state.margin_ratio_bps
    if state.short_size == 0 or ratio is None:
        return False
    dead_man = state.block_timestamp > state.last_rebalance_time + state.rules.dead_man_interval
    rules = state.rules
    return (ratio < rules.critical_margin_ratio_bps or dead_man) and ratio < rules.min_margin_ratio_bps


def simulate_emergency_deleverage(state: VaultState) -> Outcome:
    """`emergency_deleverage()` at `state` (gate, sizing, legs and its own final check)."""
    if not state.oracle_fresh:
        raise ModelRevert("vault: stale oracle")
    if state.short_size == 0:
        raise ModelRevert("vault: no position")
    if not emergency_allowed(state):
        raise ModelRevert("vault: deleverage not allowed")
    rules = state.rules
    model = VaultModel(state)
    nav_before = model.nav()
    ratio = state.margin_ratio_bps or 0
    target = rules.min_margin_ratio_bps + EMERGENCY_BUFFER_BPS
    notional = model.size_value(state.short_size, False)
    need = target * notional - BPS * model.equity()
    reduce_value = max(need, 0) // (BPS + target) + 1
    reduce = min(
        state.short_size,
        mul_div(reduce_value, SIZE_UNIT * PRICE_UNIT, state.oracle_price_e8 * state.asset_unit, True),
    )
    base_amount = min(model.spot_base, reduce * state.base_unit // SIZE_UNIT)
    model.perp_trade(reduce, rules.max_slippage_bps)
    model.short_size = state.short_size - reduce
    proceeds = model.sell_spot(base_amount, rules.max_slippage_bps)
    if proceeds:
        model.deposit_margin(proceeds)
    model.idle -= proceeds
    after = model.perp.margin_ratio_bps(VAULT)
    if after is not None and after <= ratio:
        raise ModelRevert("vault: deleverage failed")
    return model.outcome(nav_before)


def taker_fee(notional: int, fee_ppm: int) -> int:
    """The market's taker fee on `notional` asset wei (rounded up)."""
    return mul_div(notional, fee_ppm, PPM, True)
