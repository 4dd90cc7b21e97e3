"""Funding sources: every venue's funding as one `FundingInfo` record (signed decimal
rate per hour, + = longs pay shorts), plus settled `FundingPoint` prints.

- `hyperliquid`: info API `metaAndAssetCtxs`, `fundingHistory`.
- `dydx`: v4 indexer `perpetualMarkets`, `historicalFunding`.
- `onchain`: the reference PerpMarket, from values the executor has read.

Parsers are pure functions on decoded JSON and raise `SourceError` (with a reason naming
the field) on malformed, stale or absurd input; fetchers wrap them around `HttpClient`.
"""

from keeper.sources.base import (
    DEFAULT_LIMITS,
    FundingInfo,
    FundingPoint,
    FundingView,
    Limits,
    SourceError,
    check_info,
)
from keeper.sources.dydx import DydxSource
from keeper.sources.http import HttpClient, HttpResponse, Transport, TransportError
from keeper.sources.hyperliquid import HyperliquidSource
from keeper.sources.onchain import history_from_rate_updates, onchain_funding_info

__all__ = [
    "DEFAULT_LIMITS",
    "DydxSource",
    "FundingInfo",
    "FundingPoint",
    "FundingView",
    "HttpClient",
    "HttpResponse",
    "HyperliquidSource",
    "Limits",
    "SourceError",
    "Transport",
    "TransportError",
    "check_info",
    "history_from_rate_updates",
    "onchain_funding_info",
]
