"""Issue 14's faults, with the keeper as a process against anvil: a node down at start and an
RPC URL with credentials (basic auth, never printed), a stuck keeper transaction, and an
outage while the margin is thin (the breaker probes at the urgent pace, not the cooldown)."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from eth_account import Account

from tests.keeper_chain.test_keeper_process import (  # noqa: F401 (fixture)
    fund_and_wait_for_history,
    keeper_process,
    margin_ratio,
    move,
    settle,
)
from tests.scripts.test_cli_e2e import free_port


def rpc(url: str, method: str, params: list) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.loads(response.read())
    assert "result" in answer, f"{method}: {answer}"
    return answer["result"]


@contextlib.contextmanager
def auth_proxy(port: int, upstream: str, user: str | None = None, password: str = ""):
    """A JSON-RPC proxy (wanting HTTP basic auth when `user` is given) that answers 503 while
    `seen["down"]`; yields counts of what it saw."""
    seen = {"authorized": 0, "refused": 0, "down": False}
    want = None if user is None else "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if seen["down"]:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if want is not None and self.headers.get("Authorization") != want:
                seen["refused"] += 1
                self.send_response(401)
                self.end_headers()
                return
            seen["authorized"] += 1
            request = urllib.request.Request(
                upstream, data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as reply:
                answer = reply.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_run__waits_for_a_node_down_at_start__and_sends_url_credentials_as_basic_auth(
    chain,
    stack,
    keeper_process,  # noqa: F811
):
    port = free_port()
    kp = keeper_process(rpc_url=f"http://keeper:s3cret@127.0.0.1:{port}")
    kp.wait_for(lambda: "cannot start yet" in kp.log(), "the keeper to wait for the node")
    with auth_proxy(port, chain.provider.uri, "keeper", "s3cret") as seen:
        settle(kp, chain)
    assert seen["authorized"] > 0 and seen["refused"] == 0
    assert "s3cret" not in kp.log() and "http://127.0.0.1" in kp.log()


def test_run__a_stuck_transaction_alerts_and_is_replaced(
    chain,
    stack,
    keeper,
    keeper_process,  # noqa: F811
):
    url = chain.provider.uri
    me = keeper.address
    nonce = int(rpc(url, "eth_getTransactionCount", [me, "latest"]), 16)
    base_fee = int(rpc(url, "eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
    stuck = Account.sign_transaction(
        {
            "type": 2,
            "chainId": chain.chain_id,
            "nonce": nonce,
            "to": me,
            "value": 0,
            "gas": 21_000,
            "maxFeePerGas": 2 * base_fee + 10**9,
            "maxPriorityFeePerGas": 1,
        },
        keeper.private_key,
    )
    rpc(url, "evm_setAutomine", [False])  # nothing is mined: the keeper's transaction stays pending
    try:
        stuck_hash = rpc(
            url, "eth_sendRawTransaction", ["0x" + stuck.raw_transaction.hex().removeprefix("0x")]
        )
        kp = keeper_process(BASIS_KEEPER_STUCK_TX_SECONDS="1")
        kp.wait_for(lambda: f"ALERT: keeper transaction at nonce {nonce} stuck" in kp.log(), "the alert")
        kp.wait_for(lambda: f"cancel of nonce {nonce}: sent" in kp.log(), "the replacement")
    finally:
        rpc(url, "evm_setAutomine", [True])
        rpc(url, "evm_mine", [])
    settle(kp, chain)
    assert int(rpc(url, "eth_getTransactionCount", [me, "latest"]), 16) == nonce + 1
    assert rpc(url, "eth_getTransactionReceipt", [stuck_hash]) is None  # the replacement won
    assert json.dumps(kp.log()).count("ALERT") >= 1


def test_run__an_outage_with_a_thin_margin_is_probed_at_the_urgent_pace_not_the_cooldown(
    chain,
    stack,
    deployer,
    alice,
    keeper_process,  # noqa: F811
):
    dep = stack[0]
    fund_and_wait_for_history(dep, chain, deployer, alice)
    first = keeper_process(log_name="deploy.log")
    settle(first, chain)  # the deposit hedged at 2x
    first.stop()
    move(dep, chain, deployer, 20, 60)  # +20 %: the margin ratio falls below the band (3,000 bps)
    assert margin_ratio(dep) < 3_000
    port = free_port()
    with auth_proxy(port, chain.provider.uri) as proxy:
        kp = keeper_process(
            rpc_url=f"http://127.0.0.1:{port}",
            log_name="dry.log",
            BASIS_KEEPER_DRY_RUN="1",  # it sees the thin margin and decides, but sends nothing
            BASIS_KEEPER_MAX_FAILURES="2",
            BASIS_KEEPER_COOLDOWN_SECONDS="600",
            BASIS_KEEPER_URGENT_COOLDOWN_SECONDS="1",
        )
        kp.wait_for(lambda: "dry run, not sending" in kp.log(), "a decision on the thin margin")
        proxy["down"] = True
        kp.wait_for(lambda: "circuit breaker open" in kp.log(), "the breaker to open")
        assert "probing every 1.0s (margin ratio below the band)" in kp.log()
        proxy["down"] = False
        kp.wait_for(lambda: "circuit breaker closed" in kp.log(), "a probe within seconds", timeout=30)
