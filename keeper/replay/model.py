"""Model-mode replay: the real strategy over a funding (and price) history, on the exact
venue models and the vault transcription (`keeper.model.world.World`), no chain.

Each step is one funding print covering [start, end] (`keeper.history.FundingPrint`):
at `start` the world warps there (funding accrues at the old rate and price), the
oracle takes the price at `start` (`keeper.history.price_at`), the perp takes the
print's rate as its 1e18-per-second integer (rate / interval * 1e18, capped at the
market's bound), an arbitrageur trades the spot pool back to the oracle
(`keeper.venue.arb_trade`), and the keeper decides as `basis-keeper run` does: a
`VaultState` read from the world and the reference market's `FundingView` built by the
same `keeper.reference.ReferenceHistory` code from the rates pushed so far, then
`keeper.strategy.decide`. A proposal is applied on the transcribed vault, which refuses
what the contract would (counted as a revert). Fees accrue on the share side
(`keeper.model.accounting`) at every keeper call, as the vault does.

Every NAV change is attributed as it happens, in asset wei: funding (settled plus
accrued, from the market's own index), the spot and perp legs' price PnL at the oracle,
and per trade the pool fee, the taker fee and the price impact (what the fill lost
against the oracle beyond the fee). The report checks these add up to the NAV change.
Gas is paid by the keeper's account, not the vault: it is priced and reported, never
part of the share price. The rate the perp takes over an interval is the print for that
interval (venues publish the predicted rate during the interval; the keeper sees it as
the live rate, as it would on chain).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

from keeper.history import FundingPrint, PricePoint, SeriesReport, price_at
from keeper.model.accounting import DECIMALS_OFFSET, AccountingModel
from keeper.model.venue import (
    BPS,
    MAX_FUNDING_RATE,
    PRICE_UNIT,
    RATE_UNIT,
    ModelRevert,
    PerpModel,
    SpotPoolModel,
    value,
)
from keeper.model.world import VAULT, World
from keeper.reference import ReferenceHistory
from keeper.sources.base import Limits
from keeper.strategy import Decision, EmergencyDeleverage, Hold, Intent, Rebalance, Settings, decide
from keeper.venue import VaultRules, VenueParams

YEAR = 365 * 86_400
# Gas per call, from `make bench` (reports/bench.json): rebalance open / adjust / park,
# emergency_deleverage.
GAS_UNITS = {"open": 504_625, "adjust": 321_896, "park": 241_962, "emergency": 282_641}


@dataclass(frozen=True)
class ReplayConfig:
    """What the replay runs with. Money in whole asset units unless `_wei`."""

    deposit: int = 1_000_000
    venue: VenueParams = field(default_factory=VenueParams)
    rules: VaultRules = field(default_factory=VaultRules)
    settings: Settings = field(default_factory=Settings)
    management_fee_bps: int = 0
    performance_fee_bps: int = 0
    gas_gwei: float = 20.0
    eth_price_usd: float = 3_000.0
    constant_price: float = 3_000.0  # the oracle price when no price series is given


class _RecordingPool(SpotPoolModel):
    """The spot pool, noting the vault's swaps (input token, amount in, amount out)."""

    recording: bool = False
    swaps: list[tuple[bool, int, int]]

    def swap(self, base_in: bool, amount_in: int, min_out: int = 0) -> int:
        out = super().swap(base_in, amount_in, min_out)
        if self.recording:
            self.swaps.append((base_in, amount_in, out))
        return out


class _RecordingPerp(PerpModel):
    """The perp market, noting the vault's fills (size, fill, index, fee) and funding settled."""

    fills: list[tuple[int, int, int, int]]
    settled: int = 0

    def modify_position(self, who: str, size_delta: int) -> tuple[int, int, int]:
        fill, fee, realized = super().modify_position(who, size_delta)
        if who == VAULT:
            self.fills.append((size_delta, fill, self.price_e8, fee))
        return fill, fee, realized

    def _settle_funding(self, who: str) -> int:
        amount = super()._settle_funding(who)
        if who == VAULT and self.account(who).size != 0:
            self.settled += amount
        return amount


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


