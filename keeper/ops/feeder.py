"""The market feeder for the reference venue:
`ape run market price|asset-price|funding|premium|arb|replay|mirror`.

The reference venue has no market of its own: someone must push the oracle price, set the
perp funding rate and the perp's premium over the index (its mark, the basis to spot) and
trade the spot pool back to the oracle. These functions do that from
the account holding FEEDER_ROLE (both price feeds) and OPERATOR_ROLE (perp market). Every
price push first calls the perp market's permissionless `accrue_funding()`, so the funding
index charges each interval at the price that held during it (docs/venue.md, Funding).

The vault also reads the asset's own USD feed (its de-peg guard) and refuses entries and
exits when that answer is older than `max_asset_oracle_age` (25 h): `mirror` and `replay`
refresh it at 1 USD every ASSET_HEARTBEAT_SECONDS; `asset-price` sets any value (a de-peg
drill: 0.88).
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from keeper.core.errors import SourceError, UserError
from keeper.core.units import (
    FUNDING_INTERVALS,
    parse_decimal,
    premium_from_e18,
    premium_to_e18,
    price_from_e8,
    price_to_e8,
    rate_per_hour,
    rate_per_second_e18,
)
from keeper.data.records import FundingInfo
from keeper.ops.contracts import arb_to_oracle
from keeper.ops.deployment import Deployment

log = logging.getLogger(__name__)
BPS = 10_000
# `mirror` and `replay` re-push the asset feed's 1 USD when its answer is this old: well
# inside the vault's 25 h `max_asset_oracle_age`, like Chainlink's USDC / USD heartbeat.
ASSET_HEARTBEAT_SECONDS = 4 * 3_600
ASSET_PAR_USD = Decimal(1)


def _require_role(contract: Any, role_name: str, account: Any, what: str) -> None:
    role = getattr(contract, role_name)()
    if not contract.hasRole(role, account.address):
        raise UserError(
            f"{account.address} cannot {what}: it lacks {role_name} on {contract.address} "
            "(use the feeder account from the manifest, or have the venue admin grant the role)"
        )


def is_local(chain: Any) -> bool:
    """Whether time can be warped (a local anvil) rather than waited for."""
    return bool(chain.provider.network.name == "local")


def warp(chain: Any, seconds: int) -> None:
    """Moves a local chain's clock forward and mines a block there: through ape where the
    provider can (ape-foundry), else by raw anvil/hardhat RPC, since ape's `node` provider
    (a standalone anvil) offers no time travel."""
    from ape.exceptions import APINotImplementedError

    try:
        chain.mine(deltatime=seconds)
        return
    except APINotImplementedError:
        pass
    try:
        chain.provider.make_request("evm_increaseTime", [seconds])
        chain.provider.make_request("evm_mine", [])
    except Exception as err:
        raise UserError(
            f"this node cannot warp time ({err}); replay on anvil, or use --speed on a live network"
        ) from None


# ----------------------------------------------------------------------------- price / funding


@dataclass
class PricePush:
    old_e8: int
    new_e8: int

    @property
    def move_bps(self) -> Decimal:
        return Decimal((self.new_e8 - self.old_e8) * BPS) / self.old_e8 if self.old_e8 else Decimal(0)


def push_price(dep: Deployment, feeder: Any, price_usd: Decimal) -> PricePush:
    """Accrues funding at the old price, then starts a new oracle round at `price_usd`."""
    new_e8 = price_to_e8(price_usd)
    _require_role(dep.price_feed, "FEEDER_ROLE", feeder, "push prices")
    old_e8 = int(dep.price_feed.latestAnswer())
    dep.perp_market.accrue_funding(sender=feeder)
    dep.price_feed.set_price(new_e8, sender=feeder)
    return PricePush(old_e8=old_e8, new_e8=new_e8)


def push_asset_price(dep: Deployment, feeder: Any, price_usd: Decimal) -> PricePush:
    """Starts a new round of the asset's own USD feed (the vault's de-peg guard) at `price_usd`."""
    new_e8 = price_to_e8(price_usd)
    if new_e8 >= 2**127:  # PriceFeed keeps a round in one slot: an answer must fit int128
        raise UserError(f"asset price {price_usd} USD is out of the feed's range")
    _require_role(dep.asset_feed, "FEEDER_ROLE", feeder, "push asset prices")
    old_e8 = int(dep.asset_feed.latestAnswer())
    dep.asset_feed.set_price(new_e8, sender=feeder)
    return PricePush(old_e8=old_e8, new_e8=new_e8)


def asset_feed_age(dep: Deployment, chain: Any) -> int:
    """Seconds since the asset feed's last answer, as the next transaction sees it."""
    _, _, _, updated_at, _ = dep.asset_feed.latestRoundData()
    return int(chain.pending_timestamp) - int(updated_at)


