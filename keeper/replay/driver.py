"""The replay loop both modes share, and the records it keeps.

A replay is a list of `MarketStep`s, at most an hour apart (`STEP_SECONDS`: a funding
print's interval is cut into hourly steps at its rate, the price interpolated between the
price file's points): at each step's time the market moves (where the price file has
bars, the oracle first visits the adverse extreme of the bar since the last step and a
liquidator checks the hedge's short there; then the feeder pushes the oracle and the
funding rate and keeps the asset's USD feed fresh, a liquidator checks again, an
arbitrageur trades the spot pool back to the oracle), then the keeper ticks. What a step
does can be switched off or bent by a stress scenario (`keeper.replay.scenarios`): no
oracle update, no arbitrage, the pool left off the oracle, the keeper down, the asset
off its peg, a depositor probing whether entries and exits are refused (and what a
newcomer's round trip does to the other holders).

A `Backend` carries the steps out: `keeper.replay.exact.ModelBackend` on the exact Python
models, `keeper.replay.anvil.ChainBackend` on anvil with the deployed contracts and the
real keeper tick. The loop here is the same for both, so the two modes can only differ
where their backends do, and the test that runs both on one input says they do not.

Every NAV change is attributed as it happens, in asset wei (`Costs`); the trades a
backend saw are kept (`Trade`) for the cost basis and the basis at entry.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from itertools import pairwise
from typing import Protocol, TypedDict, Unpack

from keeper.bot.strategy import Settings
from keeper.core.fixed import BPS, MAX_FUNDING_RATE, MAX_PREMIUM, PRICE_UNIT, RATE_UNIT, SIZE_UNIT, value
from keeper.core.rules import VaultRules, VenueParams
from keeper.data.files import JITTER, FundingPrint, PricePoint, SeriesReport
from keeper.model.vault import DECIMALS_OFFSET

YEAR = 365 * 86_400
# Gas per keeper call on BasisHedge (rebalance open / adjust / park, emergency_deleverage,
# one unwind step), measured as `make bench` does (tests/keeper_chain/test_gas_units.py
# checks them against the contracts). The model prices its calls with these; the chain
# reads receipts.
GAS_UNITS = {"open": 375_513, "adjust": 242_403, "park": 220_675, "emergency": 217_180, "unwind": 235_019}
# The feeder refreshes the asset's own USD feed (the vault's de-peg guard) at least this
# often, though its answer does not move: one cheap push per 6 h keeps it well inside the
# vault's `max_asset_oracle_age` (25 h by default), like Chainlink's heartbeat.
ASSET_FEED_REFRESH = 6 * 3_600
# The keeper ticks at least this often: a longer funding interval is cut into steps of it.
STEP_SECONDS = 3_600
# A hole in the funding prints longer than this many native intervals stops the replay
# (`GapError`) unless gaps are allowed; then it is replayed through at the last rate.
GAP_LIMIT_INTERVALS = 3
# The never-park hedge's park rate: -100 % an hour, beyond any rate the market takes.
NEVER_PARK_RATE = Decimal(-1)


@dataclass(frozen=True)
class ReplayConfig:
    """What the replay runs with. Money in whole asset units unless `_wei`."""

    deposit: int = 1_000_000
    depositors: int = 1  # the deposit is split evenly between this many accounts
    venue: VenueParams = field(default_factory=VenueParams)
    rules: VaultRules = field(default_factory=VaultRules)
    settings: Settings = field(default_factory=Settings)
    management_fee_bps: int = 0
    performance_fee_bps: int = 0
    gas_gwei: float = 20.0
    eth_price_usd: float = 3_000.0
    constant_price: float = 3_000.0  # the oracle price when no price series is given
    # Where the hedge trades spot: the reference SpotPool, or a full-range Uniswap v3 pool
    # (fee 500) behind the UniswapV3Spot adapter (chain mode), modelled as x * y on its
    # virtual reserves with the fee kept out of the curve (`UniswapV3FullRangeModel`).
    spot: str = "reference"

    def deposits_wei(self) -> list[int]:
        total = self.venue.asset_wei(self.deposit)
        each = total // self.depositors
        return [each] * (self.depositors - 1) + [total - each * (self.depositors - 1)]


# The records the loop builds every step (MarketStep, Observation, Ticked, Step) are
# plain slotted dataclasses, treated as values and never changed once built: a frozen
# dataclass's __init__ sets each field through object.__setattr__, about 6x the cost, and
# the loop builds four a step.
@dataclass(slots=True)
class MarketStep:
    """What happens at `time`: the interval [time, time + interval] is funded at `rate`."""

    time: int
    price_e8: int
    rate: int  # the perp's 1e18-per-second funding rate
    interval: int
    capped: bool = False  # the print was beyond the market's bound and was capped
    push_oracle: bool = True  # the feeder pushes `price_e8` (False: the oracle goes stale)
    arbitrage: bool = True  # an arbitrageur trades the spot pool back to the oracle
    pool_offset_bps: int = 0  # then a trader leaves the pool this far off the oracle
    keeper: bool = True  # False: the keeper is down for this step
    probe: bool = False  # a depositor tries to enter and to exit (scenario checks)
    label: str = ""
    asset_price_e8: int = PRICE_UNIT  # the asset's USD price (1e8 = on its peg)
    push_asset: bool = False  # the feeder pushes `asset_price_e8` (set by `with_asset_pushes`)
    # the market's high and low of the bar(s) opening in [time, time + interval] (0: none);
    # before the next step's price lands, the oracle visits the one adverse to the hedge
    high_e8: int = 0
    low_e8: int = 0
    premium_e18: int = 0  # the perp's mark over the index, 1e18 = 100 % (`with_premium`)


def with_asset_pushes(steps: list[MarketStep], deployed_at: int) -> list[MarketStep]:
    """Marks the steps where the feeder pushes the asset feed: when its price moves, and
    otherwise every `ASSET_FEED_REFRESH` since the last push (the feed is deployed at 1e8
    at `deployed_at`). Both backends push exactly where this says."""
    last_time, last_price = deployed_at, PRICE_UNIT
    out = []
    for s in steps:
        if s.asset_price_e8 != last_price or s.time - last_time >= ASSET_FEED_REFRESH:
            s = replace(s, push_asset=True)
            last_time, last_price = s.time, s.asset_price_e8
        out.append(s)
    return out


def _with_final_push(steps: list[MarketStep], final: MarketStep) -> MarketStep:
    """`final` as `with_asset_pushes` marks it after `steps` (already marked)."""
    for s in reversed(steps):
        if s.push_asset:
            last_time, last_price = s.time, s.asset_price_e8
            break
    else:
        last_time, last_price = steps[0].time, PRICE_UNIT
    if final.asset_price_e8 != last_price or final.time - last_time >= ASSET_FEED_REFRESH:
        return replace(final, push_asset=True)
    return final


@dataclass
class Costs:
    """Attribution of every NAV change, asset wei (costs positive)."""

    funding: int = 0  # net received (+) over the run
    funding_received: int = 0
    funding_paid: int = 0
    spot_pnl: int = 0  # the spot leg's value change at the oracle between trades
    perp_pnl: int = 0  # the short's unrealised PnL change at the index between trades
    # the rest of its change at the mark: (premium x index)'s moves, the premium's and the index's
    basis_pnl: int = 0
    spot_fees: int = 0
    spot_impact: int = 0
    perp_fees: int = 0
    perp_impact: int = 0
    liquidation_loss: int = 0
    gas_units: int = 0

    def market_move(self, funding: int, spot: int, perp: int, basis: int = 0) -> None:
        """Books one market move's funding, the legs' price PnL at the index and the
        short's basis PnL (its value at the mark less at the index; deltas, asset wei)."""
        self.funding += funding
        if funding >= 0:
            self.funding_received += funding
        else:
            self.funding_paid -= funding
        self.spot_pnl += spot
        self.perp_pnl += perp
        self.basis_pnl += basis


