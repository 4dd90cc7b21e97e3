"""Named stress scenarios: a market built to hurt, and the verdicts it must earn.

Each scenario is hourly `MarketStep`s: two days of steady positive funding at a constant
price (the keeper enters and settles), then the stress, then calm until the end. The
verdicts read only the replay's records, so the same scenario judges both modes
(`basis-keeper replay --scenario NAME --mode chain|model`).

- crash: -50 % within a day. No liquidation; margin ratio not below the band, delta in
  band (`_judge_crash` says why not "below the top").
- squeeze: +100 % within a week. No liquidation; margin ratio and delta back in band.
- negative-funding: funding negative for three weeks: a week at -0.01 %/8h, then two at
  -0.1 %/8h. The mild week ridden out hedged (paying it costs less than a round trip
  would); parked within four days of the deep spell (once what it has cost, at the
  measured persistence, beats a round trip); funding paid while deep bounded; re-entered
  after.
- pool-dislocation: the spot pool 5 % off the oracle for a day, nobody arbitraging. No
  keeper trade while dislocated; the entry happens once the pool is back.
- stale-oracle: no oracle update for 12 h. Entries and exits refused while stale,
  accepted when fresh; no trade on a stale price.
- keeper-outage: the keeper down for a day while the price rises 25 %. No liquidation;
  back in band within 3 ticks of returning.
- liquidation: the keeper down for 6 h while ETH jumps +60 % in one hour, past the short's
  bankruptcy (hedged 2x: a 50 % margin ratio); a liquidator liquidates, the keeper
  returns. The venue liquidated the short; the books equal the venue after (the hedge's
  short is the venue's, `booked_short` catches up on the first touch); exits work after;
  the keeper restores the hedge on its first ticks back.
- depeg: the asset's USD feed follows USDC in March 2023 (1.00 -> 0.88 on 11 March -> 1.00
  by 13 March). Entries and exits refused while beyond `max_depeg_bps`; a newcomer's
  entry + exit while within it moves the other holders' share price by less than that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import pairwise

from keeper.bot.strategy import Settings
from keeper.core.fixed import PRICE_UNIT, RATE_UNIT
from keeper.replay.driver import MarketStep, ReplayConfig, ReplayResult, Step

HOUR = 3_600
DAY = 24 * HOUR
START = 1_700_006_400  # 2023-11-15 00:00 UTC: any hour would do
PRICE = 3_000.0
CALM_RATE = int(0.0001 / (8 * HOUR) * RATE_UNIT)  # 0.01 % per 8 h, Binance's baseline
WARMUP_HOURS = 48


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    build: Callable[[], list[MarketStep]]
    judge: Callable[[ReplayResult, ReplayConfig], list[Verdict]]

    def steps(self) -> list[MarketStep]:
        return self.build()


def _path(
    hours: int, price_at: Callable[[int], float], rate_at: Callable[[int], int] | None = None
) -> list[MarketStep]:
    steps = []
    for h in range(hours):
        rate = CALM_RATE if rate_at is None else rate_at(h)
        steps.append(MarketStep(START + h * HOUR, round(price_at(h) * PRICE_UNIT), rate, HOUR))
    return steps


def _ramp(start_hour: int, hours: int, factor: float) -> Callable[[int], float]:
    """Constant, then geometric from PRICE to PRICE x factor over `hours`, then constant."""

    def price(h: int) -> float:
        k = min(max(h - start_hour, 0), hours)
        return float(PRICE * factor ** (k / hours))

    return price


def _step_in_band(step: Step, s: Settings) -> bool:
    """Hedged with the margin ratio and the delta inside the keeper's bands."""
    ratio = step.margin_ratio_bps
    return (
        ratio is not None
        and s.margin_ratio_low_bps <= ratio <= s.margin_ratio_high_bps
        and step.delta_bps <= s.delta_band_bps
    )


