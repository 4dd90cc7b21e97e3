"""Hyperliquid's info API, read strictly: the current oracle price and funding of one coin.

`POST https://api.hyperliquid.xyz/info {"type": "metaAndAssetCtxs"}` answers
`[meta, ctxs]`: `meta.universe[i]` names coin i and `ctxs[i]` is its market context, every
number a decimal string (`oraclePx`, `markPx`, `funding` = the current hourly rate,
positive = longs pay shorts). A response that does not have exactly that shape is refused
rather than guessed at: a misaligned universe would mirror another coin's price.

The HTTP call is a plain function argument (`Fetch`), so tests feed recorded bodies.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keeper.errors import UserError

INFO_URL = "https://api.hyperliquid.xyz/info"
# Hyperliquid caps funding at 4 %/hour, as the reference perp market does.
MAX_RATE_PER_HOUR = Decimal("0.04")

Fetch = Callable[[dict[str, Any]], Any]


class HyperliquidError(UserError):
    """The API answered something we will not mirror, or could not be reached."""


def _decimal_string(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise ValueError(f"expected a decimal string, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"'{value}' is not a decimal") from None
    if not number.is_finite():
        raise ValueError(f"'{value}' is not finite")
    return number


class Asset(BaseModel):
    """One `meta.universe` entry (other keys, e.g. maxLeverage, are allowed and ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str = Field(min_length=1)
    szDecimals: int = Field(ge=0)
    isDelisted: bool = False


class Meta(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    universe: list[Asset] = Field(min_length=1)


class AssetCtx(BaseModel):
    """One market context. Prices may be null on an inactive market; funding may not."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    funding: Decimal
    oraclePx: Decimal | None
    markPx: Decimal | None
    openInterest: Decimal | None = None
    premium: Decimal | None = None

    @field_validator("funding", mode="before")
    @classmethod
    def _required_decimal(cls, value: Any) -> Decimal:
        return _decimal_string(value)

    @field_validator("oraclePx", "markPx", "openInterest", "premium", mode="before")
    @classmethod
    def _optional_decimal(cls, value: Any) -> Decimal | None:
        return None if value is None else _decimal_string(value)


@dataclass(frozen=True)
class MarketSnapshot:
    """What the mirror pushes: the coin's oracle price (USD) and hourly funding rate."""

    coin: str
    oracle_price_usd: Decimal
    mark_price_usd: Decimal
    funding_rate_per_hour: Decimal


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first["loc"])
    return f"{loc}: {str(first['msg']).removeprefix('Value error, ')}"


def parse_meta(body: Any) -> Meta:
    try:
        return Meta.model_validate(body)
    except ValidationError as err:
        raise HyperliquidError(f"hyperliquid meta: {_first_error(err)}") from None


def parse_asset_ctx(body: Any, where: str = "ctx") -> AssetCtx:
    try:
        return AssetCtx.model_validate(body)
    except ValidationError as err:
        raise HyperliquidError(f"hyperliquid {where}: {_first_error(err)}") from None


def snapshot_from(meta: Meta, ctxs: list[Any], coin: str) -> MarketSnapshot:
    """The coin's snapshot from a universe and the contexts aligned with it."""
    names = [a.name for a in meta.universe]
    if len(ctxs) != len(names):
        raise HyperliquidError(
            f"hyperliquid metaAndAssetCtxs: {len(names)} coins but {len(ctxs)} contexts; refusing a "
            "misaligned response"
        )
    if coin not in names:
        raise HyperliquidError(
            f"hyperliquid has no perp named '{coin}' (it lists {', '.join(names[:12])}, ...)"
        )
    index = names.index(coin)
    if meta.universe[index].isDelisted:
        raise HyperliquidError(f"hyperliquid lists {coin} as delisted")
    ctx = parse_asset_ctx(ctxs[index], f"ctx of {coin}")
    if ctx.oraclePx is None or ctx.oraclePx <= 0:
        raise HyperliquidError(f"hyperliquid {coin}: no positive oracle price ({ctx.oraclePx})")
    if ctx.markPx is None or ctx.markPx <= 0:
        raise HyperliquidError(f"hyperliquid {coin}: no positive mark price ({ctx.markPx})")
    if abs(ctx.funding) > MAX_RATE_PER_HOUR:
        raise HyperliquidError(f"hyperliquid {coin}: funding {ctx.funding}/h is beyond the 4 %/h cap")
    return MarketSnapshot(
        coin=coin, oracle_price_usd=ctx.oraclePx, mark_price_usd=ctx.markPx, funding_rate_per_hour=ctx.funding
    )


def parse_meta_and_asset_ctxs(body: Any, coin: str) -> MarketSnapshot:
    if not isinstance(body, list) or len(body) != 2 or not isinstance(body[1], list):
        raise HyperliquidError("hyperliquid metaAndAssetCtxs: expected [meta, [ctx, ...]]")
    return snapshot_from(parse_meta(body[0]), body[1], coin)


def http_fetch(url: str = INFO_URL, timeout_seconds: float = 10.0) -> Fetch:
    """A `Fetch` that POSTs JSON to `url` and parses the JSON answer."""

    def fetch(request: dict[str, Any]) -> Any:
        data = json.dumps(request).encode()
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout_seconds) as resp:
                return json.loads(resp.read())
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise HyperliquidError(f"hyperliquid API unreachable ({err})") from None
        except json.JSONDecodeError as err:
            raise HyperliquidError(f"hyperliquid API answered with invalid JSON ({err})") from None

    return fetch


def file_fetch(path: str) -> Fetch:
    """A `Fetch` that answers every request with a recorded body (offline runs, tests)."""

    def fetch(request: dict[str, Any]) -> Any:
        try:
            with open(path) as handle:
                return json.load(handle)
        except (OSError, json.JSONDecodeError) as err:
            raise HyperliquidError(f"cannot read recorded response {path}: {err}") from None

    return fetch


def fetch_snapshot(fetch: Fetch, coin: str) -> MarketSnapshot:
    return parse_meta_and_asset_ctxs(fetch({"type": "metaAndAssetCtxs"}), coin)
