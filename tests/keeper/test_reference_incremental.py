"""`ReferenceHistory.view` builds the reference market's prints incrementally and hands
`smooth` their exact totals; both must give what building from scratch gives
(`history_from_rate_updates`, `smooth` walking the prints): the same prints, the same
expected funding, the same errors. Random histories: rate changes appended as ticks
pass (some at the same second, some beyond the limits, some out of order), pruned as the
replay prunes them, read with random windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from keeper.bot.funding import smooth
from keeper.bot.reference import PRUNE_BATCH, ReferenceHistory
from keeper.core.errors import SourceError
from keeper.core.fixed import MAX_FUNDING_RATE
from keeper.data.onchain import history_from_rate_updates, onchain_funding_info
from keeper.data.records import FundingView, Limits
from tests.keeper.generators import PROPERTY

START = 1_700_000_000
PRICE = 3_000 * 10**8
RATE = st.one_of(
    st.integers(-20_000_000_000, 20_000_000_000),  # ordinary: up to ~7e-3 %/h
    st.sampled_from([0, MAX_FUNDING_RATE, -MAX_FUNDING_RATE, 3_000_000_000_000]),  # 1.08 %/h: beyond Limits()
)
STEP = st.tuples(
    st.sampled_from([0, 1, 60, 3_600, 3_600, 3_600, 8 * 3_600, 30_000]),  # seconds to the next tick
    st.booleans(),  # the rate changes at this tick
    RATE,
    st.sampled_from(["append", "append", "append", "same-second", "earlier", "prune", "none"]),
    st.sampled_from([1, 3_600, 7_200, 24 * 3_600, 72 * 3_600]),  # the view's window
)


def _from_scratch(ref: ReferenceHistory, ts: int, rate: int, window: int, limits: Limits):
    """`ReferenceHistory.view` as it was before it kept pieces: the oracle."""
    ref.observe(ts, rate)
    info = onchain_funding_info(
        funding_rate=rate, index_price_e8=PRICE, mark_price_e8=PRICE, block_timestamp=ts, limits=limits
    )
    start = max(ref.start, ts - window)
    if ts <= start:
        return FundingView(info)
    updates = [(t, r) for t, r in ref.changes if start < t <= ts]
    return FundingView(info, history_from_rate_updates(ref.rate_at(start), start, updates, ts, limits=limits))


def _outcome(read, *args, **kwargs):
    try:
        return read(*args, **kwargs)
    except SourceError as err:
        return f"SourceError: {err}"


@PROPERTY
@given(steps=st.lists(STEP, min_size=1, max_size=80), initial=RATE, live=RATE)
def test_view__incremental_equals_from_scratch(steps, initial, live) -> None:
    limits = Limits()
    ref = ReferenceHistory(START, initial if abs(initial) <= MAX_FUNDING_RATE else 0)
    now, rate = START, ref.initial_rate
    for seconds, changes, new_rate, how, window in steps:
        now += seconds
        if changes and how == "append":
            ref.changes.append((now, new_rate))
            rate = new_rate
        elif changes and how == "same-second":
            ref.changes.append((ref.changes[-1][0] if ref.changes else now, new_rate))
            rate = new_rate
        elif changes and how == "earlier" and ref.changes:
            ref.changes.append((ref.changes[-1][0] - 1, new_rate))  # a node that lied
        elif how == "prune" and len(ref.changes) > 2:  # as the model replay keeps it short
            keep_from = ref.changes[1][0]
            ref.initial_rate = ref.rate_at(keep_from)
            ref.start = max(ref.start, keep_from)
            ref.changes = [(t, r) for t, r in ref.changes if t > keep_from]
        live_rate = rate if abs(rate) <= MAX_FUNDING_RATE else live
        live_rate = live_rate if abs(live_rate) <= MAX_FUNDING_RATE else 0
        # with the trailing totals of shorter windows, as the strategy asks for them
        spans = tuple({1, 3_600, window // 3 + 1, max(window // 2, 1), window, 2 * window})
        view = _outcome(
            ref.view,
            block_timestamp=now,
            funding_rate=live_rate,
            index_price_e8=PRICE,
            window=window,
            limits=limits,
            trailing=spans,
        )
        expected = _outcome(_from_scratch, ref, now, live_rate, window, limits)
        assert view == expected
        if isinstance(view, str):
            continue
        at = datetime.fromtimestamp(now, tz=UTC)
        plain = FundingView(view.info, view.history)  # no totals: smooth walks the prints
        for span in {window, 3_600, 3 * window, 30 * 86_400, *spans}:
            assert smooth(view, at, timedelta(seconds=span)) == smooth(plain, at, timedelta(seconds=span))
        for part in view.trailing:  # each an exact total of the prints it covers
            assert part.end == now and part.start > now - window
            clipped = sum(
                p.rate_per_hour * Decimal(min(int(p.time.timestamp()), now) - max(start, part.start))
                for p in view.history
                if (start := int(p.time.timestamp()) - p.interval_seconds) < part.end
                and int(p.time.timestamp()) > part.start
            )
            assert Decimal(part.weighted) / part.scale == clipped


def test_view__totals_are_exact_sums() -> None:
    ref = ReferenceHistory(START, 5_555_555_555)
    for k in range(1, 200):
        ref.changes.append((START + k * 3_600, (-1) ** k * k * 123_456_789))
    now = START + 200 * 3_600 + 17
    view = ref.view(
        block_timestamp=now, funding_rate=1, index_price_e8=10**8, window=72 * 3_600, limits=Limits()
    )
    assert view.sums is not None
    assert view.sums.start == now - 72 * 3_600 and view.sums.end == now
    exact = sum(p.rate_per_hour * p.interval_seconds for p in view.history)
    assert Decimal(view.sums.weighted) / view.sums.scale == exact
    assert sum(p.interval_seconds for p in view.history) == view.sums.end - view.sums.start


def test_prune__views_within_the_kept_span_unchanged_and_memory_bounded() -> None:
    """`prune` (the keeper after a sync, the model replay per step) forgets what no window
    can see: views over the kept span are the same as before, and the list stays short."""
    full, pruned = ReferenceHistory(START, 7), ReferenceHistory(START, 7)
    window, keep = 24 * 3_600, 48 * 3_600
    for k in range(1, 3_000):  # pruned twice
        now = START + k * 3_600
        change = (now, (k * 7_919) % 40_000_000_000 - 20_000_000_000)
        full.changes.append(change)
        pruned.changes.append(change)
        pruned.prune(now, keep)
        if k % 97 == 0:
            kwargs = dict(
                block_timestamp=now + 5, funding_rate=change[1], index_price_e8=PRICE, limits=Limits()
            )
            assert pruned.view(window=window, **kwargs) == full.view(window=window, **kwargs)
            trailing = pruned.view(window=keep, trailing=(window,), **kwargs).trailing
            assert trailing == full.view(window=keep, trailing=(window,), **kwargs).trailing
            assert pruned.rate_at(now - window) == full.rate_at(now - window)
    assert len(pruned.changes) <= PRUNE_BATCH + keep // 3_600
    assert len(full.changes) == 2_999
