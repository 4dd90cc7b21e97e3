"""The perp's premium over spot (mark / index - 1) through a history, for the replay.

Two kinds, and the report says which one a run used:

- **measured**: a perp's own mark prices against the spot series the replay prices the
  oracle from (`premium_from_marks`: Binance USD-M mark 8h bars against Binance spot), or
  a venue's recorded premium (`load_premium` on a Hyperliquid `fundingHistory` response,
  whose rows carry `premium`, sampled over the interval the row's time ends: placed at its
  start, as a modelled premium is).
- **modelled** (`modelled_premium`): for a history without one, the premium its funding
  prints imply. Where the series carries the signature of the premium-index formula CEX
  perps publish (Binance, Bybit, Gate, HTX, KuCoin, BitMEX): funding = P + clamp(I - P, -C,
  +C) per 8 hours, with interest I = 0.01 % and clamp C = 0.05 %, so a large share of its
  prints sit exactly at I (32-51 % on those files; `BAND_SHARE`), the formula inverted: a
  print above I came from P = F + C, one below from P = F - C, one at I from a premium
  inside the band, taken as I. Elsewhere (dYdX v3, whose hourly rate is the premium / 8;
  Deribit; MEXC, 0-13 % at I) the premium is the print's 8-hour equivalent, P = F x 8 h /
  interval: the band inversion there would add +-5 bps to almost every print. Nothing is
  fitted: on Binance 2023, where the mark is recorded, the band model's error is 2.6 bps
  (ETH) and 3.0 bps (BTC) root-mean-square against 4.6 and 4.5 for no premium at all
  (`tests/replay/test_premium.py` measures it).

Either is held from each point to the next: the feeder sets the premium when a new one is
known (a chain replay sends one transaction per point, not one per step).

Premiums are fractions (0.001 = 0.1 %), bounded to the venue's +-10 %.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from keeper.data.files import FundingPrint, HistoryError, PricePoint, load_prices
from keeper.data.hyperliquid import native_interval_at

# The premium-index formula's interest and clamp, per 8 hours (Binance's published values).
INTEREST_8H = 0.000_1
CLAMP_8H = 0.000_5
EIGHT_HOURS = 8 * 3_600
# A series with at least this share of its prints exactly at the interest rate follows the
# band formula (the recorded band venues: 32-51 %; dYdX, Deribit, MEXC: 0-13 %).
BAND_SHARE = 0.25
# The reference venue's bound on |premium| (PerpMarket.MAX_PREMIUM, 10 %).
MAX_PREMIUM = 0.1


@dataclass(frozen=True, slots=True)
class PremiumPoint:
    time: int
    premium: float  # mark / index - 1


@dataclass(frozen=True)
class PremiumSeries:
    """A premium through time: `at(t)` is held from each point to the next (and before
    the first); `source` names where it came from and `measured` whether it was recorded."""

    points: tuple[PremiumPoint, ...]
    source: str
    measured: bool

    def at(self, t: int) -> float:
        i = bisect_right(self.points, t, key=lambda p: p.time) - 1
        return self.points[max(i, 0)].premium

    def covers(self, start: int, end: int) -> bool:
        """Whether the points span [start, end] (held values outside them are a guess)."""
        return self.points[0].time <= start and self.points[-1].time >= end


def _bounded(p: float) -> float:
    return max(-MAX_PREMIUM, min(MAX_PREMIUM, p))


def modelled_premium(prints: list[FundingPrint]) -> PremiumSeries:
    """The premium each print implies (module docstring), from the start of its interval."""
    if not prints:
        raise HistoryError("no funding prints to model a premium from")
    f8s = [p.rate * EIGHT_HOURS / p.interval for p in prints]
    band = sum(abs(f - INTEREST_8H) < 1e-12 for f in f8s) >= BAND_SHARE * len(f8s)
    points = []
    for p, f8 in zip(prints, f8s, strict=True):
        if not band:
            premium = f8
        elif abs(f8 - INTEREST_8H) < 1e-12:
            premium = INTEREST_8H
        else:
            premium = f8 + CLAMP_8H if f8 > INTEREST_8H else f8 - CLAMP_8H
        points.append(PremiumPoint(p.time - p.interval, _bounded(premium)))
    how = (
        "premium-index formula inverted, I 0.01 %, clamp 0.05 % per 8 h"
        if band
        else "the 8-hour funding, no interest band in this series"
    )
    return PremiumSeries(tuple(points), f"modelled from the funding prints ({how})", measured=False)


def _spot_at(spot: list[PricePoint], t: int) -> float:
    """The spot series linear between its points at `t` inside it, as the replay's oracle
    reads it: so the replay's index x (1 + premium) is the recorded mark at each mark."""
    i = bisect_right(spot, t, key=lambda p: p.time) - 1
    a = spot[i]
    if t == a.time or i + 1 == len(spot):
        return a.price
    b = spot[i + 1]
    return a.price + (b.price - a.price) * (t - a.time) / (b.time - a.time)


def premium_from_marks(marks: list[PricePoint], spot: list[PricePoint], source: str) -> PremiumSeries:
    """Mark / spot - 1 at each mark point inside the spot series (spot interpolated there)."""
    lo, hi = spot[0].time, spot[-1].time
    points = tuple(
        PremiumPoint(m.time, _bounded(m.price / _spot_at(spot, m.time) - 1))
        for m in marks
        if lo <= m.time <= hi
    )
    if not points:
        raise HistoryError(f"{source}: no mark inside the spot prices' range")
    return PremiumSeries(points, source, measured=True)


def load_premium(path: str | Path, spot: list[PricePoint] | None) -> PremiumSeries:
    """A measured premium: a Hyperliquid `fundingHistory` response (rows with `premium`;
    rows without one are skipped), or a CSV of the perp's mark prices (the price loader's
    formats) against `spot`, which it then needs. Raises `HistoryError` with one line."""
    path = Path(path)
    if not path.is_file():
        raise HistoryError(f"premium file {path} not found")
    if path.suffix == ".json":
        return _hyperliquid(path)
    if not spot:
        raise HistoryError(
            f"premium file {path}: perp marks need the spot prices they are measured against (--prices)"
        )
    marks, _ = load_prices(path)
    return premium_from_marks(marks, spot, f"measured: {path.name} against the spot prices")


def _hyperliquid(path: Path) -> PremiumSeries:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise HistoryError(f"premium file {path}: not JSON ({err})") from None
    if not isinstance(rows, list):
        raise HistoryError(f"premium file {path}: expected Hyperliquid fundingHistory rows (a JSON list)")
    points = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "time" not in row:
            raise HistoryError(f"premium file {path}: row {i} has no time")
        if row.get("premium") is None:
            continue
        try:
            t = int(row["time"]) // 1_000  # the end of the interval it was sampled over
            start = t - native_interval_at(datetime.fromtimestamp(t, UTC))
            points.append(PremiumPoint(start, _bounded(float(row["premium"]))))
        except (TypeError, ValueError):
            raise HistoryError(
                f"premium file {path}: row {i} premium {row['premium']!r} is not a number"
            ) from None
    if not points:
        raise HistoryError(f"premium file {path}: no row has a premium")
    points.sort(key=lambda p: p.time)
    return PremiumSeries(tuple(points), f"measured: Hyperliquid premium in {path.name}", measured=True)
