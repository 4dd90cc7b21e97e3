"""Hyperliquid responses, read strictly: the project's fixture and real recorded bodies."""

import copy
import json
from decimal import Decimal

import pytest

from keeper.errors import UserError
from keeper.hyperliquid import (
    HyperliquidError,
    fetch_snapshot,
    file_fetch,
    parse_asset_ctx,
    parse_meta,
    parse_meta_and_asset_ctxs,
    snapshot_from,
)
from tests.scripts.conftest import FIXTURES

FIXTURE = FIXTURES / "hyperliquid_metaAndAssetCtxs.json"


@pytest.fixture
def body():
    return json.loads(FIXTURE.read_text())


def test_fixture__eth_snapshot(body):
    snap = parse_meta_and_asset_ctxs(body, "ETH")
    assert snap.oracle_price_usd == Decimal("3124.6")
    assert snap.mark_price_usd == Decimal("3123.7")
    assert snap.funding_rate_per_hour == Decimal("0.0000125")


def test_fixture__negative_funding_keeps_its_sign(body):
    assert parse_meta_and_asset_ctxs(body, "SOL").funding_rate_per_hour == Decimal("-0.0000041")


def test_fixture__file_fetch_answers_every_request():
    assert fetch_snapshot(file_fetch(str(FIXTURE)), "BTC").oracle_price_usd == Decimal("77605.0")


@pytest.mark.parametrize(
    ("mutate", "coin", "message"),
    [
        (lambda b: b[1].pop(), "ETH", "4 coins but 3 contexts; refusing a misaligned response"),
        (lambda b: None, "DOGE", "hyperliquid has no perp named 'DOGE'"),
        (lambda b: None, "OLD", "lists OLD as delisted"),
        (lambda b: b[1][1].update(oraclePx=None), "ETH", "no positive oracle price"),
        (lambda b: b[1][1].update(oraclePx="0"), "ETH", "no positive oracle price"),
        (lambda b: b[1][1].update(oraclePx=3124.6), "ETH", "oraclePx: expected a decimal string, got 3124.6"),
        (lambda b: b[1][1].update(funding="NaN"), "ETH", "funding: 'NaN' is not finite"),
        (lambda b: b[1][1].update(funding="0.05"), "ETH", "funding 0.05/h is beyond the 4 %/h cap"),
        (lambda b: b[1][1].pop("funding"), "ETH", "funding: Field required"),
        (lambda b: b[0].update(universe=[]), "ETH", "universe: List should have at least 1 item"),
    ],
)
def test_fixture__malformed_is_refused(body, mutate, coin, message):
    bad = copy.deepcopy(body)
    mutate(bad)
    with pytest.raises(HyperliquidError) as info:
        parse_meta_and_asset_ctxs(bad, coin)
    assert message in str(info.value)
    assert isinstance(info.value, UserError)


@pytest.mark.parametrize("shape", [{}, [], [{"universe": []}], "ok", [1, 2, 3]])
def test_wrong_shape_is_refused(shape):
    with pytest.raises(HyperliquidError):
        parse_meta_and_asset_ctxs(shape, "ETH")


# ----------------------------------------------------------------------------- recorded


def test_recorded__meta_universe(data_dir):
    meta = parse_meta(json.loads((data_dir / "api" / "hyperliquid_meta_2023-07-17.json").read_text()))
    names = [a.name for a in meta.universe]
    assert names[:2] == ["BTC", "ETH"] and len(names) == 28
    assert meta.universe[0].szDecimals == 5


def test_recorded__asset_contexts_from_the_websocket_capture(data_dir):
    """The WS `allDexsAssetCtxs` capture carries the same per-asset context as
    metaAndAssetCtxs[1]; all four recorded entries parse, including the inactive one."""
    capture = json.loads(
        (data_dir / "api" / "hyperliquid_ws_allDexsAssetCtxs_EXCERPT_first4.json").read_text()
    )
    ctxs = capture["data"]["ctxs"][0][1]
    parsed = [parse_asset_ctx(c) for c in ctxs]
    assert parsed[0].funding == Decimal("-0.0000015186")  # negative funding, kept signed
    assert parsed[1].oraclePx == Decimal("2124.6") and parsed[1].funding == Decimal("0.0000125")
    assert parsed[3].premium is None  # the inactive market's nulls are allowed where prices may be absent


def test_recorded__meta_with_recorded_contexts_mirrors_eth(data_dir):
    meta = parse_meta(json.loads((data_dir / "api" / "hyperliquid_meta_2023-07-17.json").read_text()))
    capture = json.loads(
        (data_dir / "api" / "hyperliquid_ws_allDexsAssetCtxs_EXCERPT_first4.json").read_text()
    )
    ctxs = capture["data"]["ctxs"][0][1]
    # The excerpt holds the first 4 contexts only: a universe cut to the same coins lines up.
    snap = snapshot_from(meta.model_copy(update={"universe": meta.universe[:4]}), ctxs, "ETH")
    assert snap.oracle_price_usd == Decimal("2124.6")
    with pytest.raises(HyperliquidError, match="28 coins but 4 contexts"):
        snapshot_from(meta, ctxs, "ETH")