@dataclass(frozen=True, slots=True)
class Swap:
    base_in: bool
    amount_in: int
    amount_out: int


@dataclass(frozen=True, slots=True)
class Fill:
    size_delta: int  # + buys (reduces the short), - sells
    fill_price_e8: int
    mark_price_e8: int  # the venue's mark the fill moved from (index x (1 + premium))
    fee: int


@dataclass(frozen=True, slots=True)
class Trade:
    """One keeper call's trades, as the hedge made them."""

    time: int
    kind: str  # the rebalance intent or "emergency"
    oracle_e8: int
    swaps: tuple[Swap, ...]
    fills: tuple[Fill, ...]
    gas_used: int


def book_trades(
    costs: Costs,
    swaps: tuple[Swap, ...],
    fills: tuple[Fill, ...],
    price_e8: int,
    base_value: Callable[[int, int], int],
    pool_fee_bps: int,
    asset_unit: int,
) -> int:
    """Attributes a keeper call's trades to fees and impact, at the oracle; returns the
    spot value the swaps moved (asset wei, + = bought), which is not a PnL."""
    traded = 0
    for s in swaps:
        given = base_value(s.amount_in, price_e8) if s.base_in else s.amount_in
        got = s.amount_out if s.base_in else base_value(s.amount_out, price_e8)
        fee = given * pool_fee_bps // BPS
        costs.spot_fees += fee
        costs.spot_impact += given - got - fee
        traded += -base_value(s.amount_in, price_e8) if s.base_in else base_value(s.amount_out, price_e8)
    for f in fills:
        costs.perp_fees += f.fee
        # a buy above the mark or a sell below it loses the difference (the premium
        # itself is the basis: it is in the short's value at the mark, not an impact)
        costs.perp_impact += value(f.size_delta, f.fill_price_e8, asset_unit, True) - value(
            f.size_delta, f.mark_price_e8, asset_unit, True
        )
    return traded


