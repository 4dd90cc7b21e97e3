"""The reference market's funding history, from chain.

The market emits `FundingRateUpdated(old_rate, new_rate, funding_index)` whenever its
rate changes; between changes the rate is constant. At start the keeper reads those events
since the deployment (the logs, then their blocks' timestamps), so a restarted keeper sees
the same history as the one before it. After that, each tick's snapshot carries the live
rate: while it is the rate the history already ends with, nothing is read; when it
differs, the tick reads the new events (two more requests, on the rare tick where the rate
changed), so the history stays exact even after the keeper was cut off for hours.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from decimal import Decimal

from keeper.chain.abi import FUNDING_RATE_UPDATED
from keeper.chain.reader import ChainReadError
from keeper.core.fixed import MAX_FUNDING_RATE, RATE_UNIT
from keeper.data.onchain import history_from_rate_updates, onchain_funding_info, rate_per_hour_from_chain
from keeper.data.records import HOUR, FundingPoint, FundingView, Limits, WindowSums, frozen_record, utc_at
from keeper.net.rpc import Rpc, RpcError

# `prune` forgets old changes this many at a time (each time the kept pieces are rebuilt).
PRUNE_BATCH = 1_024


@dataclass
class ReferenceHistory:
    """Rate changes as (timestamp, new rate), oldest first, since `start`."""

    start: int  # the deployment's block time
    initial_rate: int  # the rate in force at `start`
    changes: list[tuple[int, int]] = field(default_factory=list)

    synced_block: int = 0  # logs read up to here
    _pieces: _Pieces | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def backfill(cls, rpc: Rpc, perp_market: str, from_block: int) -> ReferenceHistory:
        """Every rate change since `from_block` (the deployment): two requests."""
        (start,) = _timestamps(rpc, [from_block]).values()
        history = cls(start, 0, synced_block=from_block - 1)
        events = history._read_events(rpc, perp_market, from_block, "latest")
        if events:
            history.initial_rate = events[0][1]
        history.changes = [(t, new) for t, _, new in events]
        return history

    def sync(self, rpc: Rpc, perp_market: str, to_block: int) -> None:
        """Reads the changes since the last sync (the tick saw a rate it did not know)."""
        events = self._read_events(rpc, perp_market, self.synced_block + 1, hex(to_block))
        self.changes.extend((t, new) for t, _, new in events if not self.changes or t >= self.changes[-1][0])
        self.synced_block = max(self.synced_block, to_block)

    def _read_events(
        self, rpc: Rpc, perp_market: str, from_block: int, to_block: str
    ) -> list[tuple[int, int, int]]:
        query = {
            "address": perp_market,
            "topics": [FUNDING_RATE_UPDATED.topic],
            "fromBlock": hex(from_block),
            "toBlock": to_block,
        }
        logs = rpc.call("eth_getLogs", query)
        if not isinstance(logs, list):
            raise ChainReadError(f"eth_getLogs: unexpected answer {str(logs)[:80]}")
        times = _timestamps(rpc, sorted({int(log["blockNumber"], 16) for log in logs}))
        events = []
        for log in logs:
            number = int(log["blockNumber"], 16)
            old, new, _ = FUNDING_RATE_UPDATED.data(log)
            events.append((times[number], int(old), int(new)))
            self.synced_block = max(self.synced_block, number)
        return events

    def observe(self, timestamp: int, rate: int) -> None:
        """A snapshot's live rate when `sync` found no event for it (a node that lost logs):
        recorded at the snapshot's time, the best the keeper knows."""
        if rate != self.rate_at(timestamp) and timestamp >= self.start:
            self.changes.append((max(timestamp, self.changes[-1][0] if self.changes else self.start), rate))

    def prune(self, now: int, keep_seconds: int) -> None:
        """Forgets changes older than `keep_seconds` before `now` (the rate in force then
        becomes `initial_rate`), once `PRUNE_BATCH` of them have piled up: views within
        that span are the same, and a keeper running for years, or a replay, keeps a
        bounded history (the span's changes and fewer than `PRUNE_BATCH` older ones),
        whose pieces are rebuilt once per batch."""
        keep_from = now - keep_seconds
        if len(self.changes) < PRUNE_BATCH or bisect_right(self.changes, (keep_from, 2**255)) < PRUNE_BATCH:
            return
        self.initial_rate = self.rate_at(keep_from)
        self.start = max(self.start, keep_from)
        self.changes = [(t, r) for t, r in self.changes if t > keep_from]

    def rate_at(self, timestamp: int) -> int:
        i = bisect_right(self.changes, (timestamp, 2**255))
        return self.changes[i - 1][1] if i else self.initial_rate

    def view(
        self,
        *,
        block_timestamp: int,
        funding_rate: int,
        index_price_e8: int,
        window: int,
        limits: Limits,
        market: str = "ETH-USD",
        trailing: tuple[int, ...] = (),
    ) -> FundingView:
        """The market's reading at a snapshot plus its prints over the last `window` s,
        with their exact totals (`FundingView.sums`) and those of the last `trailing` s
        for each span given (`FundingView.trailing`, for the shorter windows the strategy
        reads). The prints between two changes are built once and kept (`_Pieces`), so a
        tick costs the window's length in references, not in prints built; the result is
        the one `history_from_rate_updates` gives."""
        self.observe(block_timestamp, funding_rate)
        info = onchain_funding_info(
            funding_rate=funding_rate,
            index_price_e8=index_price_e8,
            mark_price_e8=index_price_e8,
            block_timestamp=block_timestamp,
            market=market,
            limits=limits,
        )
        start = max(self.start, block_timestamp - window)
        if block_timestamp <= start:
            return FundingView(info)
        quick = self._quick_history(start, block_timestamp, limits)
        if quick is not None:
            parts = self._trailing(trailing, start, block_timestamp) if trailing else ()
            return frozen_record(FundingView, info=info, history=quick[0], sums=quick[1], trailing=parts)
        return FundingView(info, self.slow_history(start, block_timestamp, limits, market))

    def _trailing(self, spans: tuple[int, ...], start: int, end: int) -> tuple[WindowSums, ...]:
        """The exact totals over [end - span, end] of each span that starts after `start`
        (a longer one is the whole history's), as `_quick_history` gives them: called
        right after it succeeded over [start, end], so the pieces are current, ordered and
        hold no refused rate there."""
        changes, pieces = self.changes, self._pieces
        assert pieces is not None
        starts, prefix = pieces.starts, pieces.weighted
        j = bisect_right(changes, (end, 2**255))  # past the last change at or before end
        if j:
            t_last, last_rate = changes[j - 1]
            b = bisect_left(starts, j - 1)
        out = []
        for span in sorted(set(spans)):
            since = end - span
            if since <= start:
                continue
            i = bisect_right(changes, (since, 2**255))  # the first change after since
            initial = changes[i - 1][1] if i else self.initial_rate
            if i == j:
                weighted = initial * span
            else:
                a = bisect_left(starts, i)
                weighted = (
                    initial * (changes[i][0] - since) + prefix[b] - prefix[a] + last_rate * (end - t_last)
                )
            out.append(WindowSums(since, end, weighted * HOUR, RATE_UNIT))
        return tuple(out)

    def slow_history(
        self, start: int, end: int, limits: Limits, market: str = "ETH-USD"
    ) -> tuple[FundingPoint, ...]:
        """The prints over [start, end] built from scratch (`history_from_rate_updates`):
        the definition `view` keeps to, and where it raises the same errors."""
        updates = [(t, r) for t, r in self.changes if start < t <= end]
        return history_from_rate_updates(
            self.rate_at(start), start, updates, end, market=market, limits=limits
        )

    def _quick_history(
        self, start: int, end: int, limits: Limits
    ) -> tuple[tuple[FundingPoint, ...], WindowSums] | None:
        """The prints over [start, end] and their totals from the kept pieces, or None
        where `history_from_rate_updates` could raise (a rate beyond the market's bound or
        `limits`, changes out of order): the caller then builds from scratch and raises
        as it does."""
        pieces = self._pieces
        if pieces is None or not pieces.fits(self.changes, limits):
            pieces = self._pieces = _Pieces(self.changes, limits)
        pieces.extend()
        changes = self.changes
        if not pieces.ordered:
            return None
        key_start, key_end = (start, 2**255), (end, 2**255)
        i = bisect_right(changes, key_start)  # the first change after start
        j = bisect_right(changes, key_end)  # past the last change at or before end
        if i:  # the rate in force at start is change i - 1's: its flag is kept too
            initial = changes[i - 1][1]
            if pieces.bad[j] - pieces.bad[i - 1]:
                return None
        else:
            initial = self.initial_rate
            if pieces.bad[j] or _bad_rate(initial, limits):
                return None
        if i == j:
            first = _point(initial, start, end)
            sums = frozen_record(
                WindowSums, start=start, end=end, weighted=initial * (end - start) * HOUR, scale=RATE_UNIT
            )
            return (first,), sums
        t_first, (t_last, last_rate) = changes[i][0], changes[j - 1]
        starts = pieces.starts
        a, b = bisect_left(starts, i), bisect_left(starts, j - 1)
        weighted = initial * (t_first - start) + pieces.weighted[b] - pieces.weighted[a]
        if a and starts[a - 1] == i - 1 and changes[i - 1][0] == start:
            body = pieces.points[a - 1 : b]  # the window starts on a change: its piece is kept
        else:
            body = [_point(initial, start, t_first), *pieces.points[a:b]]
        if end > t_last:
            weighted += last_rate * (end - t_last)
            body.append(_point(last_rate, t_last, end))
        return tuple(body), frozen_record(
            WindowSums, start=start, end=end, weighted=weighted * HOUR, scale=RATE_UNIT
        )


