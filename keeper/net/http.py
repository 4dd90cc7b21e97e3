"""The one HTTP transport and retry loop, on the standard library, and the venues' JSON client.

The network sits behind `Transport` (one request in, status and body out), so tests and
replays feed recorded bodies through the same client the keeper runs with. `Retry` is the
one retry loop (the venues' `HttpClient` here and the node's `keeper.net.rpc.Rpc` both send
through it): connection errors and timeouts, 5xx and 429 are retried with exponential
backoff (a numeric `Retry-After` is honoured), capped; any other 4xx is the request's fault
and is never retried; nor is a failure no retry can fix (the host name does not resolve, a
malformed URL: `PermanentTransportError`). `HttpClient` surfaces every failure as `SourceError`.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict, Unpack

from keeper.core.errors import SourceError

log = logging.getLogger(__name__)

USER_AGENT = "basis-keeper/0.1 (+https://github.com/)"
_EXCERPT = 200


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class TransportError(Exception):
    """The request never got an HTTP answer (refused, reset, DNS, timeout)."""


class PermanentTransportError(TransportError):
    """No retry can help: the host name does not resolve, or the URL is malformed."""


class Transport(Protocol):
    def __call__(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], timeout: float
    ) -> HttpResponse: ...


def urllib_transport(
    method: str, url: str, body: bytes | None, headers: Mapping[str, str], timeout: float
) -> HttpResponse:
    """The default transport: `urllib.request`, HTTP errors returned as responses."""
    try:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return HttpResponse(reply.status, reply.read(), dict(reply.headers.items()))
    except urllib.error.HTTPError as err:
        return HttpResponse(err.code, err.read() or b"", dict(err.headers.items()) if err.headers else {})
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, socket.gaierror):
            host = urllib.parse.urlsplit(url).hostname
            raise PermanentTransportError(f"host name '{host}' does not resolve ({reason})") from err
        raise TransportError(str(reason)) from err
    except ValueError as err:  # http.client.InvalidURL, "unknown url type": the URL itself
        raise PermanentTransportError(f"malformed URL ({type(err).__name__})") from None


def _retryable(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None  # an HTTP-date: fall back to our own backoff
            return seconds if seconds >= 0 else None
    return None


class GaveUp(Exception):
    """No answer worth returning: the last attempt's `failure` (no HTTP answer, or HTTP
    429/5xx) after `attempts` tries; `permanent` when no retry could help and none was made."""

    def __init__(
        self, failure: TransportError | HttpResponse, attempts: int, *, permanent: bool = False
    ) -> None:
        super().__init__(str(failure))
        self.failure, self.attempts, self.permanent = failure, attempts, permanent


@dataclass(frozen=True)
class Retry:
    """The one retry policy of every request the keeper makes: `retries` after the first
    attempt; the n-th retry waits `backoff * 2**(n-1)` seconds, or what a numeric
    `Retry-After` asks, at most `max_backoff`."""

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("retries, backoff, max_backoff must be non-negative")

    def delay(self, retry: int, response: HttpResponse | None) -> float:
        delay: float = self.backoff * 2.0 ** (retry - 1)
        if response is not None:
            hinted = _retry_after(response.headers)
            if hinted is not None:
                delay = hinted
        return min(delay, self.max_backoff)

    def send(
        self,
        transport: Transport,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
        *,
        label: str,
        describe: Callable[[TransportError | HttpResponse], str],
    ) -> HttpResponse:
        """The first answer that is not HTTP 429/5xx (a 2xx or the request's own 4xx),
        retrying connection failures, timeouts, 429 and 5xx; `GaveUp` when none came.
        `label` and `describe` (a failure as one line) name retries in the log."""
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            failure: TransportError | HttpResponse
            try:
                failure = transport(method, url, body, headers, timeout)
            except PermanentTransportError as err:
                raise GaveUp(err, attempt, permanent=True) from None
            except TransportError as err:
                failure = err
            else:
                if not _retryable(failure.status):
                    return failure
            if attempt == attempts:
                raise GaveUp(failure, attempts)
            delay = self.delay(attempt, failure if isinstance(failure, HttpResponse) else None)
            log.warning(
                "%s: %s; retry %d/%d in %.2fs", label, describe(failure), attempt, self.retries, delay
            )
            self.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises


class SendOptions(TypedDict, total=False):
    """How a client sends: the request timeout and its `Retry` policy's fields."""

    timeout: float
    retries: int
    backoff: float
    max_backoff: float
    sleep: Callable[[float], None]


class Sender:
    """A transport, a timeout and the `Retry` policy: what every client sends with."""

    def __init__(
        self,
        transport: Transport = urllib_transport,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.transport = transport
        self.timeout = timeout
        self.retry = Retry(retries, backoff, max_backoff, sleep)


class HttpClient(Sender):
    """JSON requests for one venue, with the `Retry` policy (`retries` after the first
    attempt, exponential `backoff` capped at `max_backoff`, `Retry-After` honoured)."""

    def __init__(
        self, venue: str, transport: Transport = urllib_transport, **options: Unpack[SendOptions]
    ) -> None:
        super().__init__(transport, **options)
        self.venue = venue

    def get_json(self, url: str, params: Mapping[str, str | int] | None = None) -> Any:
        if params:
            url = f"{url}?{urllib.parse.urlencode(params)}"
        return self._request("GET", url, None)

    def post_json(self, url: str, payload: Any) -> Any:
        return self._request("POST", url, json.dumps(payload).encode())

    def _request(self, method: str, url: str, body: bytes | None) -> Any:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"

        def describe(failure: TransportError | HttpResponse) -> str:
            if isinstance(failure, TransportError):
                return f"connection failed: {failure}"
            excerpt = failure.body[:_EXCERPT].decode("utf-8", "replace")
            return f"HTTP {failure.status} from {method} {url}: {excerpt}"

        try:
            response = self.retry.send(
                self.transport, method, url, body, headers, self.timeout, label=self.venue, describe=describe
            )
        except GaveUp as err:
            if err.permanent:
                raise SourceError(self.venue, describe(err.failure), permanent=True) from None
            raise SourceError(
                self.venue, f"{describe(err.failure)} (gave up after {err.attempts} attempts)"
            ) from None
        if not 200 <= response.status < 300:
            raise SourceError(self.venue, describe(response))
        return self._decode(response)

    def _decode(self, response: HttpResponse) -> Any:
        try:
            return json.loads(response.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            excerpt = response.body[:_EXCERPT].decode("utf-8", "replace")
            raise SourceError(self.venue, f"response is not JSON ({err}): {excerpt!r}") from None