def refresh_asset_feed(
    dep: Deployment, chain: Any, feeder: Any, heartbeat_seconds: int = ASSET_HEARTBEAT_SECONDS
) -> bool:
    """Pushes the asset feed's 1 USD when its last answer is `heartbeat_seconds` old or
    older (the reference venue's stablecoin is at par); True when it pushed."""
    if asset_feed_age(dep, chain) < heartbeat_seconds:
        return False
    push_asset_price(dep, feeder, ASSET_PAR_USD)
    return True


def _bounded(dep: Deployment, value: int, bound: str, refusal: Callable[[int], str]) -> int:
    """`value` when |value| is within the perp market's `bound` (a getter such as
    MAX_PREMIUM); else a UserError saying `refusal(bound)`, before anything is sent."""
    cap = int(getattr(dep.perp_market, bound)())
    if abs(value) > cap:
        raise UserError(refusal(cap))
    return value


def funding_rate_e18(dep: Deployment, rate: Decimal, interval: str) -> int:
    """A rate per `interval` ('1h' or '8h') as the market's per-second integer, bounded."""
    if interval not in FUNDING_INTERVALS:
        raise UserError(f"--per must be one of {', '.join(FUNDING_INTERVALS)}, got {interval}")
    per_second = rate_per_second_e18(rate, FUNDING_INTERVALS[interval])
    return _bounded(
        dep,
        per_second,
        "MAX_FUNDING_RATE",
        lambda cap: (
            f"funding {rate * 100:.6f} % per {interval} is {rate_per_hour(per_second) * 100:.4f} %/h, "
            f"beyond the market's cap of {rate_per_hour(cap) * 100:.2f} %/h"
        ),
    )


def _set_perp(dep: Deployment, operator: Any, name: str, new: int) -> tuple[int, int]:
    """`PerpMarket.set_<name>(new)` from `operator` (OPERATOR_ROLE checked first, `new`
    already bounded by the caller); returns (old, new)."""
    perp = dep.perp_market
    _require_role(perp, "OPERATOR_ROLE", operator, f"set the {name.replace('_', ' ')}")
    old = int(getattr(perp, name)())
    getattr(perp, f"set_{name}")(new, sender=operator)
    return old, new


def set_funding(dep: Deployment, operator: Any, rate: Decimal, interval: str = "1h") -> tuple[int, int]:
    """Sets the perp funding rate; returns (old, new) in the market's 1e18-per-second units."""
    return _set_perp(dep, operator, "funding_rate", funding_rate_e18(dep, rate, interval))


def premium_e18(dep: Deployment, premium: Decimal) -> int:
    """A decimal premium (0.002 = +0.2 %) as the market's 1e18 = 100 % integer, bounded."""
    return _bounded(
        dep,
        premium_to_e18(premium),
        "MAX_PREMIUM",
        lambda cap: (
            f"premium {(premium * 100).normalize():+f} % is beyond the market's bound of "
            f"+-{(premium_from_e18(cap) * 100).normalize():f} %"
        ),
    )


def set_premium(dep: Deployment, operator: Any, premium: Decimal) -> tuple[int, int]:
    """Sets the perp's premium over the index (mark = index x (1 + premium)); returns (old,
    new) in the market's 1e18 = 100 % units. The mark, and every position's PnL, equity and
    margin ratio with it, moves at once; funding does not (it stays what `funding` set).
    A CEX-style funding rate derived from the premium (premium + clamp(interest - premium,
    +-0.05 %) per 8 h) is the operator's to compute and set with `funding`."""
    return _set_perp(dep, operator, "premium", premium_e18(dep, premium))


def arb(dep: Deployment, account: Any) -> tuple[int, int]:
    """Trades the spot pool back to the oracle; returns the pool price (e8) before and after."""
    before = int(dep.spot_pool.price_e8())
    arb_to_oracle(dep.venue, account)
    return before, int(dep.spot_pool.price_e8())