@dataclass(frozen=True, slots=True)
class Step:
    time: int
    price_e8: int
    funding_rate_per_hour: float  # the rate the perp took for this step
    expected_per_hour: float | None
    action: str  # "hold", a rebalance intent, "emergency", "revert"
    nav: int  # gross NAV after the step's action, asset wei
    share_price: float  # totalAssets / totalSupply, asset units per share unit
    margin_ratio_bps: int | None
    delta_bps: int
    parked: bool


@dataclass
class ReplayResult:
    config: ReplayConfig
    steps: list[Step]
    costs: Costs
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
    liquidations: int
    capped_prints: int
    parked_seconds: int
    reports: list[SeriesReport]
    notes: list[str]
    seconds: float  # wall time of the run

    @property
    def share_price_start(self) -> float:
        return float(self.nav_start * 10**DECIMALS_OFFSET / self.supply_start)

    @property
    def share_price_end(self) -> float:
        return float(self.net_nav_end * 10**DECIMALS_OFFSET / self.supply_end)


def rate_e18_per_second(p: FundingPrint) -> tuple[int, bool]:
    """The print as the market's 1e18-per-second rate (truncated), capped; and whether it was."""
    rate = int(Decimal(repr(p.rate)) * RATE_UNIT / p.interval)
    capped = max(-MAX_FUNDING_RATE, min(MAX_FUNDING_RATE, rate))
    return capped, capped != rate


