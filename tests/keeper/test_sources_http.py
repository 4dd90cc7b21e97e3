"""The HTTP client's retries, and the fetchers end to end on a fake transport."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from keeper.core.errors import SourceError
from keeper.data import dydx, hyperliquid
from keeper.data.dydx import DydxSource
from keeper.data.hyperliquid import HyperliquidSource
from keeper.net.http import HttpClient, HttpResponse, TransportError
from tests.fixtures.data import API_FIXTURES


@dataclass
class FakeTransport:
    """Answers each request with the next scripted reply (an HttpResponse, or an
    exception to raise) and records what was asked."""

    replies: list
    calls: list = field(default_factory=list)

    def __call__(self, method, url, body, headers, timeout):
        self.calls.append((method, url, None if body is None else json.loads(body), dict(headers), timeout))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def ok(payload) -> HttpResponse:
    return HttpResponse(200, json.dumps(payload).encode())


def client(replies, **kwargs):
    transport = FakeTransport(list(replies))
    sleeps: list[float] = []
    return HttpClient("venue", transport, sleep=sleeps.append, **kwargs), transport, sleeps


def test_get__success__no_retry_and_params_encoded():
    http, transport, sleeps = client([ok({"a": 1})], timeout=3.0)
    assert http.get_json("https://x/y", {"ticker": "BTC-USD", "limit": 5}) == {"a": 1}
    ((method, url, body, headers, timeout),) = transport.calls
    assert (method, url, body, timeout) == ("GET", "https://x/y?ticker=BTC-USD&limit=5", None, 3.0)
    assert headers["Accept"] == "application/json" and sleeps == []


def test_post__sends_json():
    http, transport, _ = client([ok([1])])
    assert http.post_json("https://x/info", {"type": "meta"}) == [1]
    assert (
        transport.calls[0][2] == {"type": "meta"}
        and transport.calls[0][3]["Content-Type"] == "application/json"
    )


def test_5xx_and_connection_errors__retried_with_exponential_backoff():
    replies = [
        HttpResponse(502, b"bad gateway"),
        TransportError("connection reset"),
        HttpResponse(503, b""),
        ok(7),
    ]
    http, transport, sleeps = client(replies, retries=3, backoff=0.5)
    assert http.get_json("https://x") == 7
    assert len(transport.calls) == 4 and sleeps == [0.5, 1.0, 2.0]


def test_429__retry_after_honoured_and_capped():
    replies = [
        HttpResponse(429, b"slow down", {"Retry-After": "3"}),
        HttpResponse(429, b"", {"retry-after": "60"}),
        ok(1),
    ]
    http, _, sleeps = client(replies, retries=2, backoff=0.5, max_backoff=10.0)
    assert http.get_json("https://x") == 1
    assert sleeps == [3.0, 10.0]


def test_4xx__not_retried():
    http, transport, sleeps = client([HttpResponse(400, b'{"error":"bad ticker"}')])
    with pytest.raises(
        SourceError, match=r"HTTP 400 from GET https://x: \{\"error\":\"bad ticker\"\}"
    ) as err:
        http.get_json("https://x")
    assert len(transport.calls) == 1 and sleeps == [] and err.value.venue == "venue"


def test_gives_up_after_retries__with_the_last_reason():
    http, transport, sleeps = client([HttpResponse(500, b"boom")] * 3, retries=2, backoff=1.0)
    with pytest.raises(SourceError, match=r"HTTP 500 .* boom \(gave up after 3 attempts\)"):
        http.get_json("https://x")
    assert len(transport.calls) == 3 and sleeps == [1.0, 2.0]


def test_connection_errors__give_up():
    http, _, _ = client([TransportError("timed out")] * 2, retries=1)
    with pytest.raises(SourceError, match=r"connection failed: timed out \(gave up after 2 attempts\)"):
        http.get_json("https://x")


def test_unresolvable_host__permanent_at_once_on_the_real_transport():
    sleeps: list[float] = []
    http = HttpClient("venue", retries=5, sleep=sleeps.append)  # urllib_transport, the real one
    with pytest.raises(SourceError, match=r"host name 'basis-test\.invalid' does not resolve") as err:
        http.get_json("http://basis-test.invalid/info")
    assert err.value.permanent and sleeps == []


def test_malformed_url__permanent_at_once():
    sleeps: list[float] = []
    http = HttpClient("venue", retries=5, sleep=sleeps.append)
    with pytest.raises(SourceError, match="malformed URL") as err:
        http.get_json("http://[::1/info")
    assert err.value.permanent and sleeps == []


def test_non_json_body__refused_without_retry():
    http, transport, _ = client([HttpResponse(200, b"<html>maintenance</html>")])
    with pytest.raises(SourceError, match="response is not JSON"):
        http.get_json("https://x")
    assert len(transport.calls) == 1


def test_bad_settings__refused():
    with pytest.raises(ValueError):
        HttpClient("v", timeout=0)


# ------------------------------------------------------------------- fetchers


NOW = datetime(2023, 6, 8, 3, 20, tzinfo=UTC)


def fixture_reply(name: str) -> HttpResponse:
    return HttpResponse(200, (API_FIXTURES / name).read_bytes())


def test_hyperliquid_source__view_from_fixtures():
    transport = FakeTransport(
        [
            fixture_reply("hyperliquid_metaAndAssetCtxs.json"),
            fixture_reply("hyperliquid_fundingHistory_switch.json"),
        ]
    )
    source = HyperliquidSource(HttpClient("hyperliquid", transport), clock=lambda: NOW)
    view = source.view("ETH", timedelta(hours=24))
    assert view.info.rate_per_hour == Decimal("-0.0000031") and view.info.observed_at == NOW
    assert len(view.history) == 6
    assert [c[2] for c in transport.calls] == [
        {"type": "metaAndAssetCtxs"},
        {
            "type": "fundingHistory",
            "coin": "ETH",
            "startTime": int((NOW - timedelta(hours=24)).timestamp() * 1000),
        },
    ]
    assert all(c[1] == "https://api.hyperliquid.xyz/info" for c in transport.calls)


def test_hyperliquid_source__history_pages(monkeypatch):
    monkeypatch.setattr(hyperliquid, "PAGE_ROWS", 4)
    rows = json.loads((API_FIXTURES / "hyperliquid_fundingHistory_switch.json").read_text())
    transport = FakeTransport([ok(rows[:4]), ok(rows[4:])])
    source = HyperliquidSource(HttpClient("hyperliquid", transport), clock=lambda: NOW)
    points = source.funding_history("ETH", NOW - timedelta(days=2), NOW)
    assert len(points) == 6
    assert transport.calls[1][2]["startTime"] == rows[3]["time"] + 1
    assert transport.calls[1][2]["endTime"] == int(NOW.timestamp() * 1000)


def test_hyperliquid_source__stale_history__refused():
    transport = FakeTransport([fixture_reply("hyperliquid_fundingHistory_switch.json")])
    source = HyperliquidSource(HttpClient("hyperliquid", transport), clock=lambda: NOW + timedelta(hours=5))
    with pytest.raises(SourceError, match="ETH history is stale"):
        source.funding_history("ETH", NOW - timedelta(days=2))


def test_hyperliquid_source__retries_then_reads():
    transport = FakeTransport([HttpResponse(503, b""), fixture_reply("hyperliquid_metaAndAssetCtxs.json")])
    sleeps: list[float] = []
    source = HyperliquidSource(HttpClient("hyperliquid", transport, sleep=sleeps.append), clock=lambda: NOW)
    assert source.funding_info("BTC").rate_per_hour == Decimal("0.0000125")
    assert sleeps == [0.5]


DYDX_NOW = datetime(2025, 12, 9, 12, 5, tzinfo=UTC)


def test_dydx_source__view_from_fixtures():
    transport = FakeTransport(
        [fixture_reply("dydx_perpetualMarkets.json"), fixture_reply("dydx_historicalFunding.json")]
    )
    source = DydxSource(HttpClient("dydx", transport), clock=lambda: DYDX_NOW)
    view = source.view("ETH-USD", timedelta(hours=3))
    assert view.info.rate_per_hour == Decimal("-0.0000021")
    assert [p.time.hour for p in view.history] == [10, 11, 12]
    assert transport.calls[0][1] == "https://indexer.dydx.trade/v4/perpetualMarkets?ticker=ETH-USD"
    assert transport.calls[1][1] == "https://indexer.dydx.trade/v4/historicalFunding/ETH-USD?limit=100"


def test_dydx_source__history_pages_backwards_and_trims_to_start(monkeypatch):
    monkeypatch.setattr(dydx, "PAGE_ROWS", 2)
    body = json.loads((API_FIXTURES / "dydx_historicalFunding.json").read_text())
    rows = body["historicalFunding"]
    transport = FakeTransport([ok({"historicalFunding": rows[:2]}), ok({"historicalFunding": rows[2:]})])
    source = DydxSource(HttpClient("dydx", transport), clock=lambda: DYDX_NOW)
    points = source.funding_history("ETH-USD", datetime(2025, 12, 9, 10, 30, tzinfo=UTC))
    assert [p.time.hour for p in points] == [11, 12]
    assert "effectiveBeforeOrAt=2025-12-09T11%3A00%3A00.431Z" in transport.calls[1][1]
