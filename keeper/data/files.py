"""Historical funding and price series from files, for the replay and the market feeder.

Reads every format in the project's reference data (../shared/data, see its SOURCES.md):
the 8h/1h CEX and dYdX v3 funding CSVs (`Symbol,Date,Funding Rate`, several of them written
in UTC+3), BitMEX's funding CSV, Deribit's hourly funding + index CSV, Binance spot/perp
klines (4h, 8h, 1d, native 8h), CoinGecko daily snapshots, and Hyperliquid `fundingHistory`
/ dYdX v4 `historicalFunding` JSON bodies (through the venues' own parsers, which the keeper
also runs live: one parser a venue).

Every series comes back sorted, in UTC unix seconds, with a `SeriesReport` that lists what
was irregular: duplicate rows, rows out of order, gaps and short steps against the native
interval. Nothing is dropped silently: a duplicate is kept once and reported, and a row
that cannot be parsed stops the load with its line number.
"""

from __future__ import annotations

import csv
import json
import os
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from keeper.core.errors import SourceError
from keeper.data import dydx, hyperliquid
from keeper.data.records import FundingPoint

HOUR = 3_600
# Venues whose funding CSVs in ../shared/data were written in UTC+3 by the fetcher that
# produced them (SOURCES.md, "TIMEZONE WARNING"); gate and dydx were written in UTC.
UTC_PLUS_3_VENUES = frozenset({"binance", "bybit", "htx", "kucoin", "mexc"})
UTC_VENUES = frozenset({"gate", "dydx"})
# Native funding interval of the `Symbol,Date,Funding Rate` files, by venue.
NATIVE_INTERVAL = {"dydx": HOUR}
DEFAULT_CEX_INTERVAL = 8 * HOUR
# A step within this of the native interval is on time (exchange timestamps jitter).
JITTER = 300


class HistoryError(ValueError):
    """The file cannot be read as a history; the message says where and why."""


@dataclass(frozen=True)
class FundingPrint:
    """One funding payment: `rate` (decimal, + = longs pay shorts) over `interval` seconds
    ending at `time` (UTC unix seconds)."""

    time: int
    rate: float
    interval: int

    @property
    def rate_per_hour(self) -> float:
        return self.rate * HOUR / self.interval


@dataclass(frozen=True)
class PricePoint:
    """The price at `time` (a bar's open) and, where the file has them, the bar's high
    and low until the next point."""

    time: int
    price: float
    high: float | None = None
    low: float | None = None


