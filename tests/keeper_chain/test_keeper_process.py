"""The keeper as operators run it: `python -m keeper.cli.keeper run` in its own process, against a
stack deployed by `keeper.ops.deploy` (what `ape run deploy` runs), while the test moves the
world with the market feeder's functions (`keeper.ops.feeder`) and warps anvil's clock.

Each test starts its own keeper process and waits on what it logs ("block N: Hold: ..."
once it has seen block N and has nothing to do), never on sleeps alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from keeper.ops.feeder import arb, push_price, set_funding

REPO = Path(__file__).resolve().parents[2]
USDC = 10**6
HOUR = 3_600


class KeeperProcess:
    def __init__(self, rpc_url: str, deployments: Path, ape_dir: Path, log_path: Path, **env: str):
        self.log_path = log_path
        self.env = {
            **os.environ,
            "APE_DATA_FOLDER": str(ape_dir),
            "APE_ACCOUNTS_bot_PASSPHRASE": "pw",
            "BASIS_KEEPER_RPC_URL": rpc_url,
            "BASIS_KEEPER_ACCOUNT": "bot",
            "BASIS_KEEPER_DEPLOYMENTS_DIR": str(deployments),
            "BASIS_KEEPER_INTERVAL_SECONDS": "0.2",
            "BASIS_KEEPER_METRICS_PORT": "0",
            "BASIS_KEEPER_RECEIPT_TIMEOUT_SECONDS": "2",
            "BASIS_KEEPER_RPC_RETRIES": "0",
            "BASIS_KEEPER_RPC_TIMEOUT_SECONDS": "2",
            # a short smoothing window, so an hour of warped history is enough to act on
            "BASIS_KEEPER_STRATEGY__FUNDING_WINDOW_HOURS": "1",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> KeeperProcess:
        handle = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keeper.cli.keeper", "run"],
            env=self.env,
            stdout=handle,
            stderr=handle,
            cwd=REPO,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, predicate, what: str, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            assert self.proc is not None and self.proc.poll() is None, f"keeper exited:\n{self.log()[-3000:]}"
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; keeper log tail:\n{self.log()[-3000:]}")

    def settled_at(self, block: int) -> bool:
        return re.search(rf"block {block}: Hold:", self.log()) is not None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)


@pytest.fixture
def keeper_process(chain, stack, keystore_dir, tmp_path):
    started: list[KeeperProcess] = []

    def _start(rpc_url: str | None = None, log_name: str = "keeper.log", **env: str) -> KeeperProcess:
        kp = KeeperProcess(rpc_url or chain.provider.uri, stack[1], keystore_dir, tmp_path / log_name, **env)
        started.append(kp.start())
        return kp

    yield _start
    for kp in started:
        kp.stop()
    assert all(kp.proc is None or kp.proc.returncode in (0, -signal.SIGKILL) for kp in started)


def settle(kp: KeeperProcess, chain, timeout: float = 60.0) -> int:
    """Wait until the keeper holds at the chain's head (having done whatever it decided)."""

    def done() -> bool:
        return kp.settled_at(chain.blocks.head.number)

    kp.wait_for(done, "the keeper to settle at the head", timeout)
    return chain.blocks.head.number


def fund_and_wait_for_history(dep, chain, deployer, alice, rate_per_hour="0.00002"):
    set_funding(dep, deployer, Decimal(rate_per_hour), "1h")
    dep.asset.mint(alice, 1_000_000 * USDC, sender=alice)
    dep.asset.approve(dep.vault, 1_000_000 * USDC, sender=alice)
    dep.vault.deposit(1_000_000 * USDC, alice, sender=alice)
    move(dep, chain, deployer, 0, HOUR)  # an hour of funding history, the oracle kept fresh


def move(dep, chain, feeder, pct: float, seconds: int) -> None:
    """The market feeder's step: time passes, the oracle moves `pct` %, the pool is arbitraged."""
    chain.mine(deltatime=seconds)
    price = Decimal(dep.price_feed.latestAnswer()) / 10**8 * (1 + Decimal(str(pct)) / 100)
    push_price(dep, feeder, price.quantize(Decimal("0.01")))
    arb(dep, feeder)