def _in_band(r: ReplayResult, config: ReplayConfig) -> tuple[bool, str]:
    s = config.settings
    end = r.steps[-1]
    return _step_in_band(end, s), (
        f"at the end: margin ratio {end.margin_ratio_bps} bps (band {s.margin_ratio_low_bps}-"
        f"{s.margin_ratio_high_bps}), |delta| {end.delta_bps:.2f} bps (band {s.delta_band_bps})"
    )


def _no_liquidation(r: ReplayResult, config: ReplayConfig) -> Verdict:
    ratios = [s.margin_ratio_bps for s in r.steps if s.margin_ratio_bps is not None]
    low = min(ratios) if ratios else None
    return Verdict(
        "no liquidation",
        not r.liquidations,
        f"{len(r.liquidations)} liquidations; lowest margin ratio {low} bps "
        f"(maintenance {config.venue.maintenance_margin_bps} bps)",
    )


def _hedged_then(r: ReplayResult) -> Verdict:
    entered = any(s.action == "enter" for s in r.steps[:WARMUP_HOURS])
    return Verdict(
        "hedged before the stress", entered, "entered in the warm-up" if entered else "never entered"
    )


def _judge_move(r: ReplayResult, config: ReplayConfig) -> list[Verdict]:
    ok, detail = _in_band(r, config)
    return [_hedged_then(r), _no_liquidation(r, config), Verdict("margin and delta back in band", ok, detail)]


def _judge_crash(r: ReplayResult, config: ReplayConfig) -> list[Verdict]:
    """A crash pays the short: its gains sit in the perp equity as unrealised PnL, which
    the venue releases only when the short is closed. The keeper takes margin out while
    it is settled cash (margin_fat), then the ratio stays above the band: safe, and
    capital-inefficient until a close-and-reopen pays for itself. So the band checked
    here is the safety side: the ratio at or above the band's floor, delta in band."""
    s = config.settings
    end = r.steps[-1]
    ok = end.margin_ratio_bps is not None and end.margin_ratio_bps >= s.margin_ratio_low_bps
    ok = ok and end.delta_bps <= s.delta_band_bps
    return [
        _hedged_then(r),
        _no_liquidation(r, config),
        Verdict(
            "margin not below the band, delta in band",
            ok,
            f"at the end: margin ratio {end.margin_ratio_bps} bps (floor {s.margin_ratio_low_bps}; above "
            f"{s.margin_ratio_high_bps} the excess is the short's unrealised gain), "
            f"|delta| {end.delta_bps:.2f} bps (band {s.delta_band_bps}); "
            f"margin_fat rebalances {r.rebalances.get('margin_fat', 0)}",
        ),
    ]


# ----------------------------------------------------------------------------- the scenarios


def _crash() -> list[MarketStep]:
    return _path(WARMUP_HOURS + 24 + 72, _ramp(WARMUP_HOURS, 24, 0.5))


def _squeeze() -> list[MarketStep]:
    return _path(WARMUP_HOURS + 7 * 24 + 48, _ramp(WARMUP_HOURS, 7 * 24, 2.0))


NEG_FROM, MILD_HOURS, NEG_HOURS = WARMUP_HOURS, 7 * 24, 21 * 24
DEEP_FROM = NEG_FROM + MILD_HOURS
DEEP_RATE = -10 * CALM_RATE  # -0.1 % per 8 h


def _negative() -> list[MarketStep]:
    def rate(h: int) -> int:
        if NEG_FROM <= h < DEEP_FROM:
            return -CALM_RATE
        return DEEP_RATE if DEEP_FROM <= h < NEG_FROM + NEG_HOURS else CALM_RATE

    return _path(NEG_FROM + NEG_HOURS + 5 * 24, lambda h: PRICE, rate)