@dataclass
class SeriesReport:
    """What a loader saw. `irregular` holds (time, step seconds) of every step that was not
    the native interval: longer ones are gaps, shorter ones short steps."""

    path: str
    kind: str
    rows: int = 0
    interval: int = 0
    utc_shift_hours: int = 0
    duplicates: list[int] = field(default_factory=list)
    conflicting_duplicates: list[int] = field(default_factory=list)
    out_of_order: list[int] = field(default_factory=list)
    irregular: list[tuple[int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first: int = 0
    last: int = 0

    @property
    def gaps(self) -> list[tuple[int, int]]:
        return [(t, step) for t, step in self.irregular if step > self.interval]

    def summary(self) -> list[str]:
        def when(t: int) -> str:
            return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")

        lines = [
            f"{self.path}: {self.kind}, {self.rows} rows, {when(self.first)} -> {when(self.last)} UTC, "
            f"native interval {self.interval // 60} min"
        ]
        if self.utc_shift_hours:
            lines.append(
                f"  the file is in UTC+{self.utc_shift_hours}: shifted {-self.utc_shift_hours:+d} h to UTC"
            )
        if self.duplicates:
            lines.append(
                f"  {len(self.duplicates)} duplicate rows kept once (first at {when(self.duplicates[0])})"
            )
        if self.conflicting_duplicates:
            t = self.conflicting_duplicates[0]
            lines.append(
                f"  {len(self.conflicting_duplicates)} duplicates with different values, the first row kept "
                f"(first at {when(t)})"
            )
        if self.out_of_order:
            lines.append(
                f"  {len(self.out_of_order)} rows out of order, sorted (first {when(self.out_of_order[0])})"
            )
        gaps = self.gaps
        if gaps:
            t, step = max(gaps, key=lambda g: g[1])
            lines.append(f"  {len(gaps)} gaps; the longest {step / HOUR:g} h, ending {when(t)}")
        short = len(self.irregular) - len(gaps)
        if short:
            lines.append(f"  {short} steps shorter than the native interval")
        lines.extend(f"  {note}" for note in self.notes)
        return lines


# ----------------------------------------------------------------------------- parsing helpers


def _parse_time(text: str, where: str) -> int:
    """ISO-ish date or datetime, naive = UTC, with or without 'Z'/' UTC'/fractional secs."""
    raw = text.strip().removesuffix(" UTC")
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise HistoryError(f"{where}: {text!r} is not a date/time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _parse_float(text: str | None, where: str, *, positive: bool = False) -> float:
    try:
        number = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise HistoryError(f"{where}: {text!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise HistoryError(f"{where}: {text!r} is not a finite number")
    if positive and number <= 0:
        raise HistoryError(f"{where}: price {text!r} is not positive")
    return number


def _rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    handle = path.open(newline="", encoding="utf-8")
    reader = csv.reader(handle)
    header = next(reader, None)
    if not header:
        handle.close()
        raise HistoryError(f"{path}: empty file")

    def body() -> Iterator[tuple[int, list[str]]]:
        with handle:
            for number, row in enumerate(reader, start=2):
                if row:
                    yield number, row

    return [h.strip() for h in header], body()


def _column(header: list[str], name: str, path: Path) -> int:
    try:
        return header.index(name)
    except ValueError:
        raise HistoryError(f"{path}: no column {name!r} (header: {','.join(header)})") from None


def _cell(row: list[str], index: int, where: str) -> str:
    if index >= len(row):
        raise HistoryError(f"{where}: expected at least {index + 1} columns, got {len(row)}")
    return row[index]


def _venue_of(path: Path) -> str:
    return path.name.split("_", 1)[0].lower()


def _finish(
    report: SeriesReport, items: list[tuple[int, Any]], native: int | None = None
) -> list[tuple[int, Any]]:
    """Sort, de-duplicate (reporting both) and record irregular steps against the native
    interval (the most common step when `native` is None)."""
    previous = None
    for t, _ in items:
        if previous is not None and t < previous:
            report.out_of_order.append(t)
        previous = t if previous is None else max(previous, t)
    items.sort(key=lambda item: item[0])
    unique: list[tuple[int, Any]] = []
    for t, value in items:
        if unique and unique[-1][0] == t:
            (report.duplicates if unique[-1][1] == value else report.conflicting_duplicates).append(t)
            continue
        unique.append((t, value))
    if not unique:
        raise HistoryError(f"{report.path}: no rows")
    steps = [b[0] - a[0] for a, b in pairwise(unique)]
    report.interval = native or (Counter(steps).most_common(1)[0][0] if steps else HOUR)
    report.irregular = [
        (unique[i + 1][0], step) for i, step in enumerate(steps) if abs(step - report.interval) > JITTER
    ]
    report.rows, report.first, report.last = len(unique), unique[0][0], unique[-1][0]
    return unique


# ----------------------------------------------------------------------------- funding


def load_funding(
    path: str | Path, *, utc_shift_hours: int | None = None
) -> tuple[list[FundingPrint], SeriesReport]:
    """Funding prints from any supported file, oldest first, times in UTC.

    `utc_shift_hours`: the file's timezone offset for `Symbol,Date,Funding Rate` files
    (3 for the UTC+3 venues); by default taken from the venue in the file name, and an
    unknown venue is an error rather than a guess."""
    path = Path(path)
    if not path.is_file():
        raise HistoryError(f"{path}: no such file")
    if path.suffix == ".json":
        return _funding_json(path)
    header, rows = _rows(path)
    if header[:3] == ["Symbol", "Date", "Funding Rate"]:
        return _funding_supervik(path, rows, utc_shift_hours)
    if "fundingInterval" in header and "fundingRate" in header:
        return _funding_bitmex(path, header, rows)
    if "interest_1h" in header:
        return _funding_deribit(path, header, rows)
    raise HistoryError(f"{path}: not a funding history this loader knows (header: {','.join(header)})")


def _funding_supervik(
    path: Path, rows: Iterable[tuple[int, list[str]]], shift: int | None
) -> tuple[list[FundingPrint], SeriesReport]:
    venue = _venue_of(path)
    if shift is None:
        if venue in UTC_PLUS_3_VENUES:
            shift = 3
        elif venue in UTC_VENUES:
            shift = 0
        else:
            raise HistoryError(
                f"{path}: unknown venue {venue!r}, so the file's timezone is unknown; pass the UTC offset "
                "(--utc-shift-hours)"
            )
    report = SeriesReport(str(path), f"{venue} funding", utc_shift_hours=shift)
    items = [
        (
            _parse_time(_cell(row, 1, f"{path}:{n}"), f"{path}:{n}") - shift * HOUR,
            _parse_float(_cell(row, 2, f"{path}:{n}"), f"{path}:{n}"),
        )
        for n, row in rows
    ]
    native = NATIVE_INTERVAL.get(venue, DEFAULT_CEX_INTERVAL)
    unique = _finish(report, items, native)
    return [FundingPrint(t, rate, native) for t, rate in unique], report


def _funding_bitmex(
    path: Path, header: list[str], rows: Iterable[tuple[int, list[str]]]
) -> tuple[list[FundingPrint], SeriesReport]:
    i_time, i_rate, i_interval = (
        _column(header, c, path) for c in ("timestamp", "fundingRate", "fundingInterval")
    )
    epoch = _parse_time("2000-01-01T00:00:00Z", "epoch")
    items: list[tuple[int, Any]] = []
    for n, row in rows:
        where = f"{path}:{n}"
        # BitMEX writes the interval as a time after 2000-01-01 (2000-01-02 = 24 h).
        interval = _parse_time(_cell(row, i_interval, where), where) - epoch
        if interval <= 0:
            raise HistoryError(f"{where}: funding interval {row[i_interval]!r} is not positive")
        items.append((_parse_time(row[i_time], where), (_parse_float(row[i_rate], where), interval)))
    report = SeriesReport(str(path), "bitmex funding")
    unique = _finish(report, items)
    # The first rows are daily, the rest 8-hourly: steps are irregular only against their own interval.
    report.irregular = [
        (t, step)
        for (t, (_, interval)), (t0, _) in zip(unique[1:], unique, strict=False)
        if abs((step := t - t0) - interval) > JITTER
    ]
    intervals = Counter(interval for _, (_, interval) in unique)
    if len(intervals) > 1:
        report.notes.append(
            "intervals: " + ", ".join(f"{n} rows of {i // HOUR} h" for i, n in sorted(intervals.items()))
        )
    return [FundingPrint(t, rate, interval) for t, (rate, interval) in unique], report


def _funding_deribit(
    path: Path, header: list[str], rows: Iterable[tuple[int, list[str]]]
) -> tuple[list[FundingPrint], SeriesReport]:
    i_time, i_rate = _column(header, "timestamp", path), _column(header, "interest_1h", path)
    items = [
        (
            int(_parse_float(_cell(row, i_time, f"{path}:{n}"), f"{path}:{n}")) // 1000,
            _parse_float(row[i_rate], f"{path}:{n}"),
        )
        for n, row in rows
    ]
    report = SeriesReport(str(path), "deribit funding")
    unique = _finish(report, items, HOUR)
    return [FundingPrint(t, rate, HOUR) for t, rate in unique], report


def _funding_json(path: Path) -> tuple[list[FundingPrint], SeriesReport]:
    """A recorded venue body, parsed by that venue's own parser (the one the keeper runs live:
    `keeper.data.hyperliquid`, `keeper.data.dydx`), its prints then as floats for the replay."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise HistoryError(f"{path}: not JSON ({err})") from None
    if isinstance(body, dict) and isinstance(body.get("result"), dict):
        body = body["result"]  # a recorder's wrapper around the indexer body
    try:
        if isinstance(body, dict) and "historicalFunding" in body:
            return _funding_dydx_v4(path, dydx.parse_funding_rows(body))
        if isinstance(body, list) and body and isinstance(body[0], dict) and "fundingRate" in body[0]:
            return _funding_hyperliquid(path, hyperliquid.parse_funding_rows(body))
    except SourceError as err:
        raise HistoryError(f"{path}: {err.reason}") from None
    raise HistoryError(f"{path}: not a Hyperliquid fundingHistory or dYdX v4 historicalFunding body")


def _on_the_minute(point: FundingPoint) -> tuple[int, Any]:
    """(unix seconds cut to the minute, (rate, interval)): venues stamp prints a little
    after the settlement they record."""
    t = int(point.time.timestamp())
    return t - t % 60, (float(point.native_rate), point.interval_seconds)


def _funding_hyperliquid(path: Path, points: list[FundingPoint]) -> tuple[list[FundingPrint], SeriesReport]:
    report = SeriesReport(str(path), "hyperliquid funding")
    unique = _finish(report, [_on_the_minute(p) for p in points], HOUR)
    # 8-hourly, then hourly (`keeper.data.hyperliquid.HOURLY_SINCE`): each step against its own interval
    report.irregular = [
        (t, step)
        for (t, (_, interval)), (t0, _) in zip(unique[1:], unique, strict=False)
        if abs((step := t - t0) - interval) > JITTER
    ]
    if len({interval for _, (_, interval) in unique}) > 1:
        report.notes.append("Hyperliquid paid every 8 h until 2023-06-08 and hourly after: intervals follow")
    return [FundingPrint(t, rate, interval) for t, (rate, interval) in unique], report


def _funding_dydx_v4(path: Path, points: list[FundingPoint]) -> tuple[list[FundingPrint], SeriesReport]:
    items = [_on_the_minute(p) for p in points]
    report = SeriesReport(str(path), "dydx v4 funding")
    if len(items) > 1 and items[0][0] > items[-1][0]:
        report.notes.append("newest first in the file (the indexer's order); sorted")
        items.reverse()
    unique = _finish(report, items, HOUR)
    return [FundingPrint(t, rate, interval) for t, (rate, interval) in unique], report


# ----------------------------------------------------------------------------- prices

_PRICE_FORMATS = (
    # (time column, price column, kind): the price AT the timestamp (a bar's open)
    ("snapped_at", "price", "coingecko daily snapshot"),
    ("Open_time", "Open", "binance klines"),
    ("timestamp_utc", "open", "klines"),
    ("timestamp", "open", "klines"),
    ("timestamp", "index_price", "deribit index"),
)


def load_prices(path: str | Path) -> tuple[list[PricePoint], SeriesReport]:
    """A price series (the price at each timestamp: a bar's open, with the bar's high and
    low where the file has them), oldest first, UTC."""
    path = Path(path)
    if not path.is_file():
        raise HistoryError(f"{path}: no such file")
    header, rows = _rows(path)
    for time_col, price_col, kind in _PRICE_FORMATS:  # noqa: B007 (kind is used after the loop)
        if time_col in header and price_col in header:
            break
    else:
        raise HistoryError(f"{path}: not a price series this loader knows (header: {','.join(header)})")
    i_time, i_price = header.index(time_col), header.index(price_col)
    # the bar's range: `high`/`low` beside `open`, `High`/`Low` beside `Open`
    high_col, low_col = ("High", "Low") if price_col == "Open" else ("high", "low")
    ranged = price_col in ("open", "Open") and high_col in header and low_col in header
    i_high, i_low = (header.index(high_col), header.index(low_col)) if ranged else (-1, -1)
    millis = kind == "deribit index"
    items: list[tuple[int, Any]] = []
    for n, row in rows:
        where = f"{path}:{n}"
        raw_time = _cell(row, i_time, where)
        t = int(_parse_float(raw_time, where)) // 1000 if millis else _parse_time(raw_time, where)
        price = _parse_float(_cell(row, i_price, where), where, positive=True)
        if ranged:
            high = _parse_float(_cell(row, i_high, where), where, positive=True)
            low = _parse_float(_cell(row, i_low, where), where, positive=True)
            if not low <= price <= high:
                raise HistoryError(f"{where}: open {price} outside the bar's low {low} / high {high}")
            items.append((t, (price, high, low)))
        else:
            items.append((t, (price, None, None)))
    report = SeriesReport(str(path), kind)
    unique = _finish(report, items)
    if ranged:
        report.notes.append("bars with high/low: the replay checks margin at each bar's adverse extreme")
    return [PricePoint(t, price, high, low) for t, (price, high, low) in unique], report


def price_at(points: list[PricePoint], t: int) -> float:
    """The last price at or before `t` (the first one before the series starts)."""
    lo = bisect_right(points, t, key=_time_of)
    return points[max(lo - 1, 0)].price


def _time_of(point: PricePoint) -> int:
    return point.time


# ----------------------------------------------------------------------------- synthetic

# Regimes of the synthetic market: (mean funding per 8 h, price drift per year, volatility
# per sqrt(year)), and the chance per step of leaving each. Means follow the recorded
# histories (Binance ETH 2020-2023: ~0.01 %/8h at rest, 0.03-0.05 % in rallies, negative
# in sell-offs).
SYNTHETIC_REGIMES = {
    "calm": (0.000_10, 0.0, 0.55),
    "rally": (0.000_35, 0.9, 0.75),
    "selloff": (-0.000_08, -0.8, 0.95),
}
SYNTHETIC_SWITCH = 0.01  # per step: a regime lasts ~100 steps (~33 days at 8 h)


def synthetic_history(
    *,
    seed: int = 7,
    days: int = 365,
    interval_hours: int = 8,
    start: int = 1_672_531_200,
    price: float = 2_000.0,
) -> tuple[list[FundingPrint], list[PricePoint]]:
    """A seeded, labelled-synthetic market: funding mean-reverting (Ornstein-Uhlenbeck) to
    its regime's mean, prices a geometric random walk with the regime's drift and
    volatility, regimes switching at random. Same seed, same history."""
    import math
    import random

    rng = random.Random(seed)
    interval = interval_hours * HOUR
    dt = interval / (365 * 86_400)
    names = list(SYNTHETIC_REGIMES)
    regime, rate = "calm", SYNTHETIC_REGIMES["calm"][0]
    prints: list[FundingPrint] = []
    points: list[PricePoint] = []
    for step in range(days * 24 // interval_hours):
        t = start + step * interval
        mean, drift, vol = SYNTHETIC_REGIMES[regime]
        rate += 0.15 * (mean - rate) + rng.gauss(0.0, 0.000_04)  # reverts ~15 %/step
        rate = max(-0.003, min(0.003, rate))  # the venues' caps
        points.append(PricePoint(t, round(price, 6)))
        prints.append(FundingPrint(t + interval, rate, interval))
        price *= math.exp((drift - vol * vol / 2) * dt + vol * math.sqrt(dt) * rng.gauss(0.0, 1.0))
        if rng.random() < SYNTHETIC_SWITCH:
            regime = rng.choice([n for n in names if n != regime])
    return prints, points


def data_dir() -> Path:
    """The shared market data: $BASIS_DATA_DIR, else ../shared/data beside the checkout."""
    env = os.environ.get("BASIS_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def funding_files(root: Path) -> list[Path]:
    """The funding histories in `root/funding` (every CSV the funding loader reads)."""
    out = []
    for path in sorted((root / "funding").glob("*.csv")):
        header = path.open(encoding="utf-8").readline()
        if "Funding Rate" in header or "fundingRate" in header or "interest_1h" in header:
            out.append(path)
    return out