def margin_ratio(dep) -> int:
    return dep.perp_market.margin_ratio_bps(dep.hedge)


def test_keeper__deploys_deposits_and_rides_out_30pct_moves(chain, stack, deployer, alice, keeper_process):
    dep = stack[0]
    fund_and_wait_for_history(dep, chain, deployer, alice)
    kp = keeper_process()
    settle(kp, chain)
    assert dep.hedge.short_size() > 0, "deposits were not deployed"
    assert dep.vault.idle() < dep.vault.totalAssets() // 50
    assert 4_000 <= margin_ratio(dep) <= 6_000  # the 2x target, 50 %

    for pct in [5] * 6:  # +34 % within the hour
        move(dep, chain, deployer, pct, 600)
        settle(kp, chain)
        assert not dep.perp_market.is_liquidatable(dep.hedge)
    assert 3_000 <= margin_ratio(dep) <= 7_500
    for pct in [-5] * 7:  # and back down 30 %
        move(dep, chain, deployer, pct, 500)
        settle(kp, chain)
        assert not dep.perp_market.is_liquidatable(dep.hedge)
    assert 3_000 <= margin_ratio(dep) <= 7_500
    assert -dep.perp_market.position(dep.hedge).size == dep.hedge.short_size() == dep.hedge.booked_short()
    assert "Rebalance" in kp.log() and "margin" in kp.log()


def test_keeper__parks_on_sustained_negative_funding_and_reenters(
    chain, stack, deployer, alice, keeper_process
):
    dep = stack[0]
    fund_and_wait_for_history(dep, chain, deployer, alice)
    # the park rule on the test's compressed clock (its funding window is an hour): one
    # span of two hours, all of its funding taken to repeat
    kp = keeper_process(
        BASIS_KEEPER_STRATEGY__PARK_HORIZONS_HOURS="[2]", BASIS_KEEPER_STRATEGY__PARK_PERSISTENCE='["1"]'
    )
    settle(kp, chain)
    assert dep.hedge.short_size() > 0
    # shorts paying longs 0.3 %/h: within two hours the span has cost more than a round trip
    set_funding(dep, deployer, Decimal("-0.003"), "1h")
    for _ in range(4):
        move(dep, chain, deployer, 0, 1_800)
        settle(kp, chain)
    assert dep.hedge.short_size() == 0 and dep.hedge.spot_base() == 0, "did not park"
    set_funding(dep, deployer, Decimal("0.00003"), "1h")
    for _ in range(4):
        move(dep, chain, deployer, 0, 1_800)
        settle(kp, chain)
    assert dep.hedge.short_size() > 0, "did not re-enter"
    log = kp.log()
    # entered once at the start, parked once, re-entered once: no flapping
    assert log.count("rebalance (park): sent") == 1 and log.count("rebalance (enter): sent") == 2


