"""Sending the keeper's calls to the vault's hedge (`BasisHedge`: `rebalance`,
`emergency_deleverage`, `unwind` steps): simulate, price, sign, send, wait, check.

Every transaction is simulated at the pending state first (a revert never costs gas and
its reason is reported); gas comes from `eth_estimateGas` with headroom; fees are
EIP-1559 from the latest base fee; the nonce is the account's pending nonce, read from
chain every time. A transaction not mined within the timeout stays the chain's business:
the next tick sees the account's pending nonce above its confirmed one and waits, so an
action is never sent twice (the same holds after a restart: nothing lives in memory).
A transaction pending too long is replaced (`replace`): the same nonce, fees at least 1.25x
the stuck one's (2.5x the going rate when its fees are unknown, e.g. after a restart).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import HexStr

from keeper.chain.abi import revert_reason
from keeper.net.rpc import Rpc, RpcError

log = logging.getLogger(__name__)

# A replacement must outbid the stuck transaction (nodes want >= +10 % on both fees).
REPLACEMENT_BUMP_PCT = 125
CANCEL_GAS = 21_000


class ActionRejected(Exception):
    """The simulation reverted: the hedge (or vault, or venue) would refuse the call. `reason` is its
    revert string."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(f"{label}: would revert: {reason}")
        self.reason = reason


class TxFailed(Exception):
    """Sent but not successful (reverted on chain, or not mined within the timeout)."""


@dataclass(frozen=True)
class Sent:
    tx_hash: str
    block_number: int
    gas_used: int
    effective_gas_price: int
    logs: tuple[dict[str, Any], ...] = ()  # the receipt's, as the node returned them


class Executor:
    def __init__(
        self,
        rpc: Rpc,
        account: LocalAccount,
        chain_id: int,
        to: str,
        *,
        gas_headroom_pct: int = 25,
        receipt_timeout: float = 120.0,
        poll_interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpc, self.account, self.chain_id, self.to = rpc, account, chain_id, to
        self.gas_headroom_pct = gas_headroom_pct
        self.receipt_timeout, self.poll_interval = receipt_timeout, poll_interval
        self.sleep, self.clock = sleep, clock
        self.fees_sent: dict[int, tuple[int, int]] = {}  # nonce -> (max fee, priority fee) we signed

    def simulate(self, label: str, data: str) -> int:
        """Gas the call needs at the pending state; ActionRejected if it would revert."""
        tx = {"from": self.account.address, "to": self.to, "data": data}
        call, estimate = self.rpc.batch([("eth_call", [tx, "pending"]), ("eth_estimateGas", [tx, "pending"])])
        for answer in (call, estimate):
            if isinstance(answer, RpcError):
                raise ActionRejected(label, revert_reason(answer))
        return int(estimate, 16)

    def send(self, label: str, data: str) -> Sent:
        """Simulate, then sign and send at the pending nonce and wait for the receipt."""
        return self._send(label, data, nonce=None)

    def replace(self, label: str, data: str | None, nonce: int) -> Sent:
        """Replace our stuck transaction at `nonce` with `data` (None: a 0-value transfer to
        ourselves that only frees the nonce), outbidding its fees, and wait for the receipt."""
        return self._send(label, data, nonce=nonce)

    def _send(self, label: str, data: str | None, nonce: int | None) -> Sent:
        me = self.account.address
        tx = {"from": me, "to": self.to, "data": data}
        requests: list[tuple[str, list[Any]]] = [
            ("eth_getTransactionCount", [me, "pending"]),
            ("eth_getBlockByNumber", ["latest", False]),
            ("eth_maxPriorityFeePerGas", []),
        ]
        if data is not None:
            requests = [("eth_call", [tx, "pending"]), ("eth_estimateGas", [tx, "pending"]), *requests]
        answers = self.rpc.batch(requests)
        if data is not None:
            for answer in answers[:2]:
                if isinstance(answer, RpcError):
                    raise ActionRejected(label, revert_reason(answer))
            gas = int(answers[1], 16) * (100 + self.gas_headroom_pct) // 100
        else:
            gas = CANCEL_GAS
        pending, head, tip = answers[-3:]
        for name, answer in (("nonce", pending), ("head", head)):
            if isinstance(answer, RpcError):
                raise TxFailed(f"{label}: cannot read the {name}: {answer.message}")
        priority = 10**9 if isinstance(tip, RpcError) else int(tip, 16)
        max_fee = 2 * int(head.get("baseFeePerGas", "0x0"), 16) + priority
        if nonce is None:
            nonce = int(pending, 16)
        else:  # a replacement: outbid what we signed (unknown after a restart: 2x the going rate)
            old_max, old_tip = self.fees_sent.get(nonce, (2 * max_fee, 2 * priority))
            priority = max(priority, old_tip * REPLACEMENT_BUMP_PCT // 100 + 1)
            max_fee = max(max_fee, old_max * REPLACEMENT_BUMP_PCT // 100 + 1, priority)
        signed = self.account.sign_transaction(
            {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": nonce,
                "to": HexStr(self.to if data is not None else me),
                "data": HexStr(data or "0x"),
                "value": 0,
                "gas": gas,
                "maxPriorityFeePerGas": priority,
                "maxFeePerGas": max_fee,
            }
        )
        tx_hash = self.rpc.call(
            "eth_sendRawTransaction", "0x" + signed.raw_transaction.hex().removeprefix("0x")
        )
        self.fees_sent[nonce] = (max_fee, priority)
        log.info("%s: sent %s (nonce %d)", label, tx_hash, nonce)
        return self._wait(label, tx_hash)

    def _wait(self, label: str, tx_hash: str) -> Sent:
        deadline = self.clock() + self.receipt_timeout
        while True:
            receipt = self.rpc.call("eth_getTransactionReceipt", tx_hash)
            if receipt:
                if int(receipt["status"], 16) != 1:
                    raise TxFailed(f"{label}: {tx_hash} reverted on chain")
                return Sent(
                    tx_hash,
                    int(receipt["blockNumber"], 16),
                    int(receipt["gasUsed"], 16),
                    int(receipt.get("effectiveGasPrice", "0x0"), 16),
                    tuple(receipt.get("logs", ())),
                )
            if self.clock() >= deadline:
                raise TxFailed(
                    f"{label}: {tx_hash} not mined within {self.receipt_timeout:g}s (left in flight)"
                )
            self.sleep(self.poll_interval)
