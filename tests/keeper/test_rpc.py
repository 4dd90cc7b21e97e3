"""The JSON-RPC client on a scripted transport: retries, batches, malformed replies."""

import json

import pytest

from keeper.net.http import HttpResponse, TransportError
from keeper.net.rpc import Rpc, RpcError, RpcUnavailable, redact


class Script:
    """Answers each request with the next scripted reply (a response, or an exception)."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.requests = []

    def __call__(self, method, url, body, headers, timeout):
        self.requests.append(json.loads(body))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def ok(payload, status=200):
    return HttpResponse(status, json.dumps(payload).encode())


def test_batch__replies_matched_by_id_whatever_their_order():
    script = Script(
        ok([{"jsonrpc": "2.0", "id": 1, "result": "b"}, {"jsonrpc": "2.0", "id": 0, "result": "a"}])
    )
    rpc = Rpc("http://node", transport=script)
    assert rpc.batch([("m0", []), ("m1", [1])]) == ["a", "b"]
    assert [r["method"] for r in script.requests[0]] == ["m0", "m1"] and rpc.round_trips == 1


def test_batch__an_error_comes_back_in_its_place():
    script = Script(
        ok([{"id": 0, "result": "0x1"}, {"id": 1, "error": {"code": 3, "message": "execution reverted"}}])
    )
    first, second = Rpc("http://node", transport=script).batch([("eth_call", []), ("eth_call", [])])
    assert first == "0x1" and isinstance(second, RpcError) and second.code == 3


@pytest.mark.parametrize(
    "failure", [TransportError("refused"), HttpResponse(502, b"bad gateway"), HttpResponse(429, b"")]
)
def test_call__transient_failures_retried_with_backoff(failure):
    naps = []
    script = Script(failure, failure, ok({"id": 0, "result": "0x10"}))
    rpc = Rpc("http://node", transport=script, retries=2, sleep=naps.append)
    assert rpc.call("eth_blockNumber") == "0x10"
    assert rpc.round_trips == 3 and naps == [0.5, 1.0]


@pytest.mark.parametrize(
    "reply,message",
    [
        (HttpResponse(200, b"<html>"), "not JSON"),
        (ok("just a string"), "malformed JSON-RPC reply"),
        (ok([{"id": 7, "result": 1}]), "no reply in the batch"),
    ],
)
def test_call__malformed_replies_are_unavailable_not_guessed(reply, message):
    with pytest.raises(RpcUnavailable, match=message):
        Rpc("http://node", transport=Script(reply), retries=0).call("eth_chainId")


def test_redact__keeps_only_scheme_and_host():
    assert (
        redact("https://user:pw@eth-sepolia.g.alchemy.com/v2/KEY?x=1") == "https://eth-sepolia.g.alchemy.com"
    )