@dataclass(frozen=True, slots=True)
class Liquidation:
    """The venue liquidated the hedge's short: when, how much short it closed (1e18 = one
    whole base unit) and the gross NAV it cost (asset wei, before - after)."""

    time: int
    size: int
    loss: int


@dataclass(slots=True)
class Observation:
    """The vault after a step, as the report reads it."""

    nav: int  # gross, asset wei
    net_nav: int  # totalAssets: net of fees not yet minted
    supply: int
    price_e8: int
    spot_base: int
    short_size: int
    spot_value: int
    short_value: int
    margin_ratio_bps: int | None
    pool_price_e8: int  # the spot pool's mid
    booked_short: int = 0  # the hedge's booked_short(): behind short_size until a call books a liquidation
    shutdown: bool = False

    @property
    def flat(self) -> bool:
        """Nothing hedged and nothing to hedge (parked, or never entered)."""
        return self.short_size == 0 and self.spot_base == 0

    @property
    def share_price(self) -> float:
        return self.net_nav * 10**DECIMALS_OFFSET / self.supply if self.supply else 0.0

    @property
    def delta_bps(self) -> float:
        """|spot - short| in bps of NAV, unrounded (the legs usually match within 1 bp)."""
        return abs(self.spot_value - self.short_value) * BPS / self.nav if self.nav else 0.0


@dataclass(slots=True)
class Ticked:
    kind: str  # "hold", a rebalance intent, "emergency", "revert", "down" (keeper off)
    reason: str
    expected_per_hour: float | None


@dataclass(frozen=True, slots=True)
class Probe:
    """Would a depositor's entry and exit go through now? None = accepted, else the
    revert reason. Simulated: nothing changes. `round_trip_bps`: when both go through, a
    newcomer's deposit of `PROBE_ASSETS` then redeem of all its shares (also undone),
    and what that did to the other holders' share price, signed bps (+ = they gained)."""

    deposit_refused: str | None
    redeem_refused: str | None
    round_trip_bps: float | None = None


# The round-trip probe's deposit, whole asset units.
PROBE_ASSETS = 10_000


class Backend(Protocol):
    costs: Costs
    trades: list[Trade]
    reverts: list[str]
    liquidations: list[Liquidation]
    # the margin ratio at the adverse extreme the last `advance` visited (None: none visited)
    extreme_ratio_bps: int | None

    def advance(self, step: MarketStep, previous: MarketStep | None) -> int:
        """The market moves to `step`, first through `previous`'s adverse extreme (the high
        for a short, the low for a long), where the hedge is liquidated if the venue
        allows; returns the pool's mid before the arbitrage (e8)."""
        ...

    def tick(self) -> Ticked: ...

    def probe(self) -> Probe: ...

    def observe(self) -> Observation: ...