def _judge_negative(r: ReplayResult, config: ReplayConfig) -> list[Verdict]:
    def hours(a: int, b: int) -> list[Step]:
        return [s for s in r.steps if START + a * HOUR <= s.time < START + b * HOUR]

    mild, deep = hours(NEG_FROM, DEEP_FROM), hours(DEEP_FROM, NEG_FROM + NEG_HOURS)
    first_parked = next((i for i, s in enumerate(deep) if s.parked), None)
    parked_share = sum(s.parked for s in deep) / len(deep)
    after = hours(NEG_FROM + NEG_HOURS, 10**6)
    # funding paid while the deep spell lasted, against staying hedged through it
    paid = -sum(s.funding_rate_per_hour for s in deep if not s.parked) * 2 / 3 * 10_000
    hedged_through = -DEEP_RATE * (NEG_HOURS - MILD_HOURS) * HOUR / RATE_UNIT * 2 / 3 * 10_000
    return [
        _hedged_then(r),
        Verdict(
            "rode out the mild week hedged",
            not any(s.parked for s in mild),
            f"parked {sum(s.parked for s in mild)} of {len(mild)} h at -0.01 %/8h",
        ),
        Verdict(
            "parked within four days of the deep spell",
            first_parked is not None and first_parked <= 4 * 24,
            f"parked {first_parked} h after funding fell to -0.1 %/8h"
            if first_parked is not None
            else "never parked",
        ),
        Verdict(
            "bounded loss",
            paid < hedged_through * 0.3,
            f"about {paid:.0f} bps of NAV paid in the deep spell; staying hedged would have paid "
            f"{hedged_through:.0f} bps; parked {parked_share:.0%} of it",
        ),
        Verdict(
            "re-entered after",
            any(s.action == "enter" for s in after),
            "re-entered once funding recovered"
            if any(s.action == "enter" for s in after)
            else "still parked",
        ),
    ]


DISLOCATED_FROM, DISLOCATED_HOURS = 12, 24


def _dislocation() -> list[MarketStep]:
    """The vault would enter after its funding window fills (24 h); the pool is 5 % rich
    from hour 12 to 36 with nobody arbitraging, so the entry must wait for it."""
    steps = _path(WARMUP_HOURS + 48, lambda h: PRICE)
    out = []
    for h, s in enumerate(steps):
        if DISLOCATED_FROM <= h < DISLOCATED_FROM + DISLOCATED_HOURS:
            s = replace(
                s,
                arbitrage=h == DISLOCATED_FROM,
                pool_offset_bps=500 if h == DISLOCATED_FROM else 0,
                label="dislocated",
            )
        out.append(s)
    return out


def _judge_dislocation(r: ReplayResult, config: ReplayConfig) -> list[Verdict]:
    lo, hi = START + DISLOCATED_FROM * HOUR, START + (DISLOCATED_FROM + DISLOCATED_HOURS) * HOUR
    during = [t for t in r.trades if lo <= t.time < hi]
    worst = max(
        (
            abs(s.pool_price_before_arb_e8 - s.price_e8) * 10_000 // s.price_e8
            for s in r.steps
            if lo < s.time < hi
        ),
        default=0,
    )
    return [
        Verdict(
            "no trade at the dislocated price",
            not during,
            f"{len(during)} keeper trades while the pool sat up to {worst} bps off the oracle",
        ),
        Verdict(
            "entered once the pool was back",
            any(t.kind == "enter" and t.time >= hi for t in r.trades),
            f"entries after: {sum(t.kind == 'enter' and t.time >= hi for t in r.trades)}",
        ),
    ]


STALE_FROM, STALE_HOURS = WARMUP_HOURS, 12


def _stale() -> list[MarketStep]:
    steps = _path(WARMUP_HOURS + STALE_HOURS + 24, _ramp(WARMUP_HOURS, STALE_HOURS, 0.9))
    out = []
    for h, s in enumerate(steps):
        stale = STALE_FROM <= h < STALE_FROM + STALE_HOURS
        probe = STALE_FROM - 2 <= h < STALE_FROM + STALE_HOURS + 2
        out.append(replace(s, push_oracle=not stale, probe=probe, label="stale" if stale else ""))
    return out