def _bad_rate(rate: int, limits: Limits) -> bool:
    """A rate `history_from_rate_updates` refuses (beyond the market's bound or `limits`)."""
    return abs(rate) > MAX_FUNDING_RATE or abs(rate_per_hour_from_chain(rate)) > limits.max_abs_rate_per_hour


def _point(rate: int, since: int, until: int) -> FundingPoint:
    """The print `history_from_rate_updates` makes of `rate` in force over [since, until]."""
    return frozen_record(
        FundingPoint,
        time=utc_at(until),
        rate_per_hour=rate_per_hour_from_chain(rate),
        native_rate=Decimal(rate) / RATE_UNIT,
        interval_seconds=until - since,
        price=None,
    )


class _Pieces:
    """The prints between consecutive changes of one `changes` list, built as it grows:
    the piece from change k to change k + 1 (when it has a length) is `points[n]` with
    `starts[n] == k`; `weighted` holds the prefix sums of rate x seconds over the pieces,
    `bad` the prefix counts of changes `_bad_rate` refuses; `ordered` is False once a
    change came before the one ahead of it. A list that is replaced (not appended to)
    or other limits start a new `_Pieces`."""

    def __init__(self, changes: list[tuple[int, int]], limits: Limits) -> None:
        self.changes = changes
        self.limits = limits
        self.seen = 0
        self.ordered = True
        self.starts: list[int] = []
        self.points: list[FundingPoint] = []
        self.weighted = [0]
        self.bad = [0]

    def fits(self, changes: list[tuple[int, int]], limits: Limits) -> bool:
        same = limits is self.limits or limits == self.limits
        return changes is self.changes and same and len(changes) >= self.seen

    def extend(self) -> None:
        changes, limits = self.changes, self.limits
        for k in range(self.seen, len(changes)):
            t, rate = changes[k]
            self.bad.append(self.bad[-1] + _bad_rate(rate, limits))
            if k:
                t_prev, rate_prev = changes[k - 1]
                if t < t_prev:
                    self.ordered = False
                elif t > t_prev:
                    self.starts.append(k - 1)
                    self.points.append(_point(rate_prev, t_prev, t))
                    self.weighted.append(self.weighted[-1] + rate_prev * (t - t_prev))
        self.seen = len(changes)


def _timestamps(rpc: Rpc, blocks: list[int]) -> dict[int, int]:
    if not blocks:
        return {}
    headers = rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in blocks])
    times: dict[int, int] = {}
    for number, header in zip(blocks, headers, strict=True):
        if isinstance(header, RpcError) or not isinstance(header, dict):
            raise ChainReadError(f"block {number}: cannot read its header")
        times[number] = int(header["timestamp"], 16)
    return times
