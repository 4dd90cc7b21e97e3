"""What a replay runs on: a funding history (and its price series) cut to a window, as
market steps with the notes the report carries, and the venue's bounds. Shared by
`basis-keeper replay` (one window) and the sweep (many cells, loaded once per worker)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keeper.core.errors import UserError
from keeper.core.rules import VenueParams
from keeper.data.files import (
    FundingPrint,
    HistoryError,
    PricePoint,
    SeriesReport,
    _parse_time,
    load_funding,
    load_prices,
)
from keeper.data.premium import PremiumSeries, load_premium, modelled_premium
from keeper.replay.driver import (
    Gap,
    GapError,
    MarketStep,
    ReplayConfig,
    check_gaps,
    end_price,
    find_gaps,
    history_steps,
    with_premium,
)

# The venue's bounds (SpotPool.MAX_FEE_BPS, PerpMarket.MAX_TAKER_FEE_PPM).
MAX_SPOT_FEE_BPS = 100
MAX_TAKER_FEE_PPM = 10_000


def _moment(text: str | None, flag: str) -> int | None:
    """`text` as UTC unix seconds (None stays None); a bad date is a `UserError` naming `flag`."""
    if text is None:
        return None
    try:
        return _parse_time(text, flag)
    except HistoryError as err:
        raise UserError(str(err)) from None


@dataclass
class Inputs:
    steps: list[MarketStep]
    end_price_e8: int | None
    reports: list[SeriesReport]
    notes: list[str]
    scenario: str | None = None
    label: str = ""
    gaps: list[Gap] = field(default_factory=list)
    premium: str | None = None  # where the steps' premium came from (None: none)


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _span(prints: list[FundingPrint]) -> str:
    if not prints:
        return "no prints"
    return f"{_day(prints[0].time - prints[0].interval)} to {_day(prints[-1].time)} UTC"


def history_inputs(
    prints: list[FundingPrint],
    prices: list[PricePoint] | None,
    config: ReplayConfig,
    reports: list[SeriesReport],
    start: int | None,
    end: int | None,
    notes: list[str] | None = None,
    *,
    allow_gaps: bool = False,
    premium: PremiumSeries | None = None,
) -> Inputs:
    """The window's steps, with the perp's premium where one is given; a gap of more than
    `GAP_LIMIT_INTERVALS` intervals in it stops here (one line naming it) unless
    `allow_gaps`."""
    if start is not None and end is not None and start >= end:
        raise UserError(
            f"--from {_day(start)} is not before --to {_day(end)}: swapped? the file covers {_span(prints)}"
        )
    everything = prints
    prints = [
        p
        for p in prints
        if (start is None or p.time - p.interval >= start) and (end is None or p.time <= end)
    ]
    if not prints:
        raise UserError(f"no funding prints between --from and --to: the file covers {_span(everything)}")
    gaps = find_gaps(prints)
    if not allow_gaps:
        label = Path(reports[0].path).name if reports else "the funding history"
        try:
            check_gaps(gaps, label)
        except GapError as err:
            raise UserError(str(err)) from None
    notes = list(notes or [])
    if prices is None:
        notes.append(f"no price series: the oracle is held at {config.constant_price:g}")
    elif prices[0].time > prints[0].time or prices[-1].time < prints[-1].time - prints[-1].interval:
        notes.append("the price series does not cover the whole window: the nearest price is held")
    if gaps:
        longest = max(gaps, key=lambda g: g.end - g.start)
        notes.append(
            f"{len(gaps)} gap(s) in the funding prints replayed through at the last rate, the longest "
            f"{longest.hours:g} h from {_day(longest.start)} UTC (listed in the JSON: gaps)"
        )
    steps = history_steps(prints, prices, config.constant_price)
    if premium is not None:
        steps = with_premium(steps, premium.at)
        if not premium.covers(steps[0].time, prints[-1].time - prints[-1].interval):
            notes.append(
                f"the premium ({premium.source}) does not cover the whole window: the nearest is held"
            )
    return Inputs(
        steps,
        end_price(prints, prices, config),
        reports,
        notes,
        gaps=gaps,
        premium=premium.source if premium else None,
    )


def load_inputs(
    funding_path: str,
    prices_path: str | None,
    config: ReplayConfig,
    start: int | None,
    end: int | None,
    utc_shift_hours: int | None = None,
    *,
    allow_gaps: bool = False,
    premium: str | None = None,
) -> Inputs:
    """The files' steps; `premium`: None or "none" (the perp marks at its index), "model"
    (`modelled_premium` of the prints) or a file of measured premium (`load_premium`)."""
    prints, prices, reports = load_series(funding_path, prices_path, utc_shift_hours)
    series = premium_series(premium, prints, prices)
    return history_inputs(prints, prices, config, reports, start, end, allow_gaps=allow_gaps, premium=series)


def premium_series(
    premium: str | None, prints: list[FundingPrint], prices: list[PricePoint] | None
) -> PremiumSeries | None:
    """`premium` ("none"/None, "model" or a file) as a series; a bad file is a `UserError`."""
    if premium in (None, "none"):
        return None
    if premium == "model":
        return modelled_premium(prints)
    try:
        return load_premium(premium, prices)
    except HistoryError as err:
        raise UserError(f"--premium: {err} (model, none, or a file of measured premium)") from None


def load_series(
    funding_path: str, prices_path: str | None, utc_shift_hours: int | None = None
) -> tuple[list[FundingPrint], list[PricePoint] | None, list[SeriesReport]]:
    """A funding file and its price series (None: none), with the loaders' reports; an
    unreadable file is a `UserError` naming it."""
    try:
        prints, funding_report = load_funding(funding_path, utc_shift_hours=utc_shift_hours)
        reports = [funding_report]
        prices = None
        if prices_path:
            prices, price_report = load_prices(prices_path)
            reports.append(price_report)
    except HistoryError as err:
        raise UserError(str(err)) from None
    return prints, prices, reports


def read_yaml(path: str, where: str, expected: str) -> dict[str, Any]:
    """A YAML file holding a mapping; anything else is a `UserError` starting with `where`."""
    import yaml  # type: ignore[import-untyped]

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise UserError(f"{where}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise UserError(f"{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:
        raise UserError(f"{where}: the file is empty: expected {expected}")
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected {expected}")
    return data


def check_venue(params: VenueParams, source: Mapping[str, str]) -> None:
    """The venue's bounds on the fields a replay may change (`source`: where each field
    was set, for the message); a `UserError` naming the first one outside them."""
    for name, low, high, what in (
        ("spot_fee_bps", 0, MAX_SPOT_FEE_BPS, "the spot pool's fee, bps"),
        ("taker_fee_ppm", 0, MAX_TAKER_FEE_PPM, "the perp's taker fee, ppm"),
        ("depth_asset", 1, None, "the perp's depth, whole asset units"),
    ):
        got: Any = getattr(params, name)
        if got < low or (high is not None and got > high):
            bound = f"{low}..{high}" if high is not None else f"at least {low}"
            raise UserError(f"{source.get(name, name)}: {got} outside {bound} ({what})")
