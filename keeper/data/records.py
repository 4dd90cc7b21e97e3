"""The one record every funding source produces, and the checks every reading passes.

Units: `rate_per_hour` is a signed decimal rate per hour (0.0001 = 0.01 %/h), positive =
longs pay shorts = a short-perp vault receives it. A venue that settles every N hours has
its native per-interval rate divided by N; the native figure is kept next to it so
nothing is lost. Prices are decimal quote units (USD) as the venue reports them.
Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, TypeVar

from keeper.core.errors import SourceError
from keeper.net.http import HttpClient

HOUR = 3_600

_Record = TypeVar("_Record")


def frozen_record(cls: type[_Record], **fields: Any) -> _Record:
    """An instance of the frozen, dict-backed dataclass `cls` from every one of its fields
    by name, without its generated `__init__` (which sets each field through
    `object.__setattr__`, several times the cost of one dict update): for the few records
    a keeper tick builds, which the model replay builds every step. Only for classes
    without `__post_init__`; equality, `repr` and `replace` work as usual."""
    record = object.__new__(cls)
    record.__dict__.update(fields)
    return record


@dataclass(frozen=True)
class Limits:
    """What a reading must satisfy to be believed.

    `max_age` bounds how old a reading may be (for a snapshot: its `observed_at`; for a
    history: its newest row, plus one native interval since rows print at the end of
    theirs). `max_abs_rate_per_hour` rejects absurd rates: the default 1 %/h is 80x the
    largest hourly BTC/ETH prints in the recorded histories and a quarter of Hyperliquid's
    4 %/h cap, so only a broken feed or a market in free fall trips it.
    """

    max_age: timedelta = timedelta(hours=2)
    max_abs_rate_per_hour: Decimal = Decimal("0.01")

    def __post_init__(self) -> None:
        if self.max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        if self.max_abs_rate_per_hour <= 0:
            raise ValueError("max_abs_rate_per_hour must be positive")


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class FundingInfo:
    """The current funding reading of one market on one venue.

    `rate_per_hour`: the rate the next settlement is expected to pay (Hyperliquid's and
    dYdX's predicted rate, the on-chain market's live rate), per hour, + = longs pay shorts.
    `interval_seconds`: the venue's native settlement interval (3600 for hourly venues,
    1 for the reference market, which accrues by the second).
    `mark_price` / `index_price`: decimal USD; None when the venue's response does not
    carry that price (dYdX's indexer gives an oracle price but no mark), never a guess.
    `next_funding_time`: None for venues that accrue continuously.
    `observed_at`: when the reading was taken (the fetch time for HTTP snapshots, the
    block time on chain), UTC.
    """

    venue: str
    market: str
    rate_per_hour: Decimal
    interval_seconds: int
    mark_price: Decimal | None
    index_price: Decimal | None
    next_funding_time: datetime | None
    observed_at: datetime

    @property
    def basis(self) -> Decimal | None:
        """(mark - index) / index, or None when either price is missing."""
        if self.mark_price is None or self.index_price is None:
            return None
        return (self.mark_price - self.index_price) / self.index_price


@dataclass(frozen=True)
class FundingPoint:
    """One settled funding print: the rate paid at `time` for the `interval_seconds`
    before it. `native_rate` is the venue's figure per its own interval;
    `rate_per_hour` = native_rate * 3600 / interval_seconds. `price` is the venue's
    oracle price at the print when it reports one."""

    time: datetime
    rate_per_hour: Decimal
    native_rate: Decimal
    interval_seconds: int
    price: Decimal | None = None


@dataclass(frozen=True)
class WindowSums:
    """Totals of a history that its source computed exactly from integers (the reference
    market's prints, `keeper.bot.reference`), so the expected funding need not walk it: the
    prints tile [start, end] (unix seconds) without gaps or overlaps, and the sum of
    `rate_per_hour * interval_seconds` over them is exactly `Decimal(weighted) / scale`."""

    start: int
    end: int
    weighted: int
    scale: int


@dataclass(frozen=True)
class FundingView:
    """What the strategy sees of one venue: its latest reading and its recent settled
    prints, oldest first. `sums`, when a source sets it, are the exact totals of
    `history` (a shortcut for `keeper.bot.funding.smooth`; never set it on a history it was
    not computed from). `trailing`, likewise, are exact totals of the trailing parts of
    `history` ending where it ends (the prints over [end - span, end], clipped at its
    start): the same shortcut for windows shorter than the whole history."""

    info: FundingInfo
    history: tuple[FundingPoint, ...] = field(default=())
    sums: WindowSums | None = field(default=None, compare=False, repr=False)
    trailing: tuple[WindowSums, ...] = field(default=(), compare=False, repr=False)

    @property
    def venue(self) -> str:
        return self.info.venue


# ----------------------------------------------------------------------------- parsing


@lru_cache(maxsize=64)
def utc_at(timestamp: int) -> datetime:
    """`datetime.fromtimestamp(timestamp, tz=UTC)` for unix seconds, kept for the few
    latest (a tick reads its block time several times; datetimes are immutable)."""
    return datetime.fromtimestamp(timestamp, tz=UTC)


@dataclass(frozen=True)
class Fields:
    """Reading one venue's JSON bodies: every reader raises `SourceError(venue, ...)` with a
    reason naming the field (`where`)."""

    venue: str

    def utc_ms(self, value: object, where: str) -> datetime:
        """An integer epoch-milliseconds field as a UTC datetime."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise SourceError(self.venue, f"{where} must be integer milliseconds, got {value!r}")
        if value <= 0:
            raise SourceError(self.venue, f"{where} must be positive, got {value}")
        return datetime.fromtimestamp(value / 1000, tz=UTC)

    def utc_iso(self, value: object, where: str) -> datetime:
        """An ISO-8601 timestamp field (dYdX's `...Z`) as a UTC datetime; naive times refused."""
        if not isinstance(value, str):
            raise SourceError(self.venue, f"{where} must be an ISO timestamp string, got {value!r}")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise SourceError(self.venue, f"{where} is not an ISO timestamp: {value!r}") from None
        if parsed.tzinfo is None:
            raise SourceError(self.venue, f"{where} has no timezone: {value!r}")
        return parsed.astimezone(UTC)

    def decimal(
        self, obj: Mapping[str, Any], key: str, where: str, *, nullable: bool = False
    ) -> Decimal | None:
        """`obj[key]` as a finite Decimal. Venues send numbers as strings ("0.0000125");
        JSON numbers are accepted too, booleans never. Missing key: always an error; null:
        None when `nullable`, else an error."""
        venue = self.venue
        if key not in obj:
            raise SourceError(venue, f"{where}.{key} missing")
        raw = obj[key]
        if raw is None:
            if nullable:
                return None
            raise SourceError(venue, f"{where}.{key} is null")
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise SourceError(venue, f"{where}.{key} must be a number or numeric string, got {raw!r}")
        try:
            value = Decimal(str(raw).strip())
        except InvalidOperation:
            raise SourceError(venue, f"{where}.{key} is not numeric: {raw!r}") from None
        if not value.is_finite():
            raise SourceError(venue, f"{where}.{key} is not finite: {raw!r}")
        return value

    def required_decimal(self, obj: Mapping[str, Any], key: str, where: str) -> Decimal:
        value = self.decimal(obj, key, where)
        assert value is not None  # nullable=False raised instead
        return value

    def mapping(self, value: object, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise SourceError(self.venue, f"{where} must be an object, got {type(value).__name__}")
        return value

    def list(self, value: object, where: str) -> Sequence[Any]:
        if not isinstance(value, list):
            raise SourceError(self.venue, f"{where} must be a list, got {type(value).__name__}")
        return value

    def rows(
        self, value: object, name: str, key: str, market: str | None
    ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Each object of the list `value` (the body's `name`) with where it stands, every one
        naming the same market in its `key` field: `market`, by default the first row's."""
        for i, row in enumerate(self.list(value, name)):
            where = f"{name}[{i}]"
            obj = self.mapping(row, where)
            named = self.text(obj, key, where)
            market = market or named
            if named != market:
                raise SourceError(self.venue, f"{where}.{key} is {named!r}, asked for {market!r}")
            yield where, obj

    def hourly_reading(
        self,
        market: str,
        rate_per_hour: Decimal,
        prices: tuple[Decimal | None, Decimal | None],
        observed_at: datetime,
        limits: Limits,
    ) -> FundingInfo:
        """The reading of a venue that settles every hour on the hour, `prices` = (mark,
        index), checked (`check_info`) at `observed_at`."""
        info = FundingInfo(
            venue=self.venue,
            market=market,
            rate_per_hour=rate_per_hour,
            interval_seconds=HOUR,
            mark_price=prices[0],
            index_price=prices[1],
            next_funding_time=next_top_of_hour(observed_at),
            observed_at=observed_at,
        )
        return check_info(info, observed_at, limits)

    def history(
        self, market: str, points: Sequence[FundingPoint], now: datetime | None, limits: Limits
    ) -> tuple[FundingPoint, ...]:
        """`check_history` for this venue."""
        return check_history(self.venue, market, points, now, limits)

    def text(self, obj: Mapping[str, Any], key: str, where: str) -> str:
        if key not in obj:
            raise SourceError(self.venue, f"{where}.{key} missing")
        value = obj[key]
        if not isinstance(value, str):
            raise SourceError(self.venue, f"{where}.{key} must be a string, got {value!r}")
        return value


# ----------------------------------------------------------------------------- checks


def check_rate(rate_per_hour: Decimal, limits: Limits, venue: str, where: str) -> None:
    if abs(rate_per_hour) > limits.max_abs_rate_per_hour:
        raise SourceError(
            venue,
            f"{where}: |rate| {rate_per_hour}/h above the {limits.max_abs_rate_per_hour}/h bound",
        )


def check_price(price: Decimal | None, venue: str, where: str) -> None:
    if price is not None and price <= 0:
        raise SourceError(venue, f"{where} must be positive, got {price}")


_FUTURE_SLACK = timedelta(minutes=5)


def check_info(info: FundingInfo, now: datetime, limits: Limits = DEFAULT_LIMITS) -> FundingInfo:
    """Rejects a reading that is stale, from the future, absurd or badly priced; returns
    it unchanged otherwise."""
    where = f"{info.market}"
    if info.observed_at.tzinfo is None:
        raise SourceError(info.venue, f"{where}: observed_at has no timezone")
    age = now - info.observed_at
    if age > limits.max_age:
        raise SourceError(info.venue, f"{where}: reading is stale ({age} old, max {limits.max_age})")
    if age < -_FUTURE_SLACK:
        raise SourceError(info.venue, f"{where}: reading is from the future ({info.observed_at} > {now})")
    if info.interval_seconds <= 0:
        raise SourceError(info.venue, f"{where}: interval_seconds must be positive")
    check_rate(info.rate_per_hour, limits, info.venue, where)
    for price, what in ((info.mark_price, "mark price"), (info.index_price, "index price")):
        if price is not None and price <= 0:  # check_price, its message built only when it fails
            check_price(price, info.venue, f"{where}: {what}")
    return info


def check_history(
    venue: str, market: str, points: Sequence[FundingPoint], now: datetime | None, limits: Limits
) -> tuple[FundingPoint, ...]:
    """Sorts prints oldest first, rejects duplicates, absurd rates and bad prices, and
    (given `now`) a history whose newest print is older than `max_age` + one interval."""
    ordered = tuple(sorted(points, key=lambda p: p.time))
    for i, point in enumerate(ordered):
        check_rate(point.rate_per_hour, limits, venue, f"{market} history[{i}] at {point.time.isoformat()}")
        check_price(point.price, venue, f"{market} history[{i}] price")
        if i and point.time == ordered[i - 1].time:
            raise SourceError(venue, f"{market} history has two prints at {point.time.isoformat()}")
    if now is not None and ordered:
        newest = ordered[-1]
        age = now - newest.time
        if age > limits.max_age + timedelta(seconds=newest.interval_seconds):
            raise SourceError(
                venue, f"{market} history is stale: newest print {newest.time.isoformat()} is {age} old"
            )
    return ordered


def next_top_of_hour(moment: datetime) -> datetime:
    """The next whole UTC hour strictly after `moment` (hourly venues settle on the hour)."""
    floor = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor + timedelta(hours=1)


# ----------------------------------------------------------------------------- HTTP sources


def utc_now() -> datetime:
    return datetime.now(UTC)


class HttpSource:
    """What every HTTP venue source holds: a client for the venue, its base URL, the
    limits readings must pass, a clock to stamp snapshots (the venues' answers carry no
    time of their own) and a bound on pages followed."""

    VENUE = ""
    URL = ""

    def __init__(
        self,
        client: HttpClient | None = None,
        *,
        url: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
        clock: Callable[[], datetime] = utc_now,
        max_pages: int = 20,
    ) -> None:
        self.client = client or HttpClient(self.VENUE)
        self.url = (url or self.URL).rstrip("/")
        self.limits = limits
        self.clock = clock
        self.max_pages = max_pages

    def funding_info(self, market: str) -> FundingInfo:
        raise NotImplementedError

    def funding_history(self, market: str, start: datetime) -> tuple[FundingPoint, ...]:
        raise NotImplementedError

    def view(self, market: str, window: timedelta) -> FundingView:
        """The latest reading and the prints of the `window` before it."""
        info = self.funding_info(market)
        return FundingView(info, self.funding_history(market, info.observed_at - window))