def _judge_stale(r: ReplayResult, config: ReplayConfig) -> list[Verdict]:
    age_limit = config.rules.max_oracle_age
    last_push = None
    refused_ok, accepted_ok, probes = True, True, 0
    stale_times = []
    for s in r.steps:
        if s.label != "stale":
            last_push = s.time
        if s.probe is None:
            continue
        probes += 1
        assert last_push is not None
        is_stale = s.time > last_push + age_limit
        if is_stale:
            stale_times.append(s.time)
            refused_ok &= bool(s.probe.deposit_refused and s.probe.redeem_refused)
            refused_ok &= "stale oracle" in (s.probe.deposit_refused or "") + (s.probe.redeem_refused or "")
        else:
            accepted_ok &= s.probe.deposit_refused is None and s.probe.redeem_refused is None
    traded = [t for t in r.trades if stale_times and stale_times[0] <= t.time <= stale_times[-1]]
    return [
        _hedged_then(r),
        Verdict(
            "entries and exits refused while stale",
            refused_ok and bool(stale_times),
            f"{len(stale_times)} probes past the {age_limit // HOUR} h limit, all refused (stale oracle)"
            if refused_ok
            else "a probe went through on a stale price",
        ),
        Verdict("accepted while fresh", accepted_ok, f"{probes - len(stale_times)} probes on a fresh oracle"),
        Verdict("no keeper trade on a stale price", not traded, f"{len(traded)} trades while stale"),
    ]


OUTAGE_FROM, OUTAGE_HOURS = WARMUP_HOURS, 24


def _outage() -> list[MarketStep]:
    steps = _path(WARMUP_HOURS + OUTAGE_HOURS + 48, _ramp(WARMUP_HOURS, OUTAGE_HOURS, 1.25))
    return [
        replace(s, keeper=False, label="keeper down") if OUTAGE_FROM <= h < OUTAGE_FROM + OUTAGE_HOURS else s
        for h, s in enumerate(steps)
    ]


def _judge_outage(r: ReplayResult, config: ReplayConfig) -> list[Verdict]:
    back = [s for s in r.steps if s.time >= START + (OUTAGE_FROM + OUTAGE_HOURS) * HOUR]
    recovered = next((i for i, st in enumerate(back) if _step_in_band(st, config.settings)), None)
    low = min((st.margin_ratio_bps for st in r.steps if st.margin_ratio_bps is not None), default=None)
    return [
        _hedged_then(r),
        _no_liquidation(r, config),
        Verdict(
            "back in band within 3 ticks",
            recovered is not None and recovered < 3,
            f"in band {recovered} ticks after the keeper returned; lowest ratio during the outage {low} bps",
        ),
    ]


LIQ_DOWN_FROM, LIQ_DOWN_HOURS, LIQ_JUMP_HOUR, LIQ_JUMP = WARMUP_HOURS, 6, WARMUP_HOURS + 2, 1.6
LIQ_HIGH_HOURS, LIQ_BACK_HOURS = 24, 48


def _liquidation() -> list[MarketStep]:
    """Hedged 2x (margin ratio ~50 %), the keeper goes down; two hours later ETH jumps
    +60 % in one step, past the short's bankruptcy (+50 %); the liquidator closes it that
    hour. The keeper returns four hours later; ETH stays up a day, then falls back to
    where it was over two days (what an unrestored hedge would lose)."""
    back_from = LIQ_JUMP_HOUR + LIQ_HIGH_HOURS

    def price(h: int) -> float:
        if h < LIQ_JUMP_HOUR:
            return PRICE
        k = min(max(h - back_from, 0), LIQ_BACK_HOURS)
        return float(PRICE * LIQ_JUMP ** (1 - k / LIQ_BACK_HOURS))

    steps = _path(back_from + LIQ_BACK_HOURS + 24, price)
    out = []
    for h, s in enumerate(steps):
        down = LIQ_DOWN_FROM <= h < LIQ_DOWN_FROM + LIQ_DOWN_HOURS
        probe = LIQ_JUMP_HOUR <= h < LIQ_DOWN_FROM + LIQ_DOWN_HOURS + 6
        out.append(replace(s, keeper=not down, probe=probe, label="keeper down" if down else ""))
    return out