# ----------------------------------------------------------------------------- replay

_TIME_COLUMNS = ("timestamp", "timestamp_utc", "time", "date", "snapped_at", "open_time")
_PRICE_COLUMNS = ("price", "price_usd", "close")
_FUNDING_COLUMNS = ("funding_rate", "funding rate", "rate")


@dataclass(frozen=True)
class ReplayRow:
    timestamp: int  # unix seconds, UTC
    price_usd: Decimal
    funding_rate: Decimal | None  # per the replay's --per interval


def parse_timestamp(text: str) -> int:
    """Unix seconds from epoch seconds/milliseconds or an ISO-8601 date/time (UTC if no zone)."""
    raw = text.strip()
    if raw.replace(".", "", 1).isdigit():
        value = Decimal(raw)
        return int(value / 1000) if value > 10**11 else int(value)
    raw = raw.removesuffix(" UTC").replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"'{text}' is not a timestamp (epoch seconds/ms or ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _pick(
    header: Sequence[str], choices: Sequence[str], given: str | None, what: str, path: Path
) -> int | None:
    lowered = [h.strip().lower() for h in header]
    if given is not None:
        if given.lower() not in lowered:
            raise UserError(f"{path}: no column '{given}' for the {what} (columns: {', '.join(header)})")
        return lowered.index(given.lower())
    for name in choices:
        if name in lowered:
            return lowered.index(name)
    return None


def load_replay(
    path: Path,
    *,
    price_column: str | None = None,
    funding_column: str | None = None,
    limit: int | None = None,
) -> list[ReplayRow]:
    """Rows of a price history CSV (header required). Recognised columns: a time
    (timestamp/timestamp_utc/time/date/snapped_at/open_time), a price (price/price_usd/close)
    and optionally a funding rate (funding_rate/funding rate/rate)."""
    if not path.is_file():
        raise UserError(f"no replay file at {path}")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise UserError(f"{path} is empty")
        t_col = _pick(header, _TIME_COLUMNS, None, "time", path)
        p_col = _pick(header, _PRICE_COLUMNS, price_column, "price", path)
        f_col = _pick(header, _FUNDING_COLUMNS, funding_column, "funding rate", path)
        if t_col is None or p_col is None:
            raise UserError(
                f"{path}: needs a time column ({'/'.join(_TIME_COLUMNS)}) and a price column "
                f"({'/'.join(_PRICE_COLUMNS)}); it has {', '.join(header)}"
            )
        rows: list[ReplayRow] = []
        for number, record in enumerate(reader, start=2):
            if not record or all(not cell.strip() for cell in record):
                continue
            try:
                ts = parse_timestamp(record[t_col])
                price = parse_decimal(record[p_col], "price")
                rate = None
                if f_col is not None and f_col < len(record) and record[f_col].strip():
                    rate = parse_decimal(record[f_col], "funding rate")
            except (ValueError, IndexError, UserError) as err:
                raise UserError(f"{path} line {number}: {err}") from None
            if price <= 0:
                raise UserError(f"{path} line {number}: price must be positive, got {price}")
            if rows and ts <= rows[-1].timestamp:
                raise UserError(
                    f"{path} line {number}: time {record[t_col]} does not follow the previous row"
                )
            rows.append(ReplayRow(ts, price, rate))
            if limit is not None and len(rows) >= limit:
                break
    if not rows:
        raise UserError(f"{path} has no rows")
    return rows


@dataclass
class ReplayStep:
    timestamp: int
    price_e8: int
    funding_e18: int | None
    waited_seconds: int
    asset_pushed: bool = False  # the asset feed's 1 USD was re-pushed (its heartbeat)