@dataclass(slots=True)
class Step:
    time: int
    price_e8: int
    funding_rate_per_hour: float  # the rate the perp took for this step
    expected_per_hour: float | None
    action: str  # "hold", a rebalance intent, "emergency", "revert", "down"
    reason: str
    nav: int  # gross NAV after the step's action, asset wei
    share_price: float  # totalAssets / totalSupply, asset units per share unit
    margin_ratio_bps: int | None
    delta_bps: float
    parked: bool
    pool_price_before_arb_e8: int  # the spot pool's mid when the oracle moved
    label: str = ""
    probe: Probe | None = None
    short_size: int = 0  # the venue's short of the hedge, 1e18
    booked_short: int = 0  # the hedge's books of it
    unhedged: bool = False  # |spot - short| above the delta rule while neither flat nor shut down
    asset_price_e8: int = PRICE_UNIT
    premium_e18: int = 0  # the perp's premium over the index (1e18 = 100 %)


@dataclass
class ReplayResult:
    config: ReplayConfig
    mode: str
    steps: list[Step]
    costs: Costs
    trades: list[Trade]
    start: int
    end: int
    nav_start: int
    nav_end: int  # gross, asset wei
    net_nav_end: int
    supply_start: int
    supply_end: int
    carry_growth: float  # an always-hedged position at the target leverage: growth factor
    carry_simple: float  # the same, summed (fraction of NAV)
    rebalances: dict[str, int]
    reverts: list[str]
    liquidations: list[Liquidation]
    capped_prints: int
    parked_seconds: int
    reports: list[SeriesReport]
    notes: list[str]
    seconds: float  # wall time of the loop
    setup_seconds: float = 0.0
    scenario: str | None = None
    # (time, margin ratio bps) at each adverse extreme visited, for the position held since
    # the step before
    extreme_ratios: list[tuple[int, int]] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)  # holes in the funding replayed through
    passive: Passive | None = None  # the never-park hedge over the same inputs
    premium: str | None = None  # where the perp's premium came from (None: it marked at its index)

    @property
    def mean_short_to_nav(self) -> float:
        """Short notional / gross NAV, time-weighted over the steps (at the oracle)."""
        steps, end = self.steps, self.end
        if not steps:
            return 0.0
        unit = self.config.venue.asset_unit
        scale = SIZE_UNIT * PRICE_UNIT
        total = weight = 0.0
        for a, b in zip(steps, [*steps[1:], None], strict=True):
            seconds = (b.time if b is not None else end) - a.time
            if a.nav > 0:
                total += a.short_size * a.price_e8 * unit / scale / a.nav * seconds
            weight += seconds
        return total / weight if weight else 0.0

    @property
    def max_unhedged_hours(self) -> float:
        """The longest run of steps with |spot - short| above the delta rule while
        neither flat (parked) nor shut down, hours."""
        longest = run = 0
        for a, b in zip(self.steps, [*self.steps[1:], None], strict=True):
            if a.unhedged:
                run += (b.time if b is not None else self.end) - a.time
                longest = max(longest, run)
            else:
                run = 0
        return longest / 3_600

    @property
    def share_price_start(self) -> float:
        return float(self.nav_start * 10**DECIMALS_OFFSET / self.supply_start)

    @property
    def share_price_end(self) -> float:
        return float(self.net_nav_end * 10**DECIMALS_OFFSET / self.supply_end)


# ----------------------------------------------------------------------------- input


def rate_e18_per_second(p: FundingPrint) -> tuple[int, bool]:
    """The print as the market's 1e18-per-second rate (truncated), capped; and whether it was."""
    rate = int(Decimal(repr(p.rate)) * RATE_UNIT / p.interval)
    capped = max(-MAX_FUNDING_RATE, min(MAX_FUNDING_RATE, rate))
    return capped, capped != rate


@dataclass(frozen=True, slots=True)
class Gap:
    """A hole in the funding prints: the prints either side end at `start` and `end`
    (UTC seconds), more than one native interval (`interval`) apart."""

    start: int
    end: int
    interval: int

    @property
    def hours(self) -> float:
        return (self.end - self.start) / 3_600

    @property
    def blocking(self) -> bool:
        """Longer than `GAP_LIMIT_INTERVALS` intervals: replaying through it invents a market."""
        return self.end - self.start > GAP_LIMIT_INTERVALS * self.interval


class GapError(ValueError):
    """A blocking gap in the window (the message names it)."""


def find_gaps(prints: list[FundingPrint]) -> list[Gap]:
    """Every step between consecutive prints longer than the later one's interval (beyond
    the loaders' jitter), oldest first."""
    return [
        Gap(a.time, b.time, b.interval) for a, b in pairwise(prints) if b.time - a.time > b.interval + JITTER
    ]


