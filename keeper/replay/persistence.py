"""Where the park rule's numbers come from: measured on recorded funding histories.

    python -m keeper.replay.persistence [--exclude binance] [NAME ...]

The keeper parks when the funding the short would pay while parked beats the round trip
(`keeper.bot.strategy`, docs/keeper.md "Parking"). It forecasts that funding from what the
short has paid: over each span H of `park_horizons_hours`, the funding of the last H hours
(or the last day's mean carried over H, if higher), times `park_persistence` for H, the
share of such a trailing total the next H hours repeated. This module measures both on a
set of histories, the way the rule reads them:

- `negative_spell_hours`: the expected remaining length of a negative spell (the 24 h mean
  below 0) at a random hour inside one: the time-weighted mean of the spells' lengths,
  halved. The shortest span is this rounded up to whole days; the longest is the entry's
  amortisation horizon (`hurdle_horizon_hours`), and one between them at their geometric
  mean, in whole days (`park_horizons`).
- `persistence`: for a span H, at every funding print's start where the trailing signal
  (the last H hours' funding, or the last day's mean x H if higher) is at least a round
  trip over the share being measured, the next H hours' funding summed over all such
  points divided by the signal summed over them; iterated to its fixed point (the share
  decides which points count). A ratio of sums: long and deep spells weigh most.
- `round_trip_share`: a park and a re-entry on the replay's vault and venue (the default
  1M deposit), their NAV costs over the short they move, plus the carry forgone while the
  funding window refills after a spell (`reentry_rate_per_hour` x the window), the cost
  the persistence is measured against.

Defaults ship as measured on every recorded history except Binance's (the histories the
old thresholds were tuned on): `python -m keeper.replay.persistence --exclude binance`.
`keeper.replay.targets --lovo` re-measures them without each venue in turn and judges
that venue with what the others gave.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from pathlib import Path

from keeper.bot.strategy import Settings
from keeper.data.files import FundingPrint, load_funding

HOUR = 3_600
DAY_HOURS = 24


@dataclass(frozen=True)
class Series:
    """A funding history as hourly rates from `start` (each print spread evenly over its
    interval), and the hours at which a print starts (where the replay's keeper ticks)."""

    name: str
    rates: list[float]
    ticks: list[int]

    @property
    def cumulative(self) -> list[float]:
        return [0.0, *accumulate(self.rates)]


def series(name: str, prints: list[FundingPrint]) -> Series:
    start = prints[0].time - prints[0].interval
    hours = (prints[-1].time - start) // HOUR
    rates = [0.0] * hours
    ticks = []
    for p in prints:
        a, b = (p.time - p.interval - start) // HOUR, (p.time - start) // HOUR
        per_hour = p.rate * HOUR / p.interval
        for h in range(max(a, 0), min(b, hours)):
            rates[h] = per_hour
        ticks.append(a)
    return Series(name, rates, ticks)


def load_series(paths: Sequence[Path]) -> list[Series]:
    """Each file's longest stretch without a hole (`keeper.replay.targets.gap_free`)."""
    from keeper.replay.driver import gap_free

    return [series(p.name, gap_free(load_funding(p)[0])[0]) for p in paths]


def negative_spell_hours(histories: Sequence[Series], window: int = DAY_HOURS) -> float:
    """The expected remaining length of a negative spell of the `window`-hour mean, hours,
    at a random hour inside one (sum of squared lengths / twice their sum)."""
    lengths: list[int] = []
    for s in histories:
        c = s.cumulative
        run = 0
        for h in range(window, len(s.rates) + 1):
            if c[h] - c[h - window] < 0:
                run += 1
            elif run:
                lengths.append(run)
                run = 0
        if run:
            lengths.append(run)
    total = sum(lengths)
    return sum(n * n for n in lengths) / (2 * total) if total else 0.0


def park_horizons(spell_hours: float, longest: int) -> tuple[int, ...]:
    """The spans a spell is judged over: its expected remaining length rounded up to whole
    days, the longest (the entry's horizon), and their geometric mean in whole days."""
    shortest = max(1, math.ceil(spell_hours / DAY_HOURS)) * DAY_HOURS
    if shortest >= longest:
        return (longest,)
    middle = round(math.sqrt(shortest * longest) / DAY_HOURS) * DAY_HOURS
    return tuple(sorted({shortest, middle, longest}))


def _points(s: Series, hours: int, window: int) -> tuple[list[float], list[float]]:
    """(trailing signal, next `hours`' funding) at every tick with both spans recorded."""
    c = s.cumulative
    n = len(s.rates)
    signal, ahead = [], []
    for t in s.ticks:
        if t < max(hours, window) or t + hours > n:
            continue
        day = (c[t] - c[t - window]) / window * hours
        signal.append(max(c[t] - c[t - hours], day))
        ahead.append(c[t + hours] - c[t])
    return signal, ahead


def persistence(
    histories: Sequence[Series], hours: int, cost: float, window: int = DAY_HOURS, rounds: int = 50
) -> float:
    """The share of a trailing `hours` total of funding that the next `hours` repeated, at
    the points where the signal pays `cost` (a fraction of the short) at that share: the
    fixed point of share = sum(next) / sum(signal) over signal <= -cost / share."""
    data = [_points(s, hours, window) for s in histories]
    share = 1.0
    for _ in range(rounds):
        line = -cost / share
        signal = ahead = 0.0
        for sig, nxt in data:
            for x, y in zip(sig, nxt, strict=True):
                if x <= line:
                    signal += x
                    ahead += y
        new = min(max(ahead / signal, 0.01), 1.0) if signal else 0.0
        if new == 0.0 or abs(new - share) < 1e-4:
            return new
        share = new
    return share


def round_trip_share(settings: Settings | None = None) -> float:
    """An entry and a park of the replay's default vault (1M, the default venue) on the
    models, as `decide` plans them (the pool arbitraged back to the oracle between them,
    as the replay's arbitrageur does): their NAV costs over the short value moved, plus
    the carry the park forgoes while the funding window refills (`reentry_rate_per_hour`
    x `funding_window_hours`), as fractions of the short."""
    from datetime import UTC, datetime, timedelta

    from keeper.bot.strategy import Intent, Rebalance, decide
    from keeper.data.records import FundingInfo, FundingPoint, FundingView
    from keeper.replay.driver import ReplayConfig
    from keeper.replay.exact import ModelBackend

    settings = settings or Settings()
    config = ReplayConfig(settings=settings)
    start = 1_700_000_000
    backend = ModelBackend(config, start, round(config.constant_price * 10**8))
    world = backend.world

    def flat(rate: str) -> FundingView:
        at = datetime.fromtimestamp(world.now, tz=UTC)
        per_hour = Decimal(rate)
        info = FundingInfo(settings.reference_venue, "ETH-USD", per_hour, 1, None, None, None, at)
        span = range(settings.history_hours, -1, -1)
        return FundingView(
            info, tuple(FundingPoint(at - timedelta(hours=h), per_hour, per_hour, HOUR) for h in span)
        )

    costs, moved = 0, 0
    for rate, intent in (("0.0001", Intent.ENTER), ("-0.001", Intent.PARK)):
        state = world.state()
        action = decide(state, [flat(rate)], settings).action
        if not isinstance(action, Rebalance) or action.intent is not intent:
            raise RuntimeError(f"round_trip_share: expected {intent.value}, got {action}")
        before = world.nav()
        world.rebalance(action.target_short, action.target_margin, action.max_slippage_bps)
        costs += before - world.nav()
        world.arb_pool()  # the arbitrageur levels the pool before the next trade, as in the replay
        moved = max(moved, state.short_value, world.state().short_value)
    lag = float(settings.reentry_rate_per_hour) * settings.funding_window_hours
    return costs / moved + lag


@dataclass(frozen=True)
class Measured:
    files: tuple[str, ...]
    spell_hours: float
    horizons: tuple[int, ...]
    persistence: tuple[float, ...]
    round_trip: float

    def settings(self, base: Settings | None = None) -> Settings:
        """`base` with these spans and shares (shares to two decimals, as shipped)."""
        base = base or Settings()
        shares = tuple(Decimal(f"{r:.2f}") for r in self.persistence)
        return base.model_copy(update={"park_horizons_hours": self.horizons, "park_persistence": shares})


def measure(paths: Sequence[Path], settings: Settings | None = None) -> Measured:
    settings = settings or Settings()
    histories = load_series(paths)
    spell = negative_spell_hours(histories, settings.funding_window_hours)
    horizons = park_horizons(spell, settings.hurdle_horizon_hours)
    cost = round_trip_share(settings)
    shares = tuple(persistence(histories, h, cost, settings.funding_window_hours) for h in horizons)
    return Measured(tuple(p.name for p in paths), spell, horizons, shares, cost)


def describe(m: Measured) -> str:
    pairs = ", ".join(f"{h} h: {r:.2f}" for h, r in zip(m.horizons, m.persistence, strict=True))
    return (
        f"{len(m.files)} histories; a negative spell has {m.spell_hours:.0f} h left on average; round trip "
        f"{m.round_trip:.4%} of the short; spans and persistence {pairs}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    from keeper.data.files import data_dir, funding_files

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="only these files (substring of the name)")
    parser.add_argument("--exclude", action="append", default=[], help="leave out files whose name has this")
    args = parser.parse_args(argv)
    paths = funding_files(data_dir())
    if args.names:
        paths = [p for p in paths if any(n in p.name for n in args.names)]
    paths = [p for p in paths if not any(x in p.name for x in args.exclude)]
    if not paths:
        print("no funding files", file=sys.stderr)
        return 1
    m = measure(paths)
    print(describe(m))
    print(
        "Settings: park_horizons_hours="
        + repr(m.horizons)
        + ", park_persistence=("
        + ", ".join(f'Decimal("{r:.2f}")' for r in m.persistence)
        + ")"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
