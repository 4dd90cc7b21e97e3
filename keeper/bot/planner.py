"""Sizing a rebalance exactly: target short and margin from a wanted leverage, checked
against the vault's rules with headroom, on the exact vault model.

Every candidate is run through `keeper.model.vault` (the contract's order of legs, its
rounding, the venue's fills and fees) and kept only if the vault would accept it with
room to spare: fills within the slippage sent minus a headroom, margin ratio and
leverage above the vault's floors plus a margin, |delta| and NAV cost within a share of
the vault's allowances. The room absorbs what moves between the read and the block the
transaction lands in (a price push, funding accrual, someone else's swap); the executor's
simulation before sending catches the rest, and the vault itself reverts anything worse.

A move too large to pass in one go (its fills or NAV cost too big) is cut to the largest
fraction of the way that passes: the keeper deploys and unwinds in batches rather than
not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from keeper.core.fixed import BPS, SIZE_UNIT, mul_div
from keeper.core.state import VaultState
from keeper.model.markets import ModelRevert
from keeper.model.vault import Outcome, rule_violations, simulate_rebalance


class Infeasible(Exception):
    """No candidate passes; the message says why the first (full) one failed."""


@dataclass(frozen=True)
class Guard:
    """What a modelled outcome must satisfy for the strategy to propose it."""

    send_slippage_bps: int  # the bound passed to `rebalance`
    fill_slippage_bps: int  # the worst modelled fill allowed (<= send)
    min_ratio_bps: int  # margin ratio after, when a short remains
    max_delta_bps: int  # |spot - short| after, bps of NAV after
    max_loss_bps: int  # NAV cost, bps of NAV before

    def check(self, state: VaultState, outcome: Outcome) -> None:
        broken = rule_violations(outcome, state)
        if broken:
            raise Infeasible(f"the vault would revert ({', '.join(broken)})")
        if outcome.worst_fill_bps > self.fill_slippage_bps:
            raise Infeasible(
                f"a fill {outcome.worst_fill_bps} bps from the oracle (allowed {self.fill_slippage_bps})"
            )
        if outcome.short_size and (outcome.margin_ratio_bps or 0) < self.min_ratio_bps:
            raise Infeasible(f"margin ratio after {outcome.margin_ratio_bps} bps (need {self.min_ratio_bps})")
        if outcome.delta * BPS > outcome.nav_after * self.max_delta_bps:
            raise Infeasible(f"|delta| after {outcome.delta} wei (allowed {self.max_delta_bps} bps of NAV)")
        if outcome.cost * BPS > outcome.nav_before * self.max_loss_bps:
            raise Infeasible(f"costs {outcome.cost} wei of NAV (allowed {self.max_loss_bps} bps)")


@dataclass(frozen=True)
class Plan:
    target_short: int
    target_margin: int
    outcome: Outcome
    fraction: Fraction  # of the way to the target it goes

    @property
    def partial(self) -> bool:
        return self.fraction != 1


MarginFor = Callable[[int], int]


def verify(state: VaultState, target_short: int, target_margin: int, guard: Guard) -> Outcome:
    """The modelled outcome of the call, or `Infeasible` with the reason."""
    if target_margin < 0:
        raise Infeasible("not enough cash for the margin it needs")
    try:
        outcome = simulate_rebalance(state, target_short, target_margin, guard.send_slippage_bps)
    except ModelRevert as err:
        raise Infeasible(f"the vault would revert ({err})") from None
    guard.check(state, outcome)
    return outcome


def _probe_margin(state: VaultState, target_short: int) -> int:
    """A margin large enough that no leg of a relaxed run trips initial margin or books a
    loss above the margin (it is credited before the legs in a relaxed run)."""
    return (
        state.settled_margin + state.size_value(target_short, True) + state.size_value(state.short_size, True)
    )


def _relaxed(state: VaultState, target_short: int) -> tuple[int, Outcome]:
    """The relaxed run to `target_short` and its probe margin, kept on the state (it is
    frozen, and a decision prices the same candidate several times: the sizing, then the
    margin of each attempt, once per margin rule)."""
    memo: dict[int, tuple[int, Outcome]] | None = state.__dict__.get("_relaxed_runs")
    if memo is None:
        memo = state.__dict__["_relaxed_runs"] = {}
    run = memo.get(target_short)
    if run is None:
        probe = _probe_margin(state, target_short)
        run = memo[target_short] = (probe, simulate_rebalance(state, target_short, probe, 0, relaxed=True))
    return run


def cash_neutral_margin(state: VaultState, idle_keep: int) -> MarginFor:
    """Margin that leaves exactly `idle_keep` idle after the move (all other cash goes to
    or comes from margin). Idle is linear in the margin target with slope -1, so one
    relaxed run prices it exactly."""

    def margin(target_short: int) -> int:
        probe, run = _relaxed(state, target_short)
        return probe + run.idle - idle_keep

    return margin


def leverage_margin(state: VaultState, leverage_bps: int) -> MarginFor:
    """Margin that leaves perp equity = short notional / leverage after the move (fees and
    impact included: equity is linear in the margin target with slope 1)."""

    def margin(target_short: int) -> int:
        if target_short == 0:
            return 0
        probe, run = _relaxed(state, target_short)
        want = -(-run.short_value * BPS // leverage_bps)
        return probe + want - run.perp_equity

    return margin


def fix_margin(state: VaultState, idle_keep: int, leverage_bps: int) -> MarginFor:
    """The cash-neutral margin, but never more than the target leverage needs: a move cut
    short (or one that idle alone could over-fund) lands at the target ratio at most,
    leaving the rest idle, never above the band where the next tick would undo it."""
    neutral = cash_neutral_margin(state, idle_keep)
    levered = leverage_margin(state, leverage_bps)

    def margin(target_short: int) -> int:
        return min(neutral(target_short), levered(target_short))

    return margin


def solve_short(state: VaultState, leverage_bps: int, idle_keep: int) -> int:
    """The largest short (1e18) whose cash-neutral move (idle ends at `idle_keep`) leaves
    short notional / perp equity <= `leverage_bps`, fills and impact included. Bisection
    on relaxed runs; 0 when even no short cannot keep that much idle."""
    nav = state.gross_nav
    if nav == 0:
        return 0

    def fits(size: int) -> bool:
        try:
            _, run = _relaxed(state, size)
        except ModelRevert:
            return False  # larger than the venue can fill
        equity = run.perp_equity + run.idle - idle_keep
        return equity > 0 and run.short_value * BPS <= leverage_bps * equity

    if not fits(0):
        return 0
    # An upper bound no solution reaches: twice the notional the whole NAV could carry.
    hi = mul_div(
        2 * nav * leverage_bps // BPS + 1, SIZE_UNIT * 10**8, state.oracle_price_e8 * state.asset_unit, True
    )
    lo = 0
    # The bisection below decides each midpoint by `fits`, which grows false with the
    # size; a bracket [yes, no] around the answer, found first from the leverage being
    # about linear in the size, decides every midpoint outside it without a run: the same
    # midpoints, the same answer, about half the runs.
    yes, no = _bracket(fits, hi, leverage_bps, state, idle_keep)
    while hi - lo > max(1, hi // 10**8):
        mid = (lo + hi) // 2
        if mid <= yes:
            ok = True
        elif mid >= no:
            ok = False
        else:
            ok = fits(mid)
            if ok:
                yes = mid
            else:
                no = mid
        if ok:
            lo = mid
        else:
            hi = mid
    return lo


def _bracket(
    fits: Callable[[int], bool], hi: int, leverage_bps: int, state: VaultState, idle_keep: int
) -> tuple[int, int]:
    """Sizes known to fit and not to fit around `solve_short`'s answer: (0, hi) unless a
    linear estimate and two runs beside it narrow them."""
    yes, no = 0, hi

    def slack(size: int) -> int:
        """leverage_bps x equity - BPS x short value after the relaxed run: positive at 0,
        about linear in the size (fees and impact bend it a little)."""
        _, run = _relaxed(state, size)
        return leverage_bps * (run.perp_equity + run.idle - idle_keep) - BPS * run.short_value

    try:
        s0, a, b = slack(0), hi // 4, hi // 6  # two first guesses, the answer is near hi/6 at 2x
        sa, sb = slack(a), slack(b)
        for _ in range(2):  # secant steps
            if sa == sb or s0 <= 0:
                return yes, no
            a, sa, b = b, sb, b - sb * (b - a) // (sb - sa)
            if not 0 < b < hi:
                return yes, no
            sb = slack(b)
    except ModelRevert:
        return yes, no
    estimate = b
    for width in (estimate // 100_000 + 1, estimate // 1_000 + 1):
        low, high = max(estimate - width, 0), min(estimate + width, hi)
        low_fits = low <= yes or fits(low)
        if low_fits:
            yes = max(yes, low)
        if high < no and not fits(high):
            no = high
        if low_fits and no == high:
            break
    return yes, no


def plan_move(state: VaultState, target_short: int, margin_for: MarginFor, guard: Guard) -> Plan:
    """The move from the current short to `target_short` (margin from `margin_for`) if it
    passes `guard`; else the largest fraction of the way that does (to 1/1024), so a move
    too big for the pool or the NAV-loss rule goes in batches instead of not at all."""
    current = state.short_size

    def attempt(fraction: Fraction) -> Plan:
        size = current + int((target_short - current) * fraction)
        margin = margin_for(size)
        try:
            outcome = verify(state, size, margin, guard)
        except ModelRevert as err:  # from margin_for's relaxed runs
            raise Infeasible(f"the vault would revert ({err})") from None
        return Plan(size, margin, outcome, fraction)

    try:
        return attempt(Fraction(1))
    except (Infeasible, ModelRevert) as err:
        full = err if isinstance(err, Infeasible) else Infeasible(f"the vault would revert ({err})")
    best: Plan | None = None
    lo, hi = 0, 1_024  # the fraction, in 1/1024ths: lo passes (or is 0), hi fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            best, lo = attempt(Fraction(mid, 1_024)), mid
        except (Infeasible, ModelRevert):
            hi = mid
    if best is None or best.target_short == current:
        raise full
    return best