def _judge_liquidation(r: ReplayResult, config: ReplayConfig) -> list[Verdict]:
    jump = START + LIQ_JUMP_HOUR * HOUR
    back = START + (LIQ_DOWN_FROM + LIQ_DOWN_HOURS) * HOUR
    liq = r.liquidations[0] if r.liquidations else None
    after = [s for s in r.steps if s.time >= jump]
    # the first keeper transaction after the liquidation touches the hedge: it books it
    touch = next((i for i, s in enumerate(after) if s.action not in ("hold", "revert", "down")), None)
    unsynced_before = [s for s in after[: touch or 0] if s.booked_short <= s.short_size]
    unsynced_after = (
        [s for s in after[touch:] if s.booked_short != s.short_size] if touch is not None else after
    )
    probes = [s.probe for s in after if s.probe is not None]
    trips = [abs(p.round_trip_bps) for p in probes if p.round_trip_bps is not None]
    exits_ok = bool(probes) and all(p.redeem_refused is None and p.round_trip_bps is not None for p in probes)
    returned = [s for s in r.steps if s.time >= back]
    restored = next((i for i, st in enumerate(returned) if _step_in_band(st, config.settings)), None)
    return [
        _hedged_then(r),
        Verdict(
            "the venue liquidated the short",
            liq is not None and liq.time == jump and liq.size > 0,
            "no liquidation"
            if liq is None
            else f"{len(r.liquidations)} liquidation(s); the first at +{(liq.time - START) // HOUR} h closed "
            f"{liq.size / 10**18:.4f} short, NAV {-liq.loss / config.venue.asset_unit:+,.2f} "
            "(gross, at the liquidation: bad debt stays with the venue)",
        ),
        Verdict(
            "books equal the venue after",
            touch is not None and not unsynced_before and not unsynced_after,
            f"booked_short above the venue's short for {touch} steps until the keeper's first call, "
            f"equal on all {len(after) - (touch or 0)} steps from it"
            if touch is not None and not unsynced_before and not unsynced_after
            else f"first touch {touch}; {len(unsynced_before)} steps already booked before it, "
            f"{len(unsynced_after)} steps differing after it",
        ),
        Verdict(
            "exits worked after",
            exits_ok,
            f"{len(probes)} probes after the liquidation: redeem of a holder's slice and a newcomer's "
            f"round trip all went through; worst round trip "
            f"{max(trips, default=0):.3g} bps"
            if exits_ok
            else f"refused: {[p.redeem_refused or p.deposit_refused for p in probes][:3]}",
        ),
        Verdict(
            "hedge restored on the keeper's first ticks back",
            restored is not None and restored < 3,
            f"in band {restored} ticks after the keeper returned; longest unhedged stretch "
            f"{r.max_unhedged_hours:g} h",
        ),
    ]


# USDC / USD, March 2023 (Silicon Valley Bank's failure; Circle disclosed $3.3B held there
# late on 10 March): hourly anchors (UTC hour since 2023-03-10 00:00, price), linear in
# between. Approximate public knowledge (the widely reported path of Chainlink's USDC/USD
# and the major venues: ~1.00 until the evening of 10 March, a low near 0.88 on the
# morning of 11 March, ~0.90-0.92 through 11-12 March, ~0.97 after the US backstop on the
# evening of 12 March, back to ~1.00 during 13 March); no USDC price file is in
# ../shared/data (SOURCES.md lists none), so the path is written here.
USDC_MARCH_2023 = (
    (0, 1.000),
    (20, 0.997),
    (24, 0.985),
    (27, 0.960),
    (30, 0.920),
    (32, 0.880),
    (36, 0.900),
    (42, 0.905),
    (48, 0.915),
    (60, 0.950),
    (70, 0.970),
    (72, 0.985),
    (78, 0.995),
    (84, 0.998),
    (90, 1.000),
)
DEPEG_START = 1_678_406_400  # 2023-03-10 00:00 UTC: hour 0 of the path
DEPEG_HOURS = USDC_MARCH_2023[-1][0]