def replay(
    dep: Deployment,
    chain: Any,
    feeder: Any,
    rows: Sequence[ReplayRow],
    *,
    interval: str = "1h",
    do_arb: bool = True,
    speed: Decimal = Decimal(1),
    sleep: Callable[[float], None] = time.sleep,
    on_step: Callable[[ReplayStep], None] | None = None,
    asset_heartbeat_seconds: int = ASSET_HEARTBEAT_SECONDS,
) -> list[ReplayStep]:
    """Pushes each row's price (and funding) in order. On a local chain the chain's clock
    is warped by each row's gap; elsewhere the call waits gap / `speed` seconds. The asset
    feed is re-pushed at 1 USD whenever its answer is `asset_heartbeat_seconds` old."""
    _require_role(dep.price_feed, "FEEDER_ROLE", feeder, "push prices")
    _require_role(dep.asset_feed, "FEEDER_ROLE", feeder, "push asset prices")
    rates = [
        None if r.funding_rate is None else funding_rate_e18(dep, r.funding_rate, interval) for r in rows
    ]
    if any(rate is not None for rate in rates):
        _require_role(dep.perp_market, "OPERATOR_ROLE", feeder, "set the funding rate")
    local = is_local(chain)
    oracle_e8 = int(dep.price_feed.latestAnswer())
    first_e8 = price_to_e8(rows[0].price_usd)
    if do_arb and abs(first_e8 - oracle_e8) * 5 > oracle_e8:
        log.warning(
            "the replay starts at %s, more than 20 %% from the oracle's %s: the first arbitrage moves the "
            "pool that far with many faucet calls (deploy with venue.deploy.price_usd near the history's "
            "start, or replay with --no-arb)",
            describe_price(first_e8),
            describe_price(oracle_e8),
        )
    steps: list[ReplayStep] = []
    for i, (row, rate) in enumerate(zip(rows, rates, strict=True)):
        gap = row.timestamp - rows[i - 1].timestamp if i else 0
        if gap:
            if local:
                warp(chain, gap)
            else:
                sleep(float(gap / speed))
        push_price(dep, feeder, row.price_usd)
        asset_pushed = refresh_asset_feed(dep, chain, feeder, asset_heartbeat_seconds)
        if rate is not None and rate != int(dep.perp_market.funding_rate()):
            dep.perp_market.set_funding_rate(rate, sender=feeder)
        if do_arb:
            arb_to_oracle(dep.venue, feeder)
        step = ReplayStep(row.timestamp, price_to_e8(row.price_usd), rate, gap, asset_pushed)
        steps.append(step)
        if on_step is not None:
            on_step(step)
    return steps


def warmup(
    dep: Deployment,
    chain: Any,
    feeder: Any,
    hours: int,
    *,
    step_seconds: int = 7_200,
    on_step: Callable[[ReplayStep], None] | None = None,
) -> list[ReplayStep]:
    """A fresh local chain has no funding history, and the keeper acts on funding only once
    the market's history covers `min_coverage` of its window (hours of chain time). This
    warps the clock `hours` ahead at the current funding rate and oracle price, pushing the
    price every `step_seconds` (the oracle stays fresh, funding accrues) and arbitraging."""
    if not is_local(chain):
        raise UserError(
            "warmup warps the chain's clock: local chains only (a testnet's history builds in time)"
        )
    if hours <= 0:
        raise UserError(f"--hours must be positive, got {hours}")
    start = int(chain.pending_timestamp)
    price = price_from_e8(int(dep.price_feed.latestAnswer()))
    steps = range(0, hours * 3_600 + 1, step_seconds)
    rows = [ReplayRow(start + t, price, None) for t in steps]
    return replay(dep, chain, feeder, rows, on_step=on_step)


# ----------------------------------------------------------------------------- mirror


@dataclass
class MirrorPoll:
    price_usd: Decimal
    funding_rate_per_hour: Decimal
    pushed_price: bool
    set_funding: bool
    error: str | None = None
    pushed_asset: bool = False  # the asset feed's 1 USD was re-pushed (its heartbeat)


Reading = Callable[[], FundingInfo]


def hyperliquid_reading(coin: str, url: str | None = None) -> Reading:
    """Hyperliquid's live `metaAndAssetCtxs` for `coin` (keeper.data: strict parsing,
    retries with backoff, stale and absurd readings refused)."""
    from keeper.data.hyperliquid import HyperliquidSource

    source = HyperliquidSource(url=url)
    return lambda: source.funding_info(coin)


def recorded_reading(path: Path, coin: str) -> Reading:
    """Every poll answered with a recorded `metaAndAssetCtxs` body, stamped now (offline
    runs, tests)."""
    from keeper.data.hyperliquid import parse_meta_and_asset_ctxs

    def read() -> FundingInfo:
        try:
            body = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SourceError("recorded", f"cannot read {path}: {err}") from None
        return parse_meta_and_asset_ctxs(body, coin, datetime.now(UTC))

    return read


