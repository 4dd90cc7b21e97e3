"""dYdX v4: the indexer's `perpetualMarkets` (predicted funding, oracle price) and
`historicalFunding` (settled prints).

dYdX v4 settles funding every hour. The protocol emits 8-hour funding values in ppm and
the indexer divides them by 8 before storing (`funding8HourValuePpmTo1HourRate` in the
v4-chain indexer), so both `nextFundingRate` and `historicalFunding[].rate` are 1-hour
rates; `nextFundingRate` already includes the market's `defaultFundingRate1H`.
(The two recorded samples differ about 100x in size: 1.76e-4/h in July 2025 against
~1e-6/h in December 2025. Both are hourly; the first is simply a hot market, and the
absurd-rate bound is what guards against a unit slip.) The indexer answers histories
newest first; this module returns them oldest first. The indexer gives no mark price:
`mark_price` is None, `index_price` is the oracle price.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from keeper.core.errors import SourceError
from keeper.data.records import DEFAULT_LIMITS, HOUR, Fields, FundingInfo, FundingPoint, HttpSource, Limits

VENUE = "dydx"
FIELDS = Fields(VENUE)
INDEXER_URL = "https://indexer.dydx.trade/v4"
PAGE_ROWS = 100


def unwrap(body: object, key: str) -> Mapping[str, Any]:
    """The indexer body holding `key`; also accepts a recorded-request wrapper
    (`{requestId, status, isoTimestamp, result}`) around it, refusing a failed one."""
    obj = FIELDS.mapping(body, "response")
    if key in obj:
        return obj
    if "result" in obj:
        status = obj.get("status")
        if status is not None and status != "success":
            raise SourceError(VENUE, f"wrapped response has status {status!r}")
        inner = FIELDS.mapping(obj["result"], "result")
        if key in inner:
            return inner
    raise SourceError(VENUE, f"response.{key} missing")


def parse_perpetual_markets(
    body: object, ticker: str, observed_at: datetime, limits: Limits = DEFAULT_LIMITS
) -> FundingInfo:
    """`GET /perpetualMarkets[?ticker=]` (`{markets: {ticker: {...}}}`) as the reading for
    `ticker`; a market that is not ACTIVE is refused (its funding does not settle)."""
    markets = FIELDS.mapping(unwrap(body, "markets")["markets"], "markets")
    if ticker not in markets:
        raise SourceError(VENUE, f"markets.{ticker} missing")
    where = f"markets.{ticker}"
    market = FIELDS.mapping(markets[ticker], where)
    status = FIELDS.text(market, "status", where)
    if status != "ACTIVE":
        raise SourceError(VENUE, f"{where}.status is {status!r}, not ACTIVE")
    rate = FIELDS.required_decimal(market, "nextFundingRate", where)
    index = FIELDS.decimal(market, "oraclePrice", where, nullable=True)
    return FIELDS.hourly_reading(ticker, rate, (None, index), observed_at, limits)


def _height(row: Mapping[str, Any], where: str) -> int:
    raw = FIELDS.text(row, "effectiveAtHeight", where)
    if not raw.isdigit():
        raise SourceError(VENUE, f"{where}.effectiveAtHeight is not a block height: {raw!r}")
    return int(raw)


def parse_funding_rows(body: object, ticker: str | None = None) -> list[FundingPoint]:
    """`GET /historicalFunding/{ticker}` (`{historicalFunding: [{ticker, rate, price,
    effectiveAtHeight, effectiveAt}]}`, newest first), live or recorded, as hourly prints in
    the body's order; every row is of `ticker` (by default the first row's). Rows whose
    block heights disagree with their times are refused; order, duplicates and limits are
    the caller's to check."""
    rows = unwrap(body, "historicalFunding")["historicalFunding"]
    stamped: list[tuple[int, FundingPoint]] = []
    for where, obj in FIELDS.rows(rows, "historicalFunding", "ticker", ticker):
        rate = FIELDS.required_decimal(obj, "rate", where)
        point = FundingPoint(
            time=FIELDS.utc_iso(obj.get("effectiveAt"), f"{where}.effectiveAt"),
            rate_per_hour=rate,
            native_rate=rate,
            interval_seconds=HOUR,
            price=FIELDS.decimal(obj, "price", where, nullable=True),
        )
        stamped.append((_height(obj, where), point))
    for (h0, p0), (h1, p1) in pairwise(sorted(stamped, key=lambda hp: hp[1].time)):
        if h1 <= h0:
            at = f"{p0.time.isoformat()} and {p1.time.isoformat()}"
            raise SourceError(VENUE, f"historicalFunding block heights disagree with times at {at}")
    return [p for _, p in stamped]


def parse_historical_funding(
    body: object, ticker: str, limits: Limits = DEFAULT_LIMITS, now: datetime | None = None
) -> tuple[FundingPoint, ...]:
    """`parse_funding_rows` for `ticker`, oldest first, checked against `limits` (and `now`)."""
    return FIELDS.history(ticker, parse_funding_rows(body, ticker), now, limits)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class DydxSource(HttpSource):
    """Live reading and history from a dYdX v4 indexer."""

    VENUE = VENUE
    URL = INDEXER_URL

    def funding_info(self, ticker: str) -> FundingInfo:
        body = self.client.get_json(f"{self.url}/perpetualMarkets", {"ticker": ticker})
        return parse_perpetual_markets(body, ticker, self.clock(), self.limits)

    def funding_history(self, ticker: str, start: datetime) -> tuple[FundingPoint, ...]:
        """Prints since `start`, walking pages backwards from now (the indexer pages
        newest first with `effectiveBeforeOrAt`)."""
        rows: list[Any] = []
        before: datetime | None = None
        for _ in range(self.max_pages):
            params: dict[str, str | int] = {"limit": PAGE_ROWS}
            if before is not None:
                params["effectiveBeforeOrAt"] = _iso(before)
            page = parse_historical_funding(
                self.client.get_json(f"{self.url}/historicalFunding/{ticker}", params), ticker, self.limits
            )
            rows.extend(page)
            if len(page) < PAGE_ROWS or page[0].time <= start:
                break
            before = page[0].time - timedelta(milliseconds=1)
        else:
            raise SourceError(VENUE, f"historicalFunding longer than {self.max_pages} pages")
        kept = {p.time: p for p in rows if p.time >= start}
        return FIELDS.history(ticker, list(kept.values()), self.clock(), self.limits)