class ModelReplay:
    """One vault, one venue, one keeper; `run` replays a history through them."""

    def __init__(self, config: ReplayConfig, start: int, price_e8: int) -> None:
        self.config = c = config
        v = c.venue
        perp = _RecordingPerp(
            asset_unit=v.asset_unit,
            price_e8=price_e8,
            now=start,
            taker_fee_ppm=v.taker_fee_ppm,
            initial_margin_bps=v.initial_margin_bps,
            maintenance_margin_bps=v.maintenance_margin_bps,
            liquidation_fee_bps=v.liquidation_fee_bps,
            depth=v.asset_wei(v.depth_asset),
            max_oracle_age=v.max_oracle_age,
            pool_liquidity=10**30,
        )
        perp.fills = []
        pool_asset = v.asset_wei(v.spot_seed_asset)
        pool_base = pool_asset * v.base_unit * PRICE_UNIT // (price_e8 * v.asset_unit)
        pool = _RecordingPool(pool_base, pool_asset, v.spot_fee_bps)
        pool.swaps = []
        self.world = World(perp, pool, c.rules, v.asset_unit, v.base_unit, last_rebalance_time=start)
        self.perp, self.pool = perp, pool
        self.accounting = AccountingModel(
            v.asset_unit,
            v.base_unit,
            last_fee_time=start,
            fee_recipient="fees",
            management_fee_bps=c.management_fee_bps,
            performance_fee_bps=c.performance_fee_bps,
        )
        amount = v.asset_wei(c.deposit)
        self.accounting.deposit("depositor", amount, 0, start)
        self.world.deposit(amount)
        self.reference = ReferenceHistory(start, 0)
        self.limits = Limits()
        self.costs = Costs()
        self.rebalances: dict[str, int] = {}
        self.reverts: list[str] = []
        self.liquidations = 0

    # ------------------------------------------------------------------ market moves

    def _funding_total(self) -> int:
        return self.perp.settled + self.perp.accrued_funding(VAULT)

    def _leg_values(self) -> tuple[int, int]:
        w = self.world
        return w._base_value(w.spot_base, w.price), self.perp.unrealized_pnl(VAULT)

    def advance(self, to: int, price_e8: int, rate: int) -> None:
        """Time to `to`, the oracle to `price_e8`, the perp's rate to `rate`; PnL attributed."""
        c, perp = self.costs, self.perp
        funding0 = self._funding_total()
        spot0, perp0 = self._leg_values()
        perp.warp(to - perp.now)
        perp.set_price(price_e8)
        funding1 = self._funding_total()
        spot1, perp1 = self._leg_values()
        step_funding = funding1 - funding0
        c.funding += step_funding
        if step_funding >= 0:
            c.funding_received += step_funding
        else:
            c.funding_paid -= step_funding
        c.spot_pnl += spot1 - spot0
        c.perp_pnl += perp1 - perp0
        if perp.funding_rate != rate:
            perp.set_funding_rate(rate)
            self.reference.changes.append((to, rate))
            self._prune_reference(to)
        if perp.is_liquidatable(VAULT):
            nav_before = self.world._nav(price_e8)
            perp.liquidate(VAULT)
            self.liquidations += 1
            c.liquidation_loss += nav_before - self.world._nav(price_e8)
        self.world.arb_pool()

    def _prune_reference(self, now: int) -> None:
        """Keeps the reference history to what the funding window can see (the chain keeps
        all of it; the views are the same, and a long replay stays linear)."""
        ref = self.reference
        keep_from = now - self.config.settings.funding_window_hours * 3_600 - 86_400
        if len(ref.changes) < 256 or ref.changes[0][0] >= keep_from:
            return
        ref.initial_rate = ref.rate_at(keep_from)
        ref.start = max(ref.start, keep_from)
        ref.changes = [(t, r) for t, r in ref.changes if t > keep_from]

    # ------------------------------------------------------------------ the keeper

    def tick(self) -> tuple[Decision, str]:
        w = self.world
        state = w.state()
        view = self.reference.view(
            block_timestamp=state.block_timestamp,
            funding_rate=state.funding_rate,
            index_price_e8=state.oracle_price_e8,
            window=self.config.settings.funding_window_hours * 3_600,
            limits=self.limits,
        )
        decision = decide(state, [view], self.config.settings)
        action = decision.action
        if isinstance(action, Hold):
            return decision, "hold"
        kind = action.intent.value if isinstance(action, Rebalance) else "emergency"
        gross = w._nav(w.price)
        self.accounting.accrue(gross, w.now)  # every keeper call checkpoints fees first
        saved = w.copy()
        self.perp.fills, self.pool.swaps = [], []
        self.pool.recording = True
        spot0 = self._leg_values()[0]
        try:
            if isinstance(action, Rebalance):
                w.rebalance(action.target_short, action.target_margin, action.max_slippage_bps)
            else:
                assert isinstance(action, EmergencyDeleverage)
                w.emergency_deleverage()
        except ModelRevert as err:
            self.world = saved
            self.perp, self.pool = cast(_RecordingPerp, saved.perp), cast(_RecordingPool, saved.pool)
            self.pool.recording = False
            self.reverts.append(f"{w.now}: {kind}: {err}")
            return decision, "revert"
        self.pool.recording = False
        self._book_trades(spot0)
        self.rebalances[kind] = self.rebalances.get(kind, 0) + 1
        if isinstance(action, EmergencyDeleverage):
            gas = GAS_UNITS["emergency"]
        else:
            gas = GAS_UNITS[{Intent.PARK: "park", Intent.ENTER: "open"}.get(action.intent, "adjust")]
        self.costs.gas_units += gas
        return decision, kind

    def _book_trades(self, spot0: int) -> None:
        """Attributes a keeper call's NAV change to fees and impact, per fill, at the oracle."""
        c, w = self.costs, self.world
        price = w.price
        fee_bps = self.pool.fee_bps
        for base_in, amount_in, out in self.pool.swaps:
            given = w._base_value(amount_in, price) if base_in else amount_in
            got = out if base_in else w._base_value(out, price)
            fee = given * fee_bps // BPS
            c.spot_fees += fee
            c.spot_impact += given - got - fee
        unit = self.perp.asset_unit
        for size_delta, fill, index, fee in self.perp.fills:
            c.perp_fees += fee
            # a buy above the index or a sell below it loses the difference
            c.perp_impact += value(size_delta, fill, unit, True) - value(size_delta, index, unit, True)
        # what the legs' value did besides the trades: spot bought or sold at the oracle is
        # neutral, so only the trades' own losses above move NAV
        spot1 = w._base_value(w.spot_base, price)
        traded_spot = sum(
            -w._base_value(a, price) if b else w._base_value(o, price) for b, a, o in self.pool.swaps
        )
        c.spot_pnl += spot1 - spot0 - traded_spot  # rounding of the books' base value only
        self.perp.fills, self.pool.swaps = [], []

    # ------------------------------------------------------------------ reads

    def share_price(self, gross: int) -> tuple[int, int, float]:
        a, w = self.accounting, self.world
        net = a.net_nav(gross, w.now)
        supply = a.supply
        return net, supply, net * 10**DECIMALS_OFFSET / supply