def usdc_march_2023(hour: int) -> float:
    """The asset's USD price `hour` hours after 2023-03-10 00:00 UTC (linear between anchors)."""
    points = USDC_MARCH_2023
    if hour <= points[0][0]:
        return points[0][1]
    for (h0, p0), (h1, p1) in pairwise(points):
        if hour <= h1:
            return p0 + (p1 - p0) * (hour - h0) / (h1 - h0)
    return points[-1][1]


def _depeg() -> list[MarketStep]:
    """Two days of warm-up (entered and settled), then the March 2023 path of the asset's
    own feed, hourly, a newcomer probing every hour, then a day of calm. ETH stays put:
    only the asset moves."""
    start = DEPEG_START - WARMUP_HOURS * HOUR
    out = []
    for h in range(WARMUP_HOURS + DEPEG_HOURS + 24):
        t = start + h * HOUR
        k = h - WARMUP_HOURS
        asset = round(usdc_march_2023(k) * PRICE_UNIT)
        out.append(
            MarketStep(
                t,
                round(PRICE * PRICE_UNIT),
                CALM_RATE,
                HOUR,
                probe=-6 <= k <= DEPEG_HOURS + 6,
                asset_price_e8=asset,
                label="de-pegged" if asset != PRICE_UNIT else "",
            )
        )
    return out


def _judge_depeg(r: ReplayResult, config: ReplayConfig) -> list[Verdict]:
    bound = config.rules.max_depeg_bps
    probed = [s for s in r.steps if s.probe is not None]
    beyond = [s for s in probed if abs(s.asset_price_e8 - PRICE_UNIT) * 10_000 > PRICE_UNIT * bound]
    within = [s for s in probed if s not in beyond]
    refused = [
        s
        for s in beyond
        if s.probe is not None
        and "de-pegged" in (s.probe.deposit_refused or "")
        and "de-pegged" in (s.probe.redeem_refused or "")
    ]
    moves = [s.probe.round_trip_bps for s in within if s.probe is not None]
    worst = max((abs(m) for m in moves if m is not None), default=None)
    fair = bool(within) and all(m is not None and abs(m) < bound for m in moves)
    lowest = min(s.asset_price_e8 for s in r.steps) / PRICE_UNIT
    return [
        _hedged_then(r),
        Verdict(
            "entries and exits refused while de-pegged",
            bool(beyond) and len(refused) == len(beyond),
            f"{len(refused)} of {len(beyond)} probes beyond {bound} bps of the peg refused "
            f"(low {lowest:.3f})",
        ),
        Verdict(
            "no holder gains or loses from another's entry or exit beyond the bound",
            fair,
            f"{len(moves)} round trips within the bound; the others' share price moved at most "
            f"{worst if worst is None else f'{worst:.3g}'} bps (bound {bound})",
        ),
    ]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("crash", "ETH -50 % within a day", _crash, _judge_crash),
        Scenario("squeeze", "ETH +100 % within a week", _squeeze, _judge_move),
        Scenario(
            "negative-funding",
            "funding negative for three weeks: -0.01 %/8h for one, -0.1 %/8h for two",
            _negative,
            _judge_negative,
        ),
        Scenario(
            "pool-dislocation", "the spot pool 5 % off the oracle for a day", _dislocation, _judge_dislocation
        ),
        Scenario("stale-oracle", "no oracle update for 12 h while ETH falls 10 %", _stale, _judge_stale),
        Scenario("keeper-outage", "the keeper down for a day while ETH rises 25 %", _outage, _judge_outage),
        Scenario(
            "liquidation",
            "the keeper down 6 h while ETH jumps +60 % past the short's bankruptcy",
            _liquidation,
            _judge_liquidation,
        ),
        Scenario("depeg", "the asset's USD feed follows USDC in March 2023 (low 0.88)", _depeg, _judge_depeg),
    )
}
