"""Model-mode replay: the real strategy over a funding (and price) history, on the exact
venue models and the one vault + hedge model (`keeper.model.vault.BasisModel`), no chain.

Each step (`keeper.replay.driver.MarketStep`) covers at most an hour of a funding print's
interval [start, end]: at `start` the world warps there (funding accrues at the old rate
and price); where the price file has bars, the oracle first visits the adverse extreme of
the bar the last step opened (the high for a short) and a liquidator liquidates there if
`PerpModel.is_liquidatable` says so; the oracle takes the price at `start` (interpolated
in the price file), the perp takes the print's rate as its 1e18-per-second integer (rate
/ interval * 1e18, capped at the market's bound), an arbitrageur trades the spot pool back
to the oracle (`keeper.model.markets.arb_trade`), and the keeper decides as `basis-keeper run` does: a
`VaultState` read from the world and the reference market's `FundingView` built by the
same `keeper.bot.reference.ReferenceHistory` code from the rates pushed so far, then
`keeper.bot.strategy.decide`. A proposal is applied on the model, which refuses what the
contracts would (counted as a revert). Fees accrue on entries and exits only, as the
vault does (keeper calls do not accrue them); `totalAssets` is net of what is pending.
A liquidator liquidates the hedge's short whenever the venue allows it; the hedge books
it on its next call.

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

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Unpack, cast

from keeper.bot.reference import ReferenceHistory
from keeper.bot.strategy import EmergencyDeleverage, Hold, Intent, Rebalance, Unwind, decide
from keeper.core.fixed import BPS, mul_div_signed, value
from keeper.core.state import VaultState
from keeper.data.files import FundingPrint, PricePoint, SeriesReport
from keeper.data.records import Limits
from keeper.model.markets import (
    FUNDING_DENOMINATOR,
    ModelRevert,
    PerpModel,
    SpotPoolModel,
    UniswapV3FullRangeModel,
)
from keeper.model.vault import DECIMALS_OFFSET, HEDGE, BasisModel
from keeper.replay.driver import (
    GAS_UNITS,
    PROBE_ASSETS,
    YEAR,
    Costs,
    Fill,
    Liquidation,
    MarketStep,
    Observation,
    Passive,
    Probe,
    ReplayConfig,
    ReplayOptions,
    ReplayResult,
    Swap,
    Ticked,
    Trade,
    book_trades,
    check_gaps,
    end_price,
    find_gaps,
    history_steps,
    never_parks,
    passive_settings,
    rate_e18_per_second,
    replay,
)

__all__ = ["YEAR", "ModelBackend", "ReplayConfig", "ReplayResult", "rate_e18_per_second", "run_model"]


class _RecordingPool(SpotPoolModel):
    """The spot pool, noting the vault's swaps."""

    recording: bool = False
    swaps: list[Swap]

    def swap(self, base_in: bool, amount_in: int, min_out: int = 0) -> int:
        out = super().swap(base_in, amount_in, min_out)
        if self.recording:
            self.swaps.append(Swap(base_in, amount_in, out))
        return out


class _RecordingV3Pool(_RecordingPool, UniswapV3FullRangeModel):
    """A full-range Uniswap v3 pool (`--spot uniswap-v3`), noting the vault's swaps."""


class _RecordingPerp(PerpModel):
    """The perp market, noting the vault's fills and the funding it settled."""

    fills: list[Fill]
    settled: int = 0

    def modify_position(self, who: str, size_delta: int) -> tuple[int, int, int]:
        fill, fee, realized = super().modify_position(who, size_delta)
        if who == HEDGE:
            self.fills.append(Fill(size_delta, fill, self.mark_e8, fee))
        return fill, fee, realized

    def _settle_funding(self, who: str) -> int:
        amount = super()._settle_funding(who)
        if who == HEDGE and self.account(who).size != 0:
            self.settled += amount
        return amount