def test_keeper__liquidated_while_down__alerts_once_and_restores_the_hedge(
    chain, stack, deployer, alice, keeper_process, liquidator
):
    """Issue 10: the keeper is down, ETH jumps +60 % (past the 2x short's bankruptcy) and a
    liquidator closes the short. The keeper comes back, alerts once (log and
    basis_keeper_liquidations_total), does not hold: its first call books the liquidation
    and the hedge is back within the rules."""
    dep = stack[0]
    fund_and_wait_for_history(dep, chain, deployer, alice)
    kp = keeper_process(log_name="before.log")
    settle(kp, chain)
    short = dep.hedge.short_size()
    assert short > 0 and 4_000 <= margin_ratio(dep) <= 6_000
    kp.stop()

    move(dep, chain, deployer, 60, 600)
    assert dep.perp_market.is_liquidatable(dep.hedge)
    dep.perp_market.liquidate(dep.hedge, sender=liquidator)
    assert dep.hedge.short_size() == 0 and dep.hedge.booked_short() == short
    spot = dep.hedge.spot_base()

    port = socket.create_server(("127.0.0.1", 0))
    metrics_port = port.getsockname()[1]
    port.close()
    kp = keeper_process(log_name="after.log", BASIS_KEEPER_METRICS_PORT=str(metrics_port))
    settle(kp, chain)
    log = kp.log()
    assert log.count("ALERT: hedge liquidated") == 1, log[-3000:]
    assert "needs an operator" not in log
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    assert "basis_keeper_liquidations_total 1.0" in metrics
    # restored: the books equal the venue, a short again against the spot, within the rules
    assert dep.hedge.booked_short() == dep.hedge.short_size() > 0
    assert 3_000 <= margin_ratio(dep) <= 7_500
    price = dep.price_feed.latestAnswer()
    spot_value = dep.hedge.spot_base() * price // 10**8 // 10**12
    short_value = dep.hedge.short_size() * price // 10**8 // 10**12
    assert abs(spot_value - short_value) * 10_000 <= dep.vault.totalAssets() * 200
    assert dep.hedge.spot_base() > 0 and spot > 0


class Proxy:
    """A TCP forwarder to the node that can be cut off, standing in for a flaky RPC."""

    def __init__(self, target: str):
        host, port = target.split("//", 1)[1].split(":")
        self.target = (host, int(port.rstrip("/")))
        self.up = True
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65_536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


def test_keeper__node_unreachable__keeps_running_alerts_resumes_and_acts_once(
    chain, stack, deployer, alice, keeper_process, keeper
):
    dep = stack[0]
    proxy = Proxy(chain.provider.uri)
    try:
        port = socket.create_server(("127.0.0.1", 0))
        metrics_port = port.getsockname()[1]
        port.close()
        kp = keeper_process(
            proxy.url,
            BASIS_KEEPER_MAX_FAILURES="3",
            BASIS_KEEPER_COOLDOWN_SECONDS="0.5",
            BASIS_KEEPER_METRICS_PORT=str(metrics_port),
        )
        settle(kp, chain)
        proxy.up = False
        fund_and_wait_for_history(dep, chain, deployer, alice)  # work piles up while the node is away
        nonce = keeper.nonce
        kp.wait_for(lambda: "circuit breaker open" in kp.log(), "the circuit breaker to open")
        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        )
        assert "basis_keeper_circuit_open 1.0" in metrics
        assert re.search(r'basis_keeper_errors_total\{kind="RpcUnavailable"\} [1-9]', metrics)
        assert keeper.nonce == nonce
        proxy.up = True
        kp.wait_for(lambda: "circuit breaker closed" in kp.log(), "the keeper to resume")
        settle(kp, chain)
        assert keeper.nonce == nonce + 1, f"acted more (or less) than once:\n{kp.log()[-4000:]}"
        assert dep.hedge.short_size() > 0
        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        )
        assert "basis_keeper_circuit_open 0.0" in metrics
    finally:
        proxy.close()


def test_keeper__killed_after_sending__restart_waits_for_it_never_repeats(
    chain, stack, deployer, alice, keeper_process, keeper
):
    dep = stack[0]
    fund_and_wait_for_history(dep, chain, deployer, alice)
    nonce = keeper.nonce
    chain.provider.make_request("evm_setAutomine", [False])
    try:
        first = keeper_process(log_name="first.log")
        first.wait_for(lambda: "sent 0x" in first.log(), "the first keeper to send")
        first.stop(signal.SIGKILL)  # dies before it sees the receipt
        second = keeper_process(log_name="second.log")
        second.wait_for(
            lambda: "still in flight" in second.log(), "the restarted keeper to see the pending tx"
        )
        chain.provider.make_request("evm_mine", [])
    finally:
        chain.provider.make_request("evm_setAutomine", [True])
    settle(second, chain)
    assert keeper.nonce == nonce + 1
    assert "sent 0x" not in second.log()
    assert dep.hedge.short_size() > 0
