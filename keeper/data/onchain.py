"""The reference PerpMarket as a funding source, from values already read from chain.

The market stores a signed funding rate per second, 1e18 = 100 %/s (+ = longs pay
shorts), and accrues it by the second against its index price (8 decimals). Nothing here
talks to a node: the executor reads `funding_rate()`, `index_price()`, a quote and the
block time in its batched call and passes them in, so this stays pure and testable.
The market's history is its `FundingRateUpdated` events: a step function, turned into
prints by `history_from_rate_updates`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

from keeper.core.errors import SourceError
from keeper.core.fixed import MAX_FUNDING_RATE, PRICE_UNIT, RATE_UNIT
from keeper.data.records import (
    DEFAULT_LIMITS,
    HOUR,
    FundingInfo,
    FundingPoint,
    Limits,
    check_history,
    check_info,
    frozen_record,
    utc_at,
)

VENUE = "onchain"


def rate_per_hour_from_chain(rate_per_second_e18: int) -> Decimal:
    """The market's 1e18-per-second integer as a decimal rate per hour (exact)."""
    if -MAX_FUNDING_RATE <= rate_per_second_e18 <= MAX_FUNDING_RATE:
        return _bounded_rate_per_hour(rate_per_second_e18)
    return Decimal(rate_per_second_e18) * HOUR / RATE_UNIT


@lru_cache(maxsize=1_024)
def _bounded_rate_per_hour(rate_per_second_e18: int) -> Decimal:
    """The same for a rate within the market's bound, kept: at most 14 digits times 3600
    then divided by a power of ten, it is exact in any decimal context, so a kept result
    is the one a new call gives (the replay converts each rate a few times per tick)."""
    return Decimal(rate_per_second_e18) * HOUR / RATE_UNIT


def _check_rate(rate_per_second_e18: int, where: str) -> None:
    if abs(rate_per_second_e18) > MAX_FUNDING_RATE:
        raise SourceError(VENUE, f"{where}: funding_rate {rate_per_second_e18} beyond the market's bound")


def onchain_funding_info(
    *,
    funding_rate: int,
    index_price_e8: int,
    mark_price_e8: int | None,
    block_timestamp: int,
    market: str = "ETH-USD",
    now: datetime | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> FundingInfo:
    """A reading from `funding_rate()` (1e18/s), `index_price()` (e8), the market's mark
    or marginal fill quote (e8; None if not read) and the block timestamp it was read at.
    `now` (default: the block time) is what staleness is judged against."""
    _check_rate(funding_rate, market)
    if index_price_e8 <= 0:
        raise SourceError(VENUE, f"{market}: index price must be positive, got {index_price_e8}")
    if mark_price_e8 is not None and mark_price_e8 <= 0:
        raise SourceError(VENUE, f"{market}: mark price must be positive, got {mark_price_e8}")
    observed = utc_at(block_timestamp)
    index = Decimal(index_price_e8) / PRICE_UNIT
    info = frozen_record(
        FundingInfo,
        venue=VENUE,
        market=market,
        rate_per_hour=rate_per_hour_from_chain(funding_rate),
        interval_seconds=1,  # accrues by the second
        mark_price=None
        if mark_price_e8 is None
        else index
        if mark_price_e8 == index_price_e8
        else Decimal(mark_price_e8) / PRICE_UNIT,
        index_price=index,
        next_funding_time=None,
        observed_at=observed,
    )
    return check_info(info, now or observed, limits)


def history_from_rate_updates(
    initial_rate: int,
    start: int,
    updates: Sequence[tuple[int, int]],
    end: int,
    *,
    market: str = "ETH-USD",
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[FundingPoint, ...]:
    """The rate in force over [start, end] as prints: `initial_rate` from `start`, then each
    `(timestamp, new_rate)` from `FundingRateUpdated` (sorted, within the span) until the
    next one. Each piece becomes one print stamped at its end and covering its length."""
    if end <= start:
        raise SourceError(VENUE, f"{market}: empty span [{start}, {end}]")
    _check_rate(initial_rate, f"{market} initial rate")
    pieces: list[FundingPoint] = []
    rate, since = initial_rate, start
    for i, (when, new_rate) in enumerate([*updates, (end, initial_rate)]):
        last = i == len(updates)
        if not last:
            if not start <= when <= end or when < since:
                raise SourceError(
                    VENUE, f"{market}: rate update {i} at {when} out of order or outside the span"
                )
            _check_rate(new_rate, f"{market} update {i}")
        if when > since:
            hourly = rate_per_hour_from_chain(rate)
            pieces.append(
                FundingPoint(
                    time=datetime.fromtimestamp(when, tz=UTC),
                    rate_per_hour=hourly,
                    native_rate=Decimal(rate) / RATE_UNIT,
                    interval_seconds=when - since,
                )
            )
        if not last:
            rate, since = new_rate, when
    return check_history(VENUE, market, pieces, None, limits)