class ModelBackend:
    """One vault, one venue, one keeper, in Python; the depositors are in at `start`."""

    def __init__(self, config: ReplayConfig, start: int, price_e8: int) -> None:
        self.config = c = config
        v = c.venue
        perp = _RecordingPerp.deployed(v, price_e8, start, pool_liquidity=10**30)
        perp.fills = []
        pool = (_RecordingV3Pool if c.spot == "uniswap-v3" else _RecordingPool).seeded(v, price_e8)
        pool.swaps = []
        self.world = w = BasisModel(perp, pool, c.rules, v.asset_unit, v.base_unit)
        self.perp, self.pool = perp, pool
        w.fee_recipient = "fees"
        w.management_fee_bps = c.management_fee_bps
        w.performance_fee_bps = c.performance_fee_bps
        for i, amount in enumerate(c.deposits_wei()):
            w.deposit(amount, f"depositor{i}")
        self.reference = ReferenceHistory(start, 0)
        self.limits = Limits()
        self.costs = Costs()
        self.trades: list[Trade] = []
        self.reverts: list[str] = []
        self.liquidations: list[Liquidation] = []
        self.extreme_ratio_bps: int | None = None  # at the extreme the last advance visited
        self._last_marks: tuple[int, int, int, int] | None = None  # as of the last observe()
        self._unchanged: VaultState | None = None  # the state a held tick read (none moved since)

    # ------------------------------------------------------------------ market moves

    def _marks(self) -> tuple[int, int, int, int]:
        """(funding the vault's position received so far, spot value, short's unrealised
        PnL at the index, its value at the mark less at the index), asset wei: what a
        market move is attributed from. One account lookup."""
        perp, w = self.perp, self.world
        spot = w._base_value(w.spot_base, w.price)
        a = perp.accounts.get(HEDGE)
        if a is None or a.size == 0:
            return perp.settled, spot, 0, 0
        unit = perp.asset_unit
        funding = mul_div_signed(
            -a.size, perp.current_funding_index() - a.funding_entry, FUNDING_DENOMINATOR // unit, False
        )
        at_index = value(a.size, perp.price_e8, unit, False)
        basis = value(a.size, perp.mark_e8, unit, False) - at_index if perp.premium else 0
        return perp.settled + funding, spot, at_index - a.cost, basis

    def advance(self, step: MarketStep, previous: MarketStep | None = None) -> int:
        self._unchanged = None
        self.extreme_ratio_bps = None
        perp, w = self.perp, self.world
        funding0, spot0, perp0, basis0 = self._last_marks or self._marks()
        perp.warp(step.time - perp.now)
        if step.premium_e18 != perp.premium:
            perp.set_premium(step.premium_e18)  # the step's premium, at the extreme too (as on chain)
        if previous is not None and step.push_oracle and (previous.high_e8 or previous.low_e8):
            # the bar's adverse extreme since the last step: the oracle visits it (funding
            # checkpointed at the old price, as the step's own push would), a liquidator
            # checks there, then the step's price lands
            a = perp.accounts.get(HEDGE)
            size = a.size if a is not None else 0
            extreme = previous.high_e8 if size < 0 else previous.low_e8 if size > 0 else 0
            if extreme:
                perp.set_price(extreme)
                self.extreme_ratio_bps = perp.margin_ratio_bps(HEDGE)
                if perp.is_liquidatable(HEDGE):
                    funding1, spot1, perp1, basis1 = self._marks()
                    self.costs.market_move(funding1 - funding0, spot1 - spot0, perp1 - perp0, basis1 - basis0)
                    self._liquidate(step.time)
                    funding0, spot0, perp0, basis0 = self._marks()
        if step.push_oracle:
            perp.set_price(step.price_e8)
        if step.push_asset:
            w.push_asset_price(step.asset_price_e8)
        funding1, spot1, perp1, basis1 = self._marks()
        self.costs.market_move(funding1 - funding0, spot1 - spot0, perp1 - perp0, basis1 - basis0)
        self._last_marks = None
        if perp.funding_rate != step.rate:
            perp.set_funding_rate(step.rate)
            self.reference.changes.append((step.time, step.rate))
            self.reference.prune(step.time, self.config.settings.history_hours * 3_600 + 86_400)
        if perp.is_liquidatable(HEDGE):
            self._liquidate(step.time)
        pool_before = self.pool.price_e8(w.base_unit, w.asset_unit)
        if step.arbitrage:
            w.arb_pool()
        if step.pool_offset_bps:
            w.arb_pool(w.price * (10_000 + step.pool_offset_bps) // 10_000)
        return pool_before

    def _liquidate(self, when: int) -> None:
        """A liquidator liquidates the hedge's short at the market's price now; the NAV it
        costs (gross, at this price) is the loss."""
        w = self.world
        nav_before, short_before = w.nav(), w.short_size
        self.perp.liquidate(HEDGE)
        loss = nav_before - w.nav()
        self.liquidations.append(Liquidation(when, short_before - w.short_size, loss))
        self.costs.liquidation_loss += loss

    # ------------------------------------------------------------------ the keeper

    def tick(self) -> Ticked:
        w = self.world
        state = w.state()
        view = self.reference.view(
            block_timestamp=state.block_timestamp,
            funding_rate=state.funding_rate,
            index_price_e8=state.oracle_price_e8,
            window=self.config.settings.history_hours * 3_600,
            limits=self.limits,
            trailing=self.config.settings.window_spans,
        )
        decision = decide(state, [view], self.config.settings)
        action = decision.action
        expected = decision.signals.funding.expected_rate_per_hour
        expected_f = None if expected is None else float(expected)
        if isinstance(action, Hold):
            self._unchanged = state  # what observe() reads, unless something moves first
            return Ticked("hold", decision.reason, expected_f)
        if isinstance(action, Rebalance):
            kind = action.intent.value
        else:
            kind = "unwind" if isinstance(action, Unwind) else "emergency"
        saved = w.copy()
        self.perp.fills, self.pool.swaps = [], []
        self.pool.recording = True
        spot0 = self._marks()[1]
        try:
            if isinstance(action, Rebalance):
                w.rebalance(action.target_short, action.target_margin, action.max_slippage_bps)
            elif isinstance(action, Unwind):
                w.unwind(action.max_size)
            else:
                assert isinstance(action, EmergencyDeleverage)
                w.emergency_deleverage()
        except ModelRevert as err:
            self.world = saved
            self.perp, self.pool = cast(_RecordingPerp, saved.perp), cast(_RecordingPool, saved.pool)
            self.pool.recording = False
            self.reverts.append(f"{w.now}: {kind}: {err}")
            return Ticked("revert", str(err), expected_f)
        self.pool.recording = False
        if isinstance(action, EmergencyDeleverage):
            gas = GAS_UNITS["emergency"]
        elif isinstance(action, Unwind):
            gas = GAS_UNITS["unwind"]
        else:
            gas = GAS_UNITS[{Intent.PARK: "park", Intent.ENTER: "open"}.get(action.intent, "adjust")]
        self.costs.gas_units += gas
        swaps, fills = tuple(self.pool.swaps), tuple(self.perp.fills)
        self.trades.append(Trade(w.now, kind, w.price, swaps, fills, gas))
        traded = book_trades(
            self.costs, swaps, fills, w.price, w._base_value, self.pool.fee_bps, self.perp.asset_unit
        )
        # spot bought or sold at the oracle is neutral: what remains is the books' rounding
        self.costs.spot_pnl += self._marks()[1] - spot0 - traded
        self.perp.fills, self.pool.swaps = [], []
        return Ticked(kind, decision.reason, expected_f)

    def probe(self) -> Probe:
        """A one-unit deposit and a holder's one-share-unit redeem, each on a copy; when
        both go through, a newcomer's round trip of PROBE_ASSETS on a copy."""
        w = self.world
        one = w.asset_unit
        refused: list[str | None] = []
        for entry in (True, False):
            trial = w.copy()
            try:
                if entry:
                    trial.deposit(one, "prober")
                else:
                    trial.redeem(one * 10**DECIMALS_OFFSET, "depositor0")
            except ModelRevert as err:
                refused.append(str(err))
            else:
                refused.append(None)
        round_trip = None
        if refused == [None, None]:
            trial = w.copy()
            assets0, supply0 = trial.total_assets(), trial.supply
            try:
                shares = trial.deposit(PROBE_ASSETS * one, "prober")
                trial.redeem(shares, "prober")
            except ModelRevert:
                pass
            else:
                before = assets0 / supply0
                round_trip = (trial.total_assets() / trial.supply - before) / before * BPS
        return Probe(refused[0], refused[1], round_trip)

    def observe(self) -> Observation:
        w = self.world
        state, self._unchanged = self._unchanged, None
        self._last_marks = marks = self._marks()
        if state is not None:
            # the keeper held since it read `state`: the same books, views already made
            # (its gross NAV and ratio are the hedge's: a closed account holds nothing)
            return Observation(
                nav=state.gross_nav,
                net_nav=state.nav,
                supply=w.supply,
                price_e8=state.oracle_price_e8,
                spot_base=state.spot_base,
                short_size=state.short_size,
                spot_value=state.spot_value,
                short_value=state.short_value,
                margin_ratio_bps=state.margin_ratio_bps,
                pool_price_e8=state.pool_price_e8,
                booked_short=state.booked_short,
                shutdown=state.shutdown,
            )
        price = w.price
        # the hedge's value, the margin ratio and the marks with the account read once
        # (none of these views changes the models)
        size, _, perp_equity, ratio = w._position() if w.account_open else (0, 0, 0, None)
        gross = max(w.idle + marks[1] + perp_equity, 0)
        short = -size if size < 0 else 0
        _, management, performance = w._pending_fees(gross, w.supply)
        return Observation(
            nav=gross,
            net_nav=gross - management - performance,
            supply=w.supply,
            price_e8=price,
            spot_base=w.spot_base,
            short_size=short,
            spot_value=marks[1],
            short_value=w._size_value(short, price, False),
            margin_ratio_bps=ratio,
            pool_price_e8=self.pool.price_e8(w.base_unit, w.asset_unit),
            booked_short=w.booked_short,
            shutdown=w.is_shutdown,
        )


@contextmanager
def model_backend(config: ReplayConfig, first: MarketStep) -> Iterator[ModelBackend]:
    """The models at `first.time`, with the cyclic garbage collector paused while in use.

    The loop allocates millions of short-lived objects and keeps almost none but its
    records, which hold no cycles: the cyclic collector would only walk the records over
    and over. It is paused for the loop (what little cyclic garbage a tick leaves, such
    as a kept exception's frames, is collected once it runs again)."""
    backend = ModelBackend(config, first.time, first.price_e8)
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield backend
    finally:
        if collecting:
            gc.enable()


def run_steps(
    steps: list[MarketStep],
    config: ReplayConfig | None = None,
    *,
    passive: bool = True,
    **options: Unpack[ReplayOptions],
) -> ReplayResult:
    """Replays market steps (oldest first) on the models; with `passive`, also the
    never-park hedge on the same steps (`ReplayResult.passive`)."""
    result = replay(model_backend, steps, config, mode="model", **options)
    if passive:
        result.passive = passive_run(steps, result, end_price_e8=options.get("end_price_e8"))
    return result


def passive_run(steps: list[MarketStep], result: ReplayResult, *, end_price_e8: int | None) -> Passive:
    """The never-park hedge (`passive_settings`) on the steps `result` ran, with its venue
    and costs, on the models; `result` itself when its strategy never parks."""
    config = result.config
    if never_parks(config.settings):
        return Passive.of(result, same_run=True)
    passive_config = replace(config, settings=passive_settings(config.settings))
    return Passive.of(run_steps(steps, passive_config, end_price_e8=end_price_e8, passive=False))


def run_model(
    prints: list[FundingPrint],
    prices: list[PricePoint] | None,
    config: ReplayConfig | None = None,
    *,
    reports: list[SeriesReport] | None = None,
    notes: list[str] | None = None,
    allow_gaps: bool = False,
    passive: bool = True,
) -> ReplayResult:
    """Replays `prints` (oldest first) with `prices` (None: a constant price). A gap of
    more than `GAP_LIMIT_INTERVALS` intervals raises `GapError` unless `allow_gaps`."""
    config = config or ReplayConfig()
    if not prints:
        raise ValueError("no funding prints in the window")
    gaps = find_gaps(prints)
    if not allow_gaps:
        check_gaps(gaps)
    notes = list(notes or [])
    if prices is None:
        notes.append(f"no price series: the oracle is held at {config.constant_price:g}")
    steps = history_steps(prints, prices, config.constant_price)
    return run_steps(
        steps,
        config,
        reports=reports,
        notes=notes,
        end_price_e8=end_price(prints, prices, config),
        gaps=gaps,
        passive=passive,
    )
