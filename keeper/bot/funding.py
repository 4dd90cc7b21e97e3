"""Expected funding: each venue's rate smoothed over a window, then combined across venues.

Per venue, the smoothed rate is a time-weighted mean over the window: every settled
print weighs the seconds of its interval that fall inside the window (an 8-hour print
counts eight times an hourly one, and a history that switched from 8-hourly to hourly
is weighed fairly), and the venue's live predicted rate weighs one native interval (it
is the best guess of the next settlement). A venue whose prints cover less than
`min_coverage` of the window, or whose reading is older than `max_age`, is not used.

Across venues: the vault earns the *reference* venue's funding (the market it is
hedged on), so that venue leads, and the others act as confirmation: the expected rate is
the lower of the reference's smoothed rate and the median of all usable venues (the
reference included). One venue's rate far above the others tends to converge back to the
pack (that is what arbitrageurs do), so a reference outlier alone never triggers an
entry; a low reference rate is what the vault actually earns, so it always counts. Without
a usable reference the expectation is unknown and the strategy takes no funding-driven
action (risk actions still run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import median

from keeper.data.records import FundingView, WindowSums, frozen_record


@dataclass(frozen=True)
class VenueEstimate:
    venue: str
    current_rate_per_hour: Decimal
    smoothed_rate_per_hour: Decimal | None  # None when the venue is not usable
    coverage: Decimal  # fraction of the window its prints cover, 0..1
    note: str  # why it is not usable, or ""

    @property
    def usable(self) -> bool:
        return self.smoothed_rate_per_hour is not None


@dataclass(frozen=True)
class FundingEstimate:
    expected_rate_per_hour: Decimal | None  # None: unknown
    reference: VenueEstimate | None
    consensus_rate_per_hour: Decimal | None  # median of usable venues
    venues: tuple[VenueEstimate, ...]
    note: str

    @property
    def optimistic_rate_per_hour(self) -> Decimal | None:
        """The higher of the reference's smoothed rate and the pack's median, None when
        unknown: what the vault can expect once an outlying reference rejoins the pack.
        Parking reads this side: a reference far below the others is a cold spell that
        arbitrage closes, no reason to start a round trip, as one far above them is no
        reason to enter (`expected_rate_per_hour`, the lower side, is what entries read)."""
        if self.expected_rate_per_hour is None or self.reference is None:
            return None
        smoothed = self.reference.smoothed_rate_per_hour
        if smoothed is None or self.consensus_rate_per_hour is None:
            return None
        return max(smoothed, self.consensus_rate_per_hour)

    @property
    def spread_per_hour(self) -> Decimal | None:
        """Reference minus consensus: how far the venue the vault earns on sits from the pack."""
        if self.reference is None or self.reference.smoothed_rate_per_hour is None:
            return None
        if self.consensus_rate_per_hour is None:
            return None
        return self.reference.smoothed_rate_per_hour - self.consensus_rate_per_hour


def _exact_totals(view: FundingView, now_s: int, window_s: int) -> WindowSums | None:
    """The view's exact totals of the prints the window sees, when it carries them: its
    whole history's (`sums`) when that lies wholly inside the window and ends now, else
    a trailing part's (`trailing`) that starts exactly where the window does."""
    sums = view.sums
    if sums is None or sums.end != now_s or sums.start >= sums.end:
        return None
    if sums.start >= now_s - window_s:
        return sums
    for part in view.trailing:
        if part.end == now_s and part.start == now_s - window_s:
            return part
    return None


def _smooth_from_sums(view: FundingView, now: datetime, window: timedelta) -> tuple[Decimal, Decimal] | None:
    """`smooth` from the view's exact totals, when they describe the prints the window
    sees and end now (then the loop in `smooth` adds up to exactly these totals, a print
    clipped at the window's start included; the same divisions follow, so the result is
    equal); None otherwise."""
    if view.sums is None or now.microsecond or window.microseconds:
        return None
    now_s, window_s = int(now.timestamp()), int(window.total_seconds())
    sums = _exact_totals(view, now_s, window_s)
    if sums is None:
        return None
    live = min(view.info.interval_seconds, window_s)
    weighted = Decimal(sums.weighted) / sums.scale + view.info.rate_per_hour * live
    covered = Decimal(sums.end - sums.start)
    return weighted / (covered + live), min(covered / Decimal(window_s), Decimal(1))


def smooth(view: FundingView, now: datetime, window: timedelta) -> tuple[Decimal, Decimal]:
    """(time-weighted mean rate per hour, fraction of the window covered by prints)."""
    quick = _smooth_from_sums(view, now, window)
    if quick is not None:
        return quick
    start = now - window
    window_s = Decimal(window.total_seconds())
    weighted = Decimal(0)
    weight = Decimal(0)
    covered = Decimal(0)
    for point in view.history:
        begin = max(point.time - timedelta(seconds=point.interval_seconds), start)
        end = min(point.time, now)
        if end <= begin:
            continue
        seconds = Decimal((end - begin).total_seconds())
        weighted += point.rate_per_hour * seconds
        weight += seconds
        covered += seconds
    live = Decimal(min(view.info.interval_seconds, int(window.total_seconds())))
    weighted += view.info.rate_per_hour * live
    weight += live
    return weighted / weight, min(covered / window_s, Decimal(1))


def estimate_venue(
    view: FundingView, now: datetime, window: timedelta, min_coverage: Decimal, max_age: timedelta
) -> VenueEstimate:
    info = view.info
    age = now - info.observed_at
    if age > max_age:
        return VenueEstimate(info.venue, info.rate_per_hour, None, Decimal(0), f"reading {age} old")
    mean, coverage = smooth(view, now, window)
    if coverage < min_coverage:
        note = f"prints cover {coverage:.0%} of the window, need {min_coverage:.0%}"
        return VenueEstimate(info.venue, info.rate_per_hour, None, coverage, note)
    return frozen_record(
        VenueEstimate,
        venue=info.venue,
        current_rate_per_hour=info.rate_per_hour,
        smoothed_rate_per_hour=mean,
        coverage=coverage,
        note="",
    )


def estimate(
    views: Sequence[FundingView],
    reference_venue: str,
    now: datetime,
    window: timedelta,
    min_coverage: Decimal,
    max_age: timedelta,
) -> FundingEstimate:
    """The expected funding rate per hour for the vault (see the module docstring)."""
    reference: VenueEstimate | None
    if len(views) == 1:  # the common case, the reference alone: the median of one, or none
        only = estimate_venue(views[0], now, window, min_coverage, max_age)
        venues: tuple[VenueEstimate, ...] = (only,)
        consensus: Decimal | None = only.smoothed_rate_per_hour
        reference = only if only.venue == reference_venue else None
    else:
        venues = tuple(estimate_venue(v, now, window, min_coverage, max_age) for v in views)
        usable = [v.smoothed_rate_per_hour for v in venues if v.smoothed_rate_per_hour is not None]
        consensus = usable[0] if len(usable) == 1 else Decimal(median(usable)) if usable else None
        reference = next((v for v in venues if v.venue == reference_venue), None)
    if reference is None:
        return FundingEstimate(
            None, None, consensus, venues, f"no view of the reference venue {reference_venue!r}"
        )
    if reference.smoothed_rate_per_hour is None or consensus is None:
        return FundingEstimate(
            None, reference, consensus, venues, f"reference venue unusable: {reference.note}"
        )
    expected = min(reference.smoothed_rate_per_hour, consensus)
    return frozen_record(
        FundingEstimate,
        expected_rate_per_hour=expected,
        reference=reference,
        consensus_rate_per_hour=consensus,
        venues=venues,
        note="",
    )
