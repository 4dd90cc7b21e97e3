"""Hyperliquid: the info API's `metaAndAssetCtxs` (live funding, mark and oracle prices)
and `fundingHistory` (settled prints).

Hyperliquid settles funding every hour on the hour; `funding` and `fundingRate` are
per-hour rates. Before 2023-06-08 it settled every 8 hours and `fundingRate` rows of that
era are 8-hour rates (the recorded history crosses the switch: the last 8-hourly print
is 2023-06-08 00:00 UTC, hourly prints start at 01:00). Print times are epoch
milliseconds a few hundred ms after the hour, and a print can be missing (the recorded
history skips 2023-07-02 20:00), so the interval is read from the calendar, not from the
spacing of rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from keeper.core.errors import SourceError
from keeper.data.records import DEFAULT_LIMITS, HOUR, Fields, FundingInfo, FundingPoint, HttpSource, Limits

VENUE = "hyperliquid"
FIELDS = Fields(VENUE)
INFO_URL = "https://api.hyperliquid.xyz/info"
# Prints stamped before this are 8-hour rates (half an hour after the last 8h print).
HOURLY_SINCE = datetime(2023, 6, 8, 0, 30, tzinfo=UTC)
# `fundingHistory` answers at most this many rows per request.
PAGE_ROWS = 500


def native_interval_at(time: datetime) -> int:
    """Seconds covered by a Hyperliquid print stamped `time`."""
    return 8 * HOUR if time < HOURLY_SINCE else HOUR


def parse_asset_ctx(
    ctx: object, market: str, observed_at: datetime, limits: Limits = DEFAULT_LIMITS, where: str = "ctx"
) -> FundingInfo:
    """One asset context (`{funding, markPx, oraclePx, premium, ...}`, all strings) as a
    reading. `funding` is required; `markPx`/`oraclePx` may be null (then None);
    `premium`, `midPx` and `impactPxs` are null on inactive markets and not needed."""
    obj = FIELDS.mapping(ctx, where)
    rate = FIELDS.required_decimal(obj, "funding", where)
    mark = FIELDS.decimal(obj, "markPx", where, nullable=True)
    return FIELDS.hourly_reading(
        market, rate, (mark, FIELDS.decimal(obj, "oraclePx", where, nullable=True)), observed_at, limits
    )


def _universe_index(meta: object, coin: str, where: str) -> tuple[int, int]:
    """(index of `coin` in meta.universe, universe size); delisted coins refused."""
    universe = FIELDS.list(FIELDS.mapping(meta, where).get("universe"), f"{where}.universe")
    for i, entry in enumerate(universe):
        asset = FIELDS.mapping(entry, f"{where}.universe[{i}]")
        if FIELDS.text(asset, "name", f"{where}.universe[{i}]") == coin:
            if asset.get("isDelisted") is True:
                raise SourceError(VENUE, f"{coin} is delisted")
            return i, len(universe)
    raise SourceError(VENUE, f"{coin} not in {where}.universe")


def parse_meta_and_asset_ctxs(
    body: object, coin: str, observed_at: datetime, limits: Limits = DEFAULT_LIMITS
) -> FundingInfo:
    """The `{"type": "metaAndAssetCtxs"}` answer, `[meta, [ctx, ...]]` with contexts in
    universe order, as the reading for `coin`."""
    pair = FIELDS.list(body, "metaAndAssetCtxs")
    if len(pair) != 2:
        raise SourceError(VENUE, f"metaAndAssetCtxs must be [meta, assetCtxs], got {len(pair)} elements")
    index, size = _universe_index(pair[0], coin, "meta")
    ctxs = FIELDS.list(pair[1], "assetCtxs")
    if len(ctxs) != size:
        raise SourceError(VENUE, f"assetCtxs has {len(ctxs)} entries for a universe of {size}")
    return parse_asset_ctx(ctxs[index], coin, observed_at, limits, f"assetCtxs[{index}]")


def parse_all_dexs_asset_ctxs(
    message: object,
    meta: object,
    coin: str,
    observed_at: datetime,
    limits: Limits = DEFAULT_LIMITS,
    dex: str = "",
) -> FundingInfo:
    """The websocket `allDexsAssetCtxs` push (`data.ctxs = [[dex, [ctx, ...]], ...]`, ""
    = the main dex) with a `meta` answer for the universe order, as the reading for `coin`."""
    msg = FIELDS.mapping(message, "message")
    if msg.get("channel") != "allDexsAssetCtxs":
        raise SourceError(VENUE, f"message.channel is {msg.get('channel')!r}, not 'allDexsAssetCtxs'")
    groups = FIELDS.list(FIELDS.mapping(msg.get("data"), "data").get("ctxs"), "data.ctxs")
    index, _ = _universe_index(meta, coin, "meta")
    for g, group in enumerate(groups):
        pair = FIELDS.list(group, f"data.ctxs[{g}]")
        if len(pair) != 2:
            raise SourceError(VENUE, f"data.ctxs[{g}] must be [dex, ctxs]")
        if pair[0] != dex:
            continue
        ctxs = FIELDS.list(pair[1], f"data.ctxs[{g}][1]")
        if index >= len(ctxs):
            raise SourceError(VENUE, f"data.ctxs[{g}] has no context at index {index} ({coin})")
        return parse_asset_ctx(ctxs[index], coin, observed_at, limits, f"data.ctxs[{g}][1][{index}]")
    raise SourceError(VENUE, f"no contexts for dex {dex!r}")


def parse_funding_rows(body: object, coin: str | None = None) -> list[FundingPoint]:
    """The `{"type": "fundingHistory"}` answer (`[{coin, fundingRate, premium?, time}]`), live
    or recorded, as prints in the body's order, each normalised to a rate per hour with its
    interval from the calendar (`native_interval_at`). A row without `premium` is fine (the
    field is not needed); every other field is required, and every row is of `coin` (by
    default the first row's). Order, duplicates and limits are the caller's to check."""
    points = []
    for where, obj in FIELDS.rows(body, "fundingHistory", "coin", coin):
        native = FIELDS.required_decimal(obj, "fundingRate", where)
        if "premium" in obj:
            FIELDS.decimal(obj, "premium", where, nullable=True)  # validated, not used
        time = FIELDS.utc_ms(obj.get("time"), f"{where}.time")
        interval = native_interval_at(time)
        points.append(
            FundingPoint(
                time=time,
                rate_per_hour=native * HOUR / interval,
                native_rate=native,
                interval_seconds=interval,
            )
        )
    return points


def parse_funding_history(
    body: object, coin: str, limits: Limits = DEFAULT_LIMITS, now: datetime | None = None
) -> tuple[FundingPoint, ...]:
    """`parse_funding_rows` for `coin`, oldest first, checked against `limits` (and `now`)."""
    return FIELDS.history(coin, parse_funding_rows(body, coin), now, limits)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class HyperliquidSource(HttpSource):
    """Live reading and history for one Hyperliquid coin (POST /info)."""

    VENUE = VENUE
    URL = INFO_URL

    def funding_info(self, coin: str) -> FundingInfo:
        body = self.client.post_json(self.url, {"type": "metaAndAssetCtxs"})
        return parse_meta_and_asset_ctxs(body, coin, self.clock(), self.limits)

    def funding_history(
        self, coin: str, start: datetime, end: datetime | None = None
    ) -> tuple[FundingPoint, ...]:
        """Prints in [start, end], following pages of `PAGE_ROWS` rows."""
        rows: list[Any] = []
        cursor = _ms(start)
        for _ in range(self.max_pages):
            request: dict[str, Any] = {"type": "fundingHistory", "coin": coin, "startTime": cursor}
            if end is not None:
                request["endTime"] = _ms(end)
            page = FIELDS.list(self.client.post_json(self.url, request), "fundingHistory")
            rows.extend(page)
            if len(page) < PAGE_ROWS:
                break
            last = FIELDS.mapping(page[-1], "fundingHistory[-1]").get("time")
            if not isinstance(last, int) or last < cursor:
                raise SourceError(VENUE, "fundingHistory pages do not advance")
            cursor = last + 1
        else:
            raise SourceError(VENUE, f"fundingHistory longer than {self.max_pages} pages")
        return parse_funding_history(rows, coin, self.limits, self.clock())