def run_model(
    prints: list[FundingPrint],
    prices: list[PricePoint] | None,
    config: ReplayConfig | None = None,
    *,
    reports: list[SeriesReport] | None = None,
    notes: list[str] | None = None,
) -> ReplayResult:
    """Replays `prints` (oldest first) with `prices` (None: a constant price)."""
    config = config or ReplayConfig()
    if not prints:
        raise ValueError("no funding prints in the window")
    began = time.perf_counter()
    notes = list(notes or [])
    if prices is None:
        notes.append(f"no price series: the oracle is held at {config.constant_price:g}")

    def price_e8(t: int) -> int:
        p = config.constant_price if not prices else price_at(prices, t)
        return round(p * PRICE_UNIT)

    start = prints[0].time - prints[0].interval
    replay = ModelReplay(config, start, price_e8(start))
    nav_start = replay.world._nav(replay.world.price)
    supply_start = replay.accounting.supply
    lev = float(config.settings.target_leverage)
    exposure = lev / (lev + 1)  # short notional per unit of NAV at the target leverage
    carry_growth, carry_simple = 1.0, 0.0
    steps: list[Step] = []
    capped = parked_seconds = 0
    for p in prints:
        t0 = p.time - p.interval
        rate, was_capped = rate_e18_per_second(p)
        capped += was_capped
        replay.advance(max(t0, replay.world.now), price_e8(t0), rate)
        decision, kind = replay.tick()
        w = replay.world
        gross = w._nav(w.price)
        _, _, pps = replay.share_price(gross)
        state_short = w.short_size
        acct = w.perp.account(VAULT)
        ratio = w.perp.margin_ratio_bps(VAULT) if acct.size else None
        spot_value = w._base_value(w.spot_base, w.price)
        short_value = w._size_value(state_short, w.price, False)
        delta_bps = abs(spot_value - short_value) * BPS // gross if gross else 0
        expected = decision.signals.funding.expected_rate_per_hour
        steps.append(
            Step(
                t0,
                w.price,
                rate * 3_600 / RATE_UNIT,
                None if expected is None else float(expected),
                kind,
                gross,
                pps,
                ratio,
                delta_bps,
                state_short == 0,
            )
        )
        if state_short == 0:
            parked_seconds += p.interval
        step_carry = rate * p.interval / RATE_UNIT * exposure
        carry_growth *= 1 + step_carry
        carry_simple += step_carry
    end = prints[-1].time
    last = prints[-1]
    replay.advance(end, price_e8(end), rate_e18_per_second(last)[0])
    w = replay.world
    gross = w._nav(w.price)
    net, supply, _ = replay.share_price(gross)
    return ReplayResult(
        config=config,
        steps=steps,
        costs=replay.costs,
        start=start,
        end=end,
        nav_start=nav_start,
        nav_end=gross,
        net_nav_end=net,
        supply_start=supply_start,
        supply_end=supply,
        carry_growth=carry_growth,
        carry_simple=carry_simple,
        rebalances=replay.rebalances,
        reverts=replay.reverts,
        liquidations=replay.liquidations,
        capped_prints=capped,
        parked_seconds=parked_seconds,
        reports=list(reports or []),
        notes=notes,
        seconds=time.perf_counter() - began,
    )