def mirror(
    dep: Deployment,
    chain: Any,
    feeder: Any,
    read: Reading,
    *,
    polls: int | None = None,
    interval_seconds: float = 60.0,
    deviation_bps: int = 10,
    heartbeat_seconds: int = 3_600,
    do_arb: bool = True,
    max_failures: int = 5,
    sleep: Callable[[float], None] = time.sleep,
    on_poll: Callable[[MirrorPoll], None] | None = None,
    asset_heartbeat_seconds: int = ASSET_HEARTBEAT_SECONDS,
) -> list[MirrorPoll]:
    """Polls a live venue (`read`: its current FundingInfo) and mirrors its oracle price and
    hourly funding onto the market.

    Like a Chainlink feed, a price is pushed when it moved `deviation_bps` or more, or when
    the last push is `heartbeat_seconds` old; the funding rate whenever it changed. A poll
    that fails (unreachable, malformed, stale, absurd, no oracle price) is logged and retried
    at the next one; `max_failures` in a row stop it. A failure no retry can fix (the host
    name does not resolve) before any poll succeeded stops it at once. The asset feed is
    re-pushed at 1 USD whenever its answer is `asset_heartbeat_seconds` old, failed polls or
    not (it does not depend on the venue read)."""
    _require_role(dep.price_feed, "FEEDER_ROLE", feeder, "push prices")
    _require_role(dep.asset_feed, "FEEDER_ROLE", feeder, "push asset prices")
    _require_role(dep.perp_market, "OPERATOR_ROLE", feeder, "set the funding rate")
    results: list[MirrorPoll] = []
    failures = 0
    count = 0
    last_error = ""
    while polls is None or count < polls:
        if count:
            sleep(interval_seconds)
        count += 1
        asset_pushed = refresh_asset_feed(dep, chain, feeder, asset_heartbeat_seconds)
        try:
            info = read()
            if info.index_price is None:
                raise SourceError(info.venue, f"{info.market}: no oracle price in the answer")
        except SourceError as err:
            failures += 1
            last_error = str(err)
            if err.permanent and not any(p.error is None for p in results):
                raise UserError(f"mirror: {err}; check the network and HYPERLIQUID_INFO_URL") from None
            log.warning("mirror poll %d failed (%d in a row): %s", count, failures, err)
            if failures >= max_failures:
                raise UserError(f"mirror stopped after {failures} failed polls in a row: {err}") from None
            results.append(MirrorPoll(Decimal(0), Decimal(0), False, False, str(err), asset_pushed))
            continue
        failures = 0
        price_usd = info.index_price
        new_e8 = price_to_e8(price_usd)
        _, old_e8, _, updated_at, _ = dep.price_feed.latestRoundData()
        age = int(chain.pending_timestamp) - int(updated_at)
        moved = abs(new_e8 - int(old_e8)) * BPS >= deviation_bps * int(old_e8)
        pushed = moved or age >= heartbeat_seconds
        if pushed:
            push_price(dep, feeder, price_usd)
        rate = funding_rate_e18(dep, info.rate_per_hour, "1h")
        changed = rate != int(dep.perp_market.funding_rate())
        if changed:
            dep.perp_market.set_funding_rate(rate, sender=feeder)
        if pushed and do_arb:
            arb_to_oracle(dep.venue, feeder)
        poll = MirrorPoll(price_usd, info.rate_per_hour, pushed, changed, pushed_asset=asset_pushed)
        results.append(poll)
        if on_poll is not None:
            on_poll(poll)
    if results and all(p.error for p in results):
        raise UserError(f"mirror: no poll succeeded ({last_error})")
    return results


def describe_price(e8: int) -> str:
    return f"{price_from_e8(e8):,.2f} USD"


def describe_asset_price(e8: int) -> str:
    return f"{price_from_e8(e8):.4f} USD"


def describe_premium(premium_e18_: int) -> str:
    fraction = premium_from_e18(premium_e18_)
    return f"{fraction * 100:+.4f} % ({fraction * BPS:+.1f} bps)"


def describe_rate(per_second_e18: int) -> str:
    per_hour = rate_per_hour(per_second_e18)
    return (
        f"{per_hour * 100:.6f} %/h ({per_hour * 8 * 100:.5f} % per 8h, {per_hour * 24 * 365 * 100:.2f} % APR)"
    )
