"""A minimal Ethereum JSON-RPC client: batches, timeouts, retries, a round-trip counter.

The keeper reads the whole vault in one batched request per tick, so it talks JSON-RPC
itself instead of through a contract framework: every HTTP request is one round trip and
is counted (`round_trips`), which `make bench` reports. Transient failures (no answer,
timeouts, HTTP 5xx/429) are retried by the one retry loop (`keeper.net.http.Retry`:
exponential backoff, capped, `Retry-After` honoured) and then surface as
`RpcUnavailable`; an error the node returns (a revert, a bad nonce) is `RpcError` and is
never retried here. The URL is never logged: hosted RPC URLs carry API keys. Credentials
in the URL (`https://user:secret@host/...`) are sent as HTTP basic auth, as web3 and curl do:
the host name the resolver sees is the host alone.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from keeper.net.http import (
    GaveUp,
    HttpResponse,
    Sender,
    SendOptions,
    Transport,
    TransportError,
    urllib_transport,
)


class RpcUnavailable(Exception):
    """The node did not answer (after retries)."""


class RpcError(Exception):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method, self.code, self.message, self.data = method, code, message, data


def redact(url: str) -> str:
    """scheme://host[:port] only: paths and queries of hosted RPC URLs hold API keys."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}"


_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def scrub(text: str) -> str:
    """`text` with the credentials of any URL in it masked (`https://***@host/...`)."""
    return _USERINFO.sub(r"\1***@", text)


def basic_auth(url: str) -> tuple[str, dict[str, str]]:
    """(the URL without its `user:password@`, the Authorization header they make, if any)."""
    scheme, sep, rest = url.partition("://")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if not sep or "@" not in authority:
        return url, {}
    userinfo, host = authority.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    token = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()
    return f"{scheme}://{host}{tail}", {"Authorization": "Basic " + base64.b64encode(token).decode()}


class Rpc(Sender):
    """JSON-RPC to one node; retries as `Sender` (by default 2 after the first attempt)."""

    def __init__(
        self, url: str, *, transport: Transport = urllib_transport, **options: Unpack[SendOptions]
    ) -> None:
        options.setdefault("retries", 2)
        super().__init__(transport, **options)
        self.url, self._auth = basic_auth(url)
        self.round_trips = 0
        self._next_id = 0

    def call(self, method: str, *params: Any) -> Any:
        result = self.batch([(method, list(params))])[0]
        if isinstance(result, RpcError):
            raise result
        return result

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """One request with every call; results in order. A call the node answered with an
        error comes back as an `RpcError` instance in its place (the caller decides)."""
        first = self._next_id
        self._next_id += len(calls)
        payload = [
            {"jsonrpc": "2.0", "id": first + i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        replies = self._post(payload[0] if len(payload) == 1 else payload)
        if isinstance(replies, dict):
            replies = [replies]
        if not isinstance(replies, list):
            raise RpcUnavailable(f"malformed JSON-RPC reply from {redact(self.url)}: {str(replies)[:120]}")
        by_id = {reply.get("id"): reply for reply in replies if isinstance(reply, dict)}
        results: list[Any] = []
        for i, (method, _) in enumerate(calls):
            reply = by_id.get(first + i)
            if reply is None:
                raise RpcUnavailable(f"{method}: no reply in the batch from {redact(self.url)}")
            if "error" in reply:
                err = reply["error"] or {}
                results.append(
                    RpcError(method, int(err.get("code", 0)), str(err.get("message", "")), err.get("data"))
                )
            else:
                results.append(reply.get("result"))
        return results

    def _post(self, payload: Any) -> Any:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self._auth}
        try:
            response = self.retry.send(
                self._counted,
                "POST",
                self.url,
                body,
                headers,
                self.timeout,
                label=f"rpc {redact(self.url)}",
                describe=_describe,
            )
        except GaveUp as err:
            raise RpcUnavailable(
                f"node at {redact(self.url)} unreachable: {_describe(err.failure)}"
            ) from None
        try:
            return json.loads(response.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            # a JSON-RPC error can come with HTTP 4xx; anything unparsable is the node's fault
            raise RpcUnavailable(
                f"node at {redact(self.url)} unreachable: HTTP {response.status}, not JSON"
            ) from None

    def _counted(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], timeout: float
    ) -> HttpResponse:
        """The transport, counting every request (`round_trips`, retries included)."""
        self.round_trips += 1
        return self.transport(method, url, body, headers, timeout)


def _describe(failure: TransportError | HttpResponse) -> str:
    return f"no answer ({failure})" if isinstance(failure, TransportError) else f"HTTP {failure.status}"
