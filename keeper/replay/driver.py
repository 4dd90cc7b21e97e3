"""The replay loop both modes share, and the records it keeps.

A replay is a list of `MarketStep`s: at each step's time the market moves (the feeder
pushes the oracle and the funding rate and keeps the asset's USD feed fresh, a liquidator
checks the hedge's short, an arbitrageur trades the spot pool back to the oracle), then
the keeper ticks. What a step does can be switched off or bent by a stress scenario
(`keeper.replay.scenarios`): no oracle update, no arbitrage, the pool left off the
oracle, the keeper down, the asset off its peg, a depositor probing whether entries and
exits are refused (and what a newcomer's round trip does to the other holders).

A `Backend` carries the steps out: `keeper.replay.exact.ModelBackend` on the exact Python
models, `keeper.replay.anvil.ChainBackend` on anvil with the deployed contracts and the
real keeper tick. The loop here is the same for both, so the two modes can only differ
where their backends do, and the test that runs both on one input says they do not.

Every NAV change is attributed as it happens, in asset wei (`Costs`); the trades a
backend saw are kept (`Trade`) for the cost basis and the basis at entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Protocol, TypedDict, Unpack

from keeper.bot.strategy import Settings
from keeper.core.fixed import BPS, MAX_FUNDING_RATE, PRICE_UNIT, RATE_UNIT, value
from keeper.core.rules import VaultRules, VenueParams
from keeper.data.files import FundingPrint, PricePoint, SeriesReport, price_at
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


@dataclass(frozen=True, slots=True)
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


@dataclass
class Costs:
    """Attribution of every NAV change, asset wei (costs positive)."""

    funding: int = 0  # net received (+) over the run
    funding_received: int = 0
    funding_paid: int = 0
    spot_pnl: int = 0  # the spot leg's value change at the oracle between trades
    perp_pnl: int = 0  # the short's unrealised PnL change at the index between trades
    spot_fees: int = 0
    spot_impact: int = 0
    perp_fees: int = 0
    perp_impact: int = 0
    liquidation_loss: int = 0
    gas_units: int = 0

    def market_move(self, funding: int, spot: int, perp: int) -> None:
        """Books one market move's funding and the legs' price PnL (deltas, asset wei)."""
        self.funding += funding
        if funding >= 0:
            self.funding_received += funding
        else:
            self.funding_paid -= funding
        self.spot_pnl += spot
        self.perp_pnl += perp


@dataclass(frozen=True, slots=True)
class Swap:
    base_in: bool
    amount_in: int
    amount_out: int


@dataclass(frozen=True, slots=True)
class Fill:
    size_delta: int  # + buys (reduces the short), - sells
    fill_price_e8: int
    index_price_e8: int
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
        # a buy above the index or a sell below it loses the difference
        costs.perp_impact += value(f.size_delta, f.fill_price_e8, asset_unit, True) - value(
            f.size_delta, f.index_price_e8, asset_unit, True
        )
    return traded


@dataclass(frozen=True, slots=True)
class Liquidation:
    """The venue liquidated the hedge's short: when, how much short it closed (1e18 = one
    whole base unit) and the gross NAV it cost (asset wei, before - after)."""

    time: int
    size: int
    loss: int


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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

    def advance(self, step: MarketStep) -> int:
        """The market moves to `step`; returns the pool's mid before the arbitrage (e8)."""
        ...

    def tick(self) -> Ticked: ...

    def probe(self) -> Probe: ...

    def observe(self) -> Observation: ...


@dataclass(frozen=True, slots=True)
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


def history_steps(
    prints: list[FundingPrint], prices: list[PricePoint] | None, constant_price: float
) -> list[MarketStep]:
    """One step per funding print, at the start of its interval, with the price then
    (`price_at`: the last at or before; `constant_price` without a series)."""
    steps = []
    for p in prints:
        t0 = p.time - p.interval
        rate, capped = rate_e18_per_second(p)
        steps.append(MarketStep(t0, price_e8_at(prices, t0, constant_price), rate, p.interval, capped))
    return steps


def price_e8_at(prices: list[PricePoint] | None, t: int, constant_price: float) -> int:
    """The oracle answer for `t`: the series' last price at or before it, or the constant."""
    return round((constant_price if not prices else price_at(prices, t)) * PRICE_UNIT)


def end_price(prints: list[FundingPrint], prices: list[PricePoint] | None, config: ReplayConfig) -> int:
    """The oracle answer at the end of the last print's interval (the replay's last move)."""
    return price_e8_at(prices, prints[-1].time, config.constant_price)


# ----------------------------------------------------------------------------- the loop

Progress = Callable[[int, int], None]


class ReplayOptions(TypedDict, total=False):
    """What a replay may be given besides its steps: the loaders' reports and notes (kept
    in the result), a progress callback, the stress scenario's name, and the price the last
    interval ends at."""

    reports: list[SeriesReport] | None
    notes: list[str] | None
    progress: Progress | None
    scenario: str | None
    end_price_e8: int | None


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
    rebalances: dict[str, int] = {}
    capped = parked_seconds = 0
    for i, s in enumerate(steps):
        capped += s.capped
        pool_before = backend.advance(s)
        probe = backend.probe() if s.probe else None
        ticked = backend.tick() if s.keeper else Ticked("down", "the keeper is down", None)
        if ticked.kind not in ("hold", "revert", "down"):
            rebalances[ticked.kind] = rebalances.get(ticked.kind, 0) + 1
        o = backend.observe()
        unhedged = (
            not o.flat and not o.shutdown and abs(o.spot_value - o.short_value) * BPS > o.nav * max_delta_bps
        )
        records.append(
            Step(
                s.time,
                o.price_e8,
                s.rate * 3_600 / RATE_UNIT,
                ticked.expected_per_hour,
                ticked.kind,
                ticked.reason,
                o.nav,
                o.share_price,
                o.margin_ratio_bps,
                o.delta_bps,
                o.short_size == 0,
                pool_before,
                s.label,
                probe,
                o.short_size,
                o.booked_short,
                unhedged,
                s.asset_price_e8,
            )
        )
        if o.short_size == 0:
            parked_seconds += s.interval
        step_carry = s.rate * s.interval / RATE_UNIT * exposure
        carry_growth *= 1 + step_carry
        carry_simple += step_carry
        if progress is not None:
            progress(i + 1, len(steps))
    last = steps[-1]
    end = last.time + last.interval
    final = MarketStep(
        end, end_price_e8 or last.price_e8, last.rate, 0, keeper=False, asset_price_e8=last.asset_price_e8
    )
    backend.advance(with_asset_pushes([*steps, final], steps[0].time)[-1])
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
    )  # fmt: skip