def gap_free(prints: list[FundingPrint]) -> tuple[list[FundingPrint], str]:
    """The longest run of prints without a blocking gap (`Gap.blocking`), and a note naming
    the gap(s) cut (empty when none): for runs over many files that must not stop."""
    gaps = [g for g in find_gaps(prints) if g.blocking]
    if not gaps:
        return prints, ""
    starts = {p.time: i for i, p in enumerate(prints)}
    cuts = [starts[g.end] for g in gaps]
    bounds = [0, *cuts, len(prints)]
    lo, hi = max(pairwise(bounds), key=lambda ab: prints[ab[1] - 1].time - prints[ab[0]].time)
    holes = ", ".join(f"{g.hours:g} h" for g in gaps)
    return prints[lo:hi], f"hole(s) of {holes}: longest stretch without one"


def _when(t: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def check_gaps(gaps: list[Gap], label: str = "the funding history") -> None:
    """Raises `GapError` naming the first blocking gap (and how many more there are)."""
    blocking = [g for g in gaps if g.blocking]
    if not blocking:
        return
    g = blocking[0]
    more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
    raise GapError(
        f"{label}: a {g.hours:g} h gap in the funding prints, {_when(g.start)} -> {_when(g.end)} UTC{more}, "
        f"longer than {GAP_LIMIT_INTERVALS} intervals: replaying through it invents the market; pick a "
        "window without it (--from/--to) or pass --allow-gaps (the last rate is held through it)"
    )


class _Prices:
    """The price series as the steps read it: linear between its points (held before the
    first and after the last), and the bars' extremes (a point's bar lasts to the next
    point; the last one a typical bar), each bar's read once. Reads move forward in time."""

    def __init__(self, points: list[PricePoint]) -> None:
        self.times = [p.time for p in points]
        self.prices = [p.price for p in points]
        self.highs = [p.high for p in points]
        self.lows = [p.low for p in points]
        steps = sorted(b - a for a, b in pairwise(self.times))
        self.ends = [*self.times[1:], self.times[-1] + (steps[len(steps) // 2] if steps else STEP_SECONDS)]
        self.ranged = any(h is not None for h in self.highs)
        self.i = 0  # the last point at or before the last time read (or 0)
        self.j = 0  # the first bar whose extremes were not read yet

    def at(self, t: int) -> float:
        times, i = self.times, self.i
        if t < times[i]:
            i = self.i = bisect_right(times, t) - 1 if t >= times[0] else 0
        n = len(times)
        while i + 1 < n and times[i + 1] <= t:
            i += 1
        self.i = i
        if t <= times[i] or i + 1 == n:
            return self.prices[i]
        t0, t1 = times[i], times[i + 1]
        p0, p1 = self.prices[i], self.prices[i + 1]
        return p0 + (p1 - p0) * (t - t0) / (t1 - t0)

    def extremes(self, start: int, end: int) -> tuple[float, float] | None:
        """The highest high and lowest low of the bars that begin before `end` and were
        not read yet (each bar's extremes are read once: by the first span that reaches
        it), or None."""
        if not self.ranged:
            return None
        times, n = self.times, len(self.times)
        j = self.j
        while j < n and self.ends[j] <= start:
            j += 1  # bars over before the span were never reached (a series starting later)
        high = low = None
        while j < n and times[j] < end:
            h, lo = self.highs[j], self.lows[j]
            if h is not None and lo is not None:
                high = h if high is None else max(high, h)
                low = lo if low is None else min(low, lo)
            j += 1
        self.j = j
        return None if high is None or low is None else (high, low)


def history_steps(
    prints: list[FundingPrint], prices: list[PricePoint] | None, constant_price: float
) -> list[MarketStep]:
    """The steps of a funding history: each print's interval (from the previous print's
    end where they overlap) cut into `STEP_SECONDS` steps at its rate; a gap between
    prints stepped through the same way at the last rate (the feeder has nothing new to
    push; `check_gaps` decides whether a replay may); each step's price interpolated in
    the series (`constant_price` without one) and, where it has bars, on the first step
    inside each bar the bar's extremes: the hedge as it stood when the bar opened meets
    the bar's high and low before the keeper's next tick (a bar's extreme comes once; when
    in the bar is unknown, so the check takes it before the keeper could react)."""
    series = _Prices(prices) if prices else None
    unit = PRICE_UNIT
    constant = round(constant_price * unit)
    spans: list[tuple[int, int, int, bool]] = []  # (start, end, rate, capped)
    previous_end: int | None = None
    rate = 0
    for p in prints:
        start = p.time - p.interval
        if previous_end is not None:
            if start > previous_end:
                spans.append((previous_end, start, rate, False))  # a gap: the last rate held
            start = max(start, previous_end)
        rate, capped = rate_e18_per_second(p)
        if p.time > start:
            spans.append((start, p.time, rate, capped))
        previous_end = p.time if previous_end is None else max(previous_end, p.time)
    steps: list[MarketStep] = []
    append = steps.append
    for start, end, rate, capped in spans:
        t = start
        while t < end:
            length = min(STEP_SECONDS, end - t)
            if series is None:
                append(MarketStep(t, constant, rate, length, capped))
            else:
                price = round(series.at(t) * unit)
                span = series.extremes(t, t + length)
                if span is None:
                    append(MarketStep(t, price, rate, length, capped))
                else:
                    high, low = round(span[0] * unit), round(span[1] * unit)
                    append(MarketStep(t, price, rate, length, capped, high_e8=high, low_e8=low))
            capped = False  # a capped print counts once
            t += length
    return steps


def with_premium(steps: list[MarketStep], premium_at: Callable[[int], float]) -> list[MarketStep]:
    """The steps with the perp's premium at each step's time (a fraction, bounded to the
    venue's +-10 %), as the feeder sets it when the step's price lands."""
    out = []
    for s in steps:
        p = max(-MAX_PREMIUM, min(MAX_PREMIUM, round(premium_at(s.time) * 10**18)))
        out.append(replace(s, premium_e18=p) if p else s)
    return out


def price_e8_at(prices: list[PricePoint] | None, t: int, constant_price: float) -> int:
    """The oracle answer for `t`: the series interpolated there, or the constant."""
    return round((constant_price if not prices else _Prices(prices).at(t)) * PRICE_UNIT)


def end_price(prints: list[FundingPrint], prices: list[PricePoint] | None, config: ReplayConfig) -> int:
    """The oracle answer at the end of the last print's interval (the replay's last move)."""
    return price_e8_at(prices, prints[-1].time, config.constant_price)


def passive_settings(settings: Settings) -> Settings:
    """The same strategy that never parks (the park rate beyond any the market takes):
    the passive hedge every report is measured against."""
    if never_parks(settings):
        return settings
    park = min(NEVER_PARK_RATE, settings.reentry_rate_per_hour - 1)
    return settings.model_copy(update={"park_rate_per_hour": park})


def never_parks(settings: Settings) -> bool:
    return settings.park_rate_per_hour <= NEVER_PARK_RATE


@dataclass(frozen=True)
class Passive:
    """The never-park hedge (`passive_settings`) over the same market, venue and costs."""

    mode: str  # the mode it ran in ("model" beside a chain run)
    share_price_start: float
    share_price_end: float
    seconds: int
    mean_short_to_nav: float
    time_parked_fraction: float
    liquidations: int
    same_run: bool = False  # the run itself never parks: no second run

    @classmethod
    def of(cls, r: ReplayResult, same_run: bool = False) -> Passive:
        seconds = r.end - r.start
        return cls(
            r.mode,
            r.share_price_start,
            r.share_price_end,
            seconds,
            r.mean_short_to_nav,
            r.parked_seconds / seconds if seconds else 0.0,
            len(r.liquidations),
            same_run,
        )


# ----------------------------------------------------------------------------- the loop

Progress = Callable[[int, int], None]


class ReplayOptions(TypedDict, total=False):
    """What a replay may be given besides its steps: the loaders' reports and notes (kept
    in the result), a progress callback, the stress scenario's name, the price the last
    interval ends at, and the holes in the funding prints it replays through (kept in the
    result)."""

    reports: list[SeriesReport] | None
    notes: list[str] | None
    progress: Progress | None
    scenario: str | None
    end_price_e8: int | None
    gaps: list[Gap] | None
    premium: str | None  # where the steps' premium came from (None: none, the index is the mark)


OpenBackend = Callable[["ReplayConfig", MarketStep], AbstractContextManager[Backend]]


def replay(
    open_backend: OpenBackend,
    steps: list[MarketStep],
    config: ReplayConfig | None = None,
    *,
    mode: str,
    **options: Unpack[ReplayOptions],
) -> ReplayResult:
    """Runs `steps` (oldest first) on the backend `open_backend` opens (holding the deposits
    at `steps[0].time`), and a last market move to the end of the last interval."""
    config = config or ReplayConfig()
    if not steps:
        raise ValueError("no funding prints in the window")
    began = time.perf_counter()
    with open_backend(config, steps[0]) as backend:
        setup_seconds = time.perf_counter() - began
        return _run(backend, steps, config, mode, setup_seconds, options)


def _run(
    backend: Backend,
    steps: list[MarketStep],
    config: ReplayConfig,
    mode: str,
    setup_seconds: float,
    options: ReplayOptions,
) -> ReplayResult:
    progress, end_price_e8 = options.get("progress"), options.get("end_price_e8")
    began = time.perf_counter()
    steps = with_asset_pushes(steps, steps[0].time)
    first = backend.observe()
    max_delta_bps = config.rules.max_delta_bps
    lev = float(config.settings.target_leverage)
    exposure = lev / (lev + 1)  # short notional per unit of NAV at the target leverage
    carry_growth, carry_simple = 1.0, 0.0
    records: list[Step] = []
    extremes: list[tuple[int, int]] = []
    rebalances: dict[str, int] = {}
    capped = parked_seconds = 0
    previous: MarketStep | None = None
    advance, tick, observe, append = backend.advance, backend.tick, backend.observe, records.append
    down = Ticked("down", "the keeper is down", None)
    total = len(steps)
    for i, s in enumerate(steps):
        capped += s.capped
        pool_before = advance(s, previous)
        if backend.extreme_ratio_bps is not None:
            extremes.append((s.time, backend.extreme_ratio_bps))
        previous = s
        probe = backend.probe() if s.probe else None
        ticked = tick() if s.keeper else down
        kind = ticked.kind
        if kind != "hold" and kind != "revert" and kind != "down":
            rebalances[kind] = rebalances.get(kind, 0) + 1
        o = observe()
        short = o.short_size
        unhedged = (
            (short != 0 or o.spot_base != 0)
            and not o.shutdown
            and abs(o.spot_value - o.short_value) * BPS > o.nav * max_delta_bps
        )
        append(
            Step(
                s.time,
                o.price_e8,
                s.rate * 3_600 / RATE_UNIT,
                ticked.expected_per_hour,
                kind,
                ticked.reason,
                o.nav,
                o.share_price,
                o.margin_ratio_bps,
                o.delta_bps,
                short == 0,
                pool_before,
                s.label,
                probe,
                short,
                o.booked_short,
                unhedged,
                s.asset_price_e8,
                s.premium_e18,
            )
        )
        if short == 0:
            parked_seconds += s.interval
        step_carry = s.rate * s.interval / RATE_UNIT * exposure
        carry_growth *= 1 + step_carry
        carry_simple += step_carry
        if progress is not None:
            progress(i + 1, total)
    last = steps[-1]
    end = last.time + last.interval
    final = MarketStep(
        end,
        end_price_e8 or last.price_e8,
        last.rate,
        0,
        keeper=False,
        asset_price_e8=last.asset_price_e8,
        premium_e18=last.premium_e18,
    )
    advance(_with_final_push(steps, final), last)
    if backend.extreme_ratio_bps is not None:
        extremes.append((end, backend.extreme_ratio_bps))
    o = backend.observe()
    return ReplayResult(
        config=config, mode=mode, scenario=options.get("scenario"),
        steps=records, costs=backend.costs, trades=list(backend.trades),
        start=steps[0].time, end=end,
        nav_start=first.nav, nav_end=o.nav, net_nav_end=o.net_nav,
        supply_start=first.supply, supply_end=o.supply,
        carry_growth=carry_growth, carry_simple=carry_simple,
        rebalances=rebalances, reverts=list(backend.reverts), liquidations=list(backend.liquidations),
        capped_prints=capped, parked_seconds=parked_seconds,
        reports=list(options.get("reports") or []), notes=list(options.get("notes") or []),
        seconds=time.perf_counter() - began, setup_seconds=setup_seconds,
        extreme_ratios=extremes, gaps=list(options.get("gaps") or []), premium=options.get("premium"),
    )  # fmt: skip
