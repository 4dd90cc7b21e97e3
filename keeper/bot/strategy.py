"""The keeper's decisions: a pure function from chain state, funding views and settings
to one action.

    decision = decide(state, views, settings)

`state` is a `VaultState` (one batched chain read), `views` the venues' `FundingView`s
(the reference venue's history included), `settings` a validated `Settings`. The result
is a `Decision`: one `Rebalance`, `EmergencyDeleverage`, `Unwind` or `Hold`, each with its reason,
plus the `Signals` it was based on (for logs and metrics). Nothing is remembered between
calls: whether the vault is parked is read from chain (no short open), so a restarted
keeper decides exactly as the one before it would have.

In order of precedence (docs/keeper.md explains each and its default):

1. Shut down: unwind the hedge in steps (`Unwind(max_size)`, each sized so every fill
   stays within the slippage rule with headroom) until it holds nothing; then hold.
   Nothing possible: stale oracle (the hedge would revert), a perp account in debt.
   A liquidated hedge (the venue cut the short; `state.liquidated`) is no reason to
   hold: with the short gone the spot leg is unhedged, and the usual paths below restore
   the hedge or park within the rules (a call that starts outside the rules is not
   charged to the keeper's loss budget).
2. Margin ratio near critical (below critical + `critical_buffer_bps`): act now, whatever
   it costs: back to the target leverage using idle first, never growing the short; if
   no rebalance passes the vault's rules, `emergency_deleverage` where its gate is open.
3. Spot pool more than `max_pool_dislocation_bps` from the oracle: hold.
4. Parked: re-enter when expected funding >= `reentry_rate_per_hour` and the carry over
   `hurdle_horizon_hours` pays the entry, the exit's fees and the gas (less any premium
   the short is sold at).
5. Hedged: park when the day's expected funding < `park_rate_per_hour` and parking pays:
   the funding the short paid over one of `park_horizons_hours`, at that span's
   `park_persistence` (the share of it the next span repeated on recorded histories),
   exceeds the round trip (the exit now, a re-entry later, the gas of both, the basis,
   the carry forgone while the window refills; otherwise stay hedged and go on); deploy
   idle above `deploy_min_idle_bps` on the entry's terms; re-hedge when |delta| >
   `delta_band_bps`; bring the margin ratio back to the target when it leaves
   [`margin_ratio_low_bps`, `margin_ratio_high_bps`].

Every `Rebalance` has been run on the exact vault model and passes the vault's rules with
headroom (`keeper.bot.planner`), the keeper's daily loss budget included (a move whose
modelled loss exceeds `state.budget_left` is cut or refused unless it is risk-reducing);
none worth less than `max(gas, min_action_value)` is proposed,
and optional moves (entries, deployments, parking) wait for a basis within
`max_basis_bps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from keeper.bot.funding import FundingEstimate, estimate
from keeper.bot.planner import Guard, Infeasible, Plan, fix_margin, leverage_margin, plan_move, solve_short
from keeper.core.fixed import BPS, PPM, PRICE_UNIT, SIZE_UNIT
from keeper.core.rules import VaultRules
from keeper.core.state import VaultState
from keeper.data.onchain import rate_per_hour_from_chain
from keeper.data.records import FundingInfo, FundingView, frozen_record, utc_at
from keeper.model.markets import ModelRevert, SpotPoolModel
from keeper.model.vault import (
    Outcome,
    emergency_allowed,
    simulate_emergency_deleverage,
    simulate_unwind,
)

# ============================================================================ settings


class Settings(BaseModel):
    """The strategy's knobs. Rates are decimals per hour (0.00001 = 0.001 %/h ~ 8.8 %
    a year), ratios and shares in bps, money in asset wei (defaults assume a 6-decimal
    USD asset). The runtime loads these from the environment (pydantic-settings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reference_venue: str = "onchain"
    target_leverage: Decimal = Field(Decimal(2), gt=0, le=20)
    # -- funding
    funding_window_hours: int = Field(24, gt=0, le=24 * 30)
    min_coverage: Decimal = Field(Decimal("0.5"), ge=0, le=1)
    max_view_age_seconds: int = Field(2 * 3_600, gt=0)
    park_rate_per_hour: Decimal = Decimal(0)
    reentry_rate_per_hour: Decimal = Decimal("0.00001")
    hurdle_horizon_hours: int = Field(14 * 24, gt=0)
    # -- parking (docs/keeper.md, "Parking"): the trailing spans a negative spell is judged
    # over, and for each the share of the funding paid over such a span that the next span
    # of the same length repeated; both measured on the recorded histories other than
    # Binance's (`python -m keeper.replay.persistence --exclude binance`)
    park_horizons_hours: tuple[int, ...] = (72, 144, 336)
    park_persistence: tuple[Decimal, ...] = (Decimal("0.39"), Decimal("0.42"), Decimal("0.54"))
    # -- bands
    delta_band_bps: int = Field(100, gt=0)
    margin_ratio_low_bps: int = Field(3_000, gt=0)
    margin_ratio_high_bps: int = Field(7_500, gt=0)
    critical_buffer_bps: int = Field(500, ge=0)
    # -- execution and safety
    max_slippage_bps: int = Field(50, gt=0)
    slippage_headroom_bps: int = Field(15, ge=0)
    max_pool_dislocation_bps: int = Field(30, ge=0)
    max_basis_bps: int = Field(15, ge=0)
    rule_margin_bps: int = Field(250, ge=0)
    rule_usage_pct: int = Field(50, gt=0, le=100)
    critical_rule_usage_pct: int = Field(90, gt=0, le=100)
    idle_reserve_bps: int = Field(10, ge=0)
    deploy_min_idle_bps: int = Field(100, ge=0)
    gas_cost_asset_wei: int = Field(1_000_000, ge=0)
    min_action_value_asset_wei: int = Field(100_000_000, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.reentry_rate_per_hour <= self.park_rate_per_hour:
            raise ValueError("reentry_rate_per_hour must be above park_rate_per_hour (hysteresis)")
        if len(self.park_horizons_hours) != len(self.park_persistence):
            raise ValueError("park_horizons_hours and park_persistence must pair up (one share per span)")
        if any(not 0 < h <= 24 * 90 for h in self.park_horizons_hours):
            raise ValueError("park_horizons_hours must be positive spans of at most 90 days")
        if any(not 0 <= r <= 1 for r in self.park_persistence):
            raise ValueError("park_persistence shares must lie in [0, 1]")
        if not self.margin_ratio_low_bps < self.target_ratio_bps < self.margin_ratio_high_bps:
            raise ValueError(
                f"the target margin ratio {self.target_ratio_bps} bps (1 / target_leverage) must lie "
                f"inside ({self.margin_ratio_low_bps}, {self.margin_ratio_high_bps})"
            )
        if self.deploy_min_idle_bps <= self.idle_reserve_bps:
            raise ValueError("deploy_min_idle_bps must be above idle_reserve_bps, or entries would repeat")
        if self.slippage_headroom_bps >= self.max_slippage_bps:
            raise ValueError("slippage_headroom_bps must be below max_slippage_bps")
        return self

    @property
    def leverage_bps(self) -> int:
        return int(self.target_leverage * BPS)

    @property
    def history_hours(self) -> int:
        """How far back the strategy reads a venue's prints: the funding window or the
        longest span parking is judged over, whichever is longer."""
        return max((self.funding_window_hours, *self.park_horizons_hours))

    @property
    def window_spans(self) -> tuple[int, ...]:
        """The windows it averages over, seconds (for a source's exact trailing totals)."""
        return tuple(
            sorted({self.funding_window_hours * 3_600, *(h * 3_600 for h in self.park_horizons_hours)})
        )

    @property
    def target_ratio_bps(self) -> int:
        """Perp equity / short notional at the target leverage."""
        return int(BPS * BPS // self.leverage_bps)

    def rule_floor_bps(self, rules: VaultRules) -> int:
        """The lowest margin ratio the vault accepts after a rebalance (its min ratio, or
        what its max leverage implies, whichever is higher)."""
        return max(rules.min_margin_ratio_bps, -(-BPS * BPS // rules.max_leverage_bps))

    def problems(self, rules: VaultRules) -> list[str]:
        """What in these settings cannot work with a vault's rules; the runtime refuses to
        start on any. `decide` stays safe regardless (it never proposes what the rules
        reject), but would hold forever."""
        found = []
        floor = self.rule_floor_bps(rules) + self.rule_margin_bps
        if self.target_ratio_bps < floor:
            found.append(
                f"target leverage {self.target_leverage}x needs a margin ratio below the floor {floor} bps"
            )
        if self.margin_ratio_low_bps < rules.critical_margin_ratio_bps + self.critical_buffer_bps:
            found.append("margin_ratio_low_bps is inside the critical zone")
        if self.delta_band_bps * 100 > rules.max_delta_bps * self.rule_usage_pct:
            found.append("delta_band_bps must be inside the share of max_delta_bps a rebalance may use")
        if self.max_slippage_bps > rules.max_slippage_bps:
            found.append(
                f"max_slippage_bps {self.max_slippage_bps} above the vault's {rules.max_slippage_bps}"
            )
        return found


# ============================================================================ actions


class Intent(StrEnum):
    ENTER = "enter"  # parked -> hedged
    DEPLOY = "deploy"  # idle into the hedge
    REHEDGE = "rehedge"  # spot back to the short
    MARGIN_THIN = "margin_thin"  # sell spot, buy back short, margin up
    MARGIN_FAT = "margin_fat"  # margin down, buy spot, grow short
    PARK = "park"  # everything to idle
    CRITICAL = "critical"  # margin near critical: deleverage now


@dataclass(frozen=True)
class Rebalance:
    """Call `rebalance(target_short, target_margin, max_slippage_bps, deadline)`.
    `expected` is the modelled result, for the executor to compare with its simulation."""

    target_short: int
    target_margin: int
    max_slippage_bps: int
    intent: Intent
    reason: str
    expected: Outcome


@dataclass(frozen=True)
class EmergencyDeleverage:
    """Call the permissionless `emergency_deleverage()`."""

    reason: str
    expected: Outcome


@dataclass(frozen=True)
class Unwind:
    """Call the permissionless `hedge.unwind(max_size)` (the vault is shut down): closes up
    to `max_size` of the short and sells up to as much spot (1e18 = one whole base unit)."""

    max_size: int
    reason: str
    expected: Outcome


@dataclass(frozen=True)
class Hold:
    """Do nothing this tick. `alert`: something an operator should look at."""

    reason: str
    alert: bool = False


Action = Rebalance | EmergencyDeleverage | Unwind | Hold


@dataclass(frozen=True)
class Signals:
    """What the decision saw, for logs, metrics and the status table."""

    funding: FundingEstimate
    margin_ratio_bps: int | None
    delta_bps: int
    pool_dislocation_bps: int
    basis_bps: int
    oracle_age: int
    parked: bool


@dataclass(frozen=True)
class Decision:
    action: Action
    signals: Signals

    @property
    def reason(self) -> str:
        return self.action.reason


# ============================================================================ decide


def _reference_from_state(state: VaultState, venue: str) -> FundingView:
    """The vault's own market as a view without history (its live rate only), used when
    the caller passed no view of the reference venue: enough to report, never enough to
    act on (no coverage)."""
    price = Decimal(state.oracle_price_e8) / PRICE_UNIT
    info = FundingInfo(
        venue=venue,
        market="vault",
        rate_per_hour=rate_per_hour_from_chain(state.funding_rate),
        interval_seconds=1,
        mark_price=Decimal(state.perp_mark_price_e8) / PRICE_UNIT,
        index_price=price,
        next_funding_time=None,
        observed_at=utc_at(state.block_timestamp),
    )
    return FundingView(info)


@lru_cache(maxsize=64)
def _spans(window_hours: int, max_age_seconds: int) -> tuple[timedelta, timedelta]:
    return timedelta(hours=window_hours), timedelta(seconds=max_age_seconds)


def funding_estimate(
    state: VaultState, views: Sequence[FundingView], settings: Settings, window_hours: int | None = None
) -> FundingEstimate:
    """The expected funding over the funding window (or over the last `window_hours`)."""
    views = list(views)
    for view in views:
        if view.venue == settings.reference_venue:
            break
    else:
        views.append(_reference_from_state(state, settings.reference_venue))
    hours = settings.funding_window_hours if window_hours is None else window_hours
    window, max_age = _spans(hours, settings.max_view_age_seconds)
    return estimate(
        views,
        settings.reference_venue,
        utc_at(state.block_timestamp),
        window,
        settings.min_coverage,
        max_age,
    )


# Guards by (rules, settings, critical), both frozen: built once, not every tick. The
# entries hold the objects their ids key, so an id is never reused while it is a key.
_GUARDS: dict[tuple[int, int, bool], tuple[VaultRules, Settings, Guard]] = {}


def _guard(state: VaultState, settings: Settings, critical: bool) -> Guard:
    rules = state.rules
    key = (id(rules), id(settings), critical)
    kept = _GUARDS.get(key)
    if kept is not None:
        return kept[2]
    send = min(settings.max_slippage_bps, rules.max_slippage_bps)
    usage = settings.critical_rule_usage_pct if critical else settings.rule_usage_pct
    guard = Guard(
        send_slippage_bps=send,
        fill_slippage_bps=send if critical else max(send - settings.slippage_headroom_bps, 1),
        min_ratio_bps=settings.rule_floor_bps(rules) + settings.rule_margin_bps,
        max_delta_bps=rules.max_delta_bps * usage // 100,
        max_loss_bps=rules.max_nav_loss_bps * usage // 100,
    )
    if len(_GUARDS) >= 64:
        _GUARDS.clear()
    _GUARDS[key] = (rules, settings, guard)
    return guard


def _fmt_rate(rate: Decimal | None) -> str:
    return "unknown" if rate is None else f"{float(rate):.3e}/h"


class _Context:
    """One decision's inputs and derived quantities."""

    def __init__(self, state: VaultState, views: Sequence[FundingView], settings: Settings) -> None:
        self.state = state
        self.settings = settings
        self.views = views
        self.spells: dict[int, Decimal | None] = {}  # the park spans' rates, as read
        self.funding = funding_estimate(state, views, settings)
        self.expected = self.funding.expected_rate_per_hour
        self.signals = frozen_record(
            Signals,
            funding=self.funding,
            margin_ratio_bps=state.margin_ratio_bps,
            delta_bps=state.delta_bps,
            pool_dislocation_bps=state.pool_dislocation_bps,
            basis_bps=state.basis_bps,
            oracle_age=state.oracle_age,
            parked=state.parked,
        )
        self.guard = _guard(state, settings, critical=False)
        self.nav = state.gross_nav
        self.reserve = self.nav * settings.idle_reserve_bps // BPS
        self.min_value = max(settings.min_action_value_asset_wei, settings.gas_cost_asset_wei)

    def hold(self, reason: str, alert: bool = False) -> Decision:
        return frozen_record(
            Decision, action=frozen_record(Hold, reason=reason, alert=alert), signals=self.signals
        )

    def rebalance(self, plan: Plan, intent: Intent, reason: str) -> Decision:
        if plan.partial:
            reason += f" ({float(plan.fraction):.0%} of the way: the full move does not fit the rules)"
        action = Rebalance(
            plan.target_short, plan.target_margin, self.guard.send_slippage_bps, intent, reason, plan.outcome
        )
        return Decision(action, self.signals)

    def moved(self, plan: Plan) -> int:
        """Value a plan moves, asset wei: the larger leg traded (spot or short) plus the
        margin moved. What an action is worth when it manages risk rather than earns."""
        state, after = self.state, plan.outcome
        traded = max(abs(after.short_value - state.short_value), abs(after.spot_value - state.spot_value))
        return traded + abs(plan.target_margin - state.settled_margin)


def decide(state: VaultState, views: Sequence[FundingView], settings: Settings) -> Decision:
    """One decision (see the module docstring for the order of precedence)."""
    ctx = _Context(state, views, settings)
    rules = state.rules
    if not state.oracle_fresh:
        return ctx.hold(
            f"oracle answer is {state.oracle_age}s old (max {rules.max_oracle_age}s): the hedge would revert",
            True,
        )
    if state.shutdown:
        return _unwind(ctx)
    if state.perp_size != 0 and state.perp_margin + state.perp_accrued_funding < 0:
        return ctx.hold(
            "perp account owes more funding than its margin: only a top-up or liquidation clears it", True
        )

    ratio = state.margin_ratio_bps
    if (
        not state.parked
        and ratio is not None
        and ratio < rules.critical_margin_ratio_bps + settings.critical_buffer_bps
    ):
        return _critical(ctx, ratio)
    dislocation = state.pool_dislocation_bps
    if abs(dislocation) > settings.max_pool_dislocation_bps:
        return ctx.hold(
            f"spot pool is {dislocation} bps from the oracle (max {settings.max_pool_dislocation_bps}): "
            "not trading into it"
        )
    if state.parked:
        return _parked(ctx)
    return _hedged(ctx, ratio)


def _unwind_size(state: VaultState) -> int:
    """The whole hedge in one `unwind` size: its short, or its spot in 1e18 if larger."""
    return max(state.short_size, -(-state.spot_base * SIZE_UNIT // state.base_unit))


def _unwind(ctx: _Context) -> Decision:
    """Shut down: the largest `unwind` step whose fills stay within the guard's slippage
    (to 1/1024 of the whole hedge), or hold when the hedge holds nothing."""
    state = ctx.state
    pool = SpotPoolModel(state.pool_reserve_base, state.pool_reserve_asset, state.pool_fee_bps)
    if state.perp_size == 0 and state.perp_margin == 0:
        if state.spot_base == 0:
            return ctx.hold("vault is shut down and the hedge is unwound: nothing to manage")
        if pool.amount_out(True, state.spot_base) == 0 and state.spot_value != 0:
            # dust the pool pays nothing for but the oracle values: no step can move it
            return ctx.hold(f"vault is shut down; {state.spot_base} base wei of unsellable dust left")
        # (dust worth nothing at the oracle either: one more step drops it from the book)
    full = max(_unwind_size(state), 1)
    fill_cap = ctx.guard.fill_slippage_bps

    def attempt(size: int) -> Outcome | None:
        try:
            _, outcome = simulate_unwind(state, size)
        except ModelRevert:
            return None
        return outcome if outcome.worst_fill_bps <= fill_cap else None

    outcome = attempt(full)
    size = full
    if outcome is None:
        lo, hi, best = 0, 1_024, None
        while hi - lo > 1:
            mid = (lo + hi) // 2
            got = attempt(full * mid // 1_024)
            if got is None:
                hi = mid
            else:
                lo, best = mid, got
        if best is None or lo == 0:
            return ctx.hold("vault is shut down but no unwind step fits the slippage rule", True)
        outcome, size = best, full * lo // 1_024
    why = "vault is shut down: unwinding the hedge"
    if size < full:
        why += f" in steps ({size / full:.0%} of it this step: the whole does not fit the slippage rule)"
    return Decision(Unwind(size, why, outcome), ctx.signals)


def _critical(ctx: _Context, ratio: int) -> Decision:
    state, settings = ctx.state, ctx.settings
    guard = _guard(state, settings, critical=True)
    idle_keep = min(state.idle, ctx.reserve)
    why = f"margin ratio {ratio} bps near critical {state.rules.critical_margin_ratio_bps} bps"
    try:
        plan = _retarget(ctx, guard, idle_keep, None, state.short_size)
    except (Infeasible, ModelRevert) as err:
        failure = str(err)
    else:
        action = Rebalance(
            plan.target_short,
            plan.target_margin,
            guard.send_slippage_bps,
            Intent.CRITICAL,
            f"{why}: deleveraging to {plan.outcome.margin_ratio_bps} bps at any cost",
            plan.outcome,
        )
        return Decision(action, ctx.signals)
    if emergency_allowed(state):
        try:
            outcome = simulate_emergency_deleverage(state)
        except ModelRevert as err:
            return ctx.hold(
                f"{why}; no rebalance fits ({failure}) and emergency_deleverage would revert ({err})", True
            )
        return Decision(EmergencyDeleverage(f"{why}; no rebalance fits ({failure})", outcome), ctx.signals)
    return ctx.hold(f"{why}; no rebalance fits the vault's rules: {failure}", True)


def _basis_blocks_increase(ctx: _Context) -> str | None:
    basis = ctx.state.basis_bps
    if basis < -ctx.settings.max_basis_bps:
        return f"basis {basis} bps (spot rich to the perp) beyond -{ctx.settings.max_basis_bps} bps"
    return None


def _hurdle(ctx: _Context, plan: Plan) -> str | None:
    """Why the plan's expected carry does not pay for it, or None when it does: funding on
    the added short over the horizon >= modelled NAV cost + the exit's fees + gas."""
    state, settings = ctx.state, ctx.settings
    added = plan.outcome.short_value - state.short_value
    if added <= 0:
        return "adds no short"
    assert ctx.expected is not None
    carry = ctx.expected * added * settings.hurdle_horizon_hours
    exit_fees = added * state.taker_fee_ppm // PPM + added * state.pool_fee_bps // BPS
    costs = entry_cost(added, plan.outcome.cost, exit_fees, settings.gas_cost_asset_wei, premium(state))
    if carry < costs:
        hurdle = Decimal(costs) / (added * settings.hurdle_horizon_hours)
        return f"expected {_fmt_rate(ctx.expected)} below the cost hurdle {_fmt_rate(hurdle)}"
    if added < ctx.min_value:
        return f"adds {added} wei of short, below the minimum action value"
    return None


def _grow(ctx: _Context, intent: Intent) -> Decision | str:
    """An entry or deployment at the target leverage keeping `reserve` idle, or why not."""
    state, settings = ctx.state, ctx.settings
    blocked = _basis_blocks_increase(ctx)
    if blocked:
        return blocked
    try:
        target = solve_short(state, settings.leverage_bps, ctx.reserve)
        plan = plan_move(state, target, leverage_margin(state, settings.leverage_bps), ctx.guard)
    except (Infeasible, ModelRevert) as err:
        return str(err)
    failure = _hurdle(ctx, plan)
    if failure:
        return failure
    verb = "re-entering" if intent is Intent.ENTER else "deploying idle"
    return ctx.rebalance(
        plan, intent, f"expected funding {_fmt_rate(ctx.expected)} clears re-entry and costs: {verb}"
    )


# ---------------------------------------------------------------------------- parking
#
# A park is a round trip: the exit now, a re-entry later. It pays only when the funding the
# short would pay while parked exceeds that trip. What it would pay is forecast from what it
# has paid: over each span H of `park_horizons_hours`, the funding of the last H hours
# (or the last day's mean carried over H, if higher: a spell that has ended is not parked
# on), times the share of it the next H hours repeated on the recorded histories (`park_persistence`,
# measured on venues other than the one the thresholds were first tuned on). The spans run
# from the typical remaining length of a negative spell (three days) to the entry's
# amortisation horizon (two weeks): a longer spell is more likely to last.


def premium(state: VaultState) -> Decimal:
    """The perp's premium over the index now, a fraction (mark / index - 1): 0 on the
    reference venue, whose perp marks at its index. The basis term's one input."""
    oracle = state.oracle_price_e8
    return Decimal(state.perp_mark_price_e8 - oracle) / oracle if oracle else Decimal(0)


def round_trip_cost(
    short_value: int,
    exit_cost: int,
    reentry_cost: int,
    gas: int,
    premium_now: Decimal = Decimal(0),
    premium_reentry: Decimal = Decimal(0),
) -> int:
    """What parking `short_value` (asset wei) of short and re-entering it later costs,
    asset wei: the exit's modelled cost now, the re-entry's later, the gas of both, and the
    basis: the exit buys the short back at the index x (1 + `premium_now`) and the
    re-entry sells it again at the index x (1 + `premium_reentry`), so the trip pays
    `short_value` x (premium_now - premium_reentry) beyond fills at the index (a perp
    rich now makes parking dearer, one rich at re-entry cheaper). Premiums are fractions;
    the re-entry's is not known in advance and defaults to 0, the long-run premium."""
    basis = (premium_now - premium_reentry) * short_value
    return exit_cost + reentry_cost + gas + int(basis.to_integral_value(ROUND_CEILING))


def entry_cost(added: int, cost: int, exit_fees: int, gas: int, premium_now: Decimal = Decimal(0)) -> int:
    """What an entry adding `added` (asset wei) of short must earn back, asset wei: its
    modelled cost, the fees of its exit later, gas, less the premium it sells the short at
    (shorting a perp rich to its index is a gain when the premium converges)."""
    basis = premium_now * added
    return cost + exit_fees + gas - int(basis.to_integral_value(ROUND_FLOOR))


def _spell_rate(ctx: _Context, hours: int) -> Decimal | None:
    """The mean funding of the last `hours` (the pack's, when the reference is below it),
    or None when the prints cover too little of them."""
    if hours == ctx.settings.funding_window_hours:
        return ctx.funding.optimistic_rate_per_hour
    if hours not in ctx.spells:
        ctx.spells[hours] = funding_estimate(
            ctx.state, ctx.views, ctx.settings, hours
        ).optimistic_rate_per_hour
    return ctx.spells[hours]


def _park_case(ctx: _Context, removed: int, trip: int) -> tuple[int, int, Decimal, Decimal]:
    """What parking `removed` (asset wei) of short would save: the first span whose
    forecast beats `trip`, else the one that comes closest, as (funding avoided in asset
    wei, span hours, the rate it is forecast at, its persistence share)."""
    settings = ctx.settings
    day = ctx.funding.optimistic_rate_per_hour
    assert day is not None
    best: tuple[int, int, Decimal, Decimal] | None = None
    for hours, share in zip(settings.park_horizons_hours, settings.park_persistence, strict=True):
        spell = _spell_rate(ctx, hours)
        if spell is None:
            continue
        rate = max(spell, day)
        avoided = int(-rate * share * hours * removed)
        if best is None or avoided > best[0]:
            best = (avoided, hours, rate, share)
        if avoided > trip:
            break
    return best or (0, 0, day, Decimal(0))


def _park_bound(ctx: _Context) -> str | None:
    """Why no park can pay, from the chain read alone (before planning one), or None: the
    funding the whole short would avoid (`_park_case`) against what no round trip escapes:
    selling the spot leg into the pool (its fee and impact, against the oracle) and the
    taker fee on the short, twice (the re-entry costs what the exit does), the gas and the
    lag (the perp's impact only adds)."""
    state, settings = ctx.state, ctx.settings
    short = state.short_value
    pool = SpotPoolModel(state.pool_reserve_base, state.pool_reserve_asset, state.pool_fee_bps)
    sale = state.spot_value - pool.amount_out(True, state.spot_base) if state.spot_base else 0
    fees = 2 * max(sale + short * state.taker_fee_ppm // PPM, 0)
    floor = fees + 2 * settings.gas_cost_asset_wei + _lag(ctx, short)
    avoided, hours, rate, share = _park_case(ctx, short, floor)
    if avoided <= floor:
        span = (
            f"the last {hours} h at {_fmt_rate(rate)}, {share:.0%} of it repeated"
            if hours
            else "no span covered"
        )
        return (
            f"expected {_fmt_rate(ctx.funding.optimistic_rate_per_hour)} costs less than parking and "
            f"re-entering ({span}: {avoided} wei avoided, the round trip's fees and spot impact alone "
            f"are {floor} wei)"
        )
    return None


def _lag(ctx: _Context, removed: int) -> int:
    """The carry a park forgoes after its spell: the funding window has to fill again
    above the re-entry rate before the vault re-enters (about a window at that rate)."""
    settings = ctx.settings
    return int(settings.reentry_rate_per_hour * settings.funding_window_hours * removed)


def _park_hurdle(ctx: _Context, plan: Plan) -> tuple[bool, str]:
    """Whether parking pays, and why: the funding the removed short would pay
    (`_park_case`) must exceed the round trip it starts: the modelled exit now, a re-entry
    later (taken as costing what the exit does: the same legs through the same pool and
    market), the gas of both, the basis (`round_trip_cost`) and the carry forgone while
    the funding window refills after the spell (`_lag`)."""
    state, settings = ctx.state, ctx.settings
    removed = state.short_value - plan.outcome.short_value
    if removed <= 0:
        return False, "parking removes no short"
    exit_cost = max(plan.outcome.cost, 0)
    trip = round_trip_cost(removed, exit_cost, exit_cost, 2 * settings.gas_cost_asset_wei, premium(state))
    trip += _lag(ctx, removed)
    avoided, hours, rate, share = _park_case(ctx, removed, trip)
    span = (
        f"the last {hours} h at {_fmt_rate(rate)}, {share:.0%} of it repeated" if hours else "no span covered"
    )
    if avoided <= trip:
        return False, (
            f"expected {_fmt_rate(ctx.funding.optimistic_rate_per_hour)} costs less than parking and "
            f"re-entering ({span}: {avoided} wei avoided against a {trip} wei round trip)"
        )
    return True, f"{span} avoids {avoided} wei, more than the {trip} wei round trip"


def _park(ctx: _Context, why: str, hurdle: bool = False) -> Decision | str:
    """A park (everything to idle), or, with `hurdle`, why it does not pay (then the
    caller goes on with the bands)."""
    state = ctx.state
    if hurdle:
        bound = _park_bound(ctx)
        if bound:
            return bound
    try:
        plan = plan_move(state, 0, leverage_margin(state, ctx.settings.leverage_bps), ctx.guard)
    except (Infeasible, ModelRevert) as err:
        return ctx.hold(f"{why}, but no park fits: {err}", True)
    if hurdle:
        pays, detail = _park_hurdle(ctx, plan)
        if not pays:
            return detail
        why = f"{why}: {detail}"
    basis = state.basis_bps
    if basis > ctx.settings.max_basis_bps:
        return ctx.hold(
            f"{why}, but basis {basis} bps (perp rich to spot) beyond {ctx.settings.max_basis_bps}"
        )
    if ctx.moved(plan) < ctx.min_value:
        return ctx.hold(f"{why}; what is left is below the minimum action value")
    return ctx.rebalance(plan, Intent.PARK, why)


def _parked(ctx: _Context) -> Decision:
    state, settings = ctx.state, ctx.settings
    leftover = state.spot_value + state.settled_margin
    if ctx.expected is None:
        if state.delta_bps > settings.delta_band_bps:
            # no short but spot held (the venue liquidated the short): not a hedge, sell it
            cleared = _park(
                ctx,
                f"no short but |delta| {state.delta_bps} bps of NAV unhedged"
                f"{' (liquidated)' if state.liquidated else ''}; expected funding unknown",
            )
            assert isinstance(cleared, Decision)
            return cleared
        return ctx.hold(f"parked; expected funding unknown ({ctx.funding.note})")
    if ctx.expected < settings.reentry_rate_per_hour:
        if leftover >= ctx.min_value:
            cleared = _park(
                ctx, f"parked with {leftover} wei still in spot/margin; expected {_fmt_rate(ctx.expected)}"
            )
            assert isinstance(cleared, Decision)  # no hurdle asked
            return cleared
        return ctx.hold(
            f"parked: expected funding {_fmt_rate(ctx.expected)} "
            f"below re-entry {_fmt_rate(settings.reentry_rate_per_hour)}"
        )
    entered = _grow(ctx, Intent.ENTER)
    if isinstance(entered, Decision):
        return entered
    return ctx.hold(f"parked; not re-entering: {entered}")


def _retarget(ctx: _Context, guard: Guard, idle_keep: int, lowest: int | None, highest: int | None) -> Plan:
    """Back to the target leverage: the short whose cash-neutral move (idle ends at
    `idle_keep`) lands there, kept within [lowest, highest]; the margin never more than
    the target leverage needs (`fix_margin`), so a top-up from idle or a move cut short
    never overshoots the band, which the next tick would undo."""
    state, leverage = ctx.state, ctx.settings.leverage_bps
    target = solve_short(state, leverage, idle_keep)
    if lowest is not None:
        target = max(target, lowest)
    if highest is not None:
        target = min(target, highest)
    return plan_move(state, target, fix_margin(state, idle_keep, leverage), guard)


def _fix(
    ctx: _Context, intent: Intent, why: str, lowest: int | None, highest: int | None, idle_keep: int
) -> Decision:
    """Back to the target leverage, cash-neutral, the short kept within [lowest, highest]."""
    try:
        plan = _retarget(ctx, ctx.guard, idle_keep, lowest, highest)
    except (Infeasible, ModelRevert) as err:
        return ctx.hold(f"{why}, but no fix fits: {err}", True)
    if ctx.moved(plan) < ctx.min_value:
        return ctx.hold(f"{why}; the fix moves less than the minimum action value")
    return ctx.rebalance(plan, intent, why)


def _hedged(ctx: _Context, ratio: int | None) -> Decision:
    state, settings = ctx.state, ctx.settings
    expected = ctx.expected
    optimistic = ctx.funding.optimistic_rate_per_hour
    deploy_note = ""
    if optimistic is not None and optimistic < settings.park_rate_per_hour:
        parked = _park(
            ctx,
            f"expected funding {_fmt_rate(optimistic)} below the park rate "
            f"{_fmt_rate(settings.park_rate_per_hour)}",
            hurdle=True,
        )
        if isinstance(parked, Decision):
            return parked
        deploy_note = f"; not parking: {parked}"
    deployable = state.idle - ctx.reserve
    if (
        expected is not None
        and expected >= settings.reentry_rate_per_hour
        and deployable > ctx.nav * settings.deploy_min_idle_bps // BPS
    ):
        grown = _grow(ctx, Intent.DEPLOY)
        if isinstance(grown, Decision):
            return grown
        deploy_note = f"; idle not deployed: {grown}"
    if state.delta_bps > settings.delta_band_bps:
        why = f"|delta| {state.delta_bps} bps of NAV outside the {settings.delta_band_bps} bps band"
        return _fix(ctx, Intent.REHEDGE, why, None, None, state.idle)
    if ratio is not None and ratio < settings.margin_ratio_low_bps:
        why = f"margin ratio {ratio} bps below the band ({settings.margin_ratio_low_bps} bps)"
        return _fix(ctx, Intent.MARGIN_THIN, why, None, state.short_size, state.idle)
    if ratio is not None and ratio > settings.margin_ratio_high_bps:
        why = f"margin ratio {ratio} bps above the band ({settings.margin_ratio_high_bps} bps)"
        if expected is None:
            return ctx.hold(f"{why}; not re-levering while expected funding is unknown{deploy_note}")
        return _fix(ctx, Intent.MARGIN_FAT, why, state.short_size, None, state.idle)
    return ctx.hold(
        f"hedged and in band: ratio {ratio} bps, |delta| {state.delta_bps} bps, "
        f"expected funding {_fmt_rate(expected)}{deploy_note}"
    )
