"""The reference market's funding history, from chain.

The market emits `FundingRateUpdated(old_rate, new_rate, funding_index)` whenever its
rate changes; between changes the rate is constant. At start the keeper reads those events
since the deployment (the logs, then their blocks' timestamps), so a restarted keeper sees
the same history as the one before it. After that, each tick's snapshot carries the live
rate: while it is the rate the history already ends with, nothing is read; when it
differs, the tick reads the new events (two more requests, on the rare tick where the rate
changed), so the history stays exact even after the keeper was cut off for hours.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from eth_abi.abi import decode
from eth_utils.crypto import keccak

from keeper.chain import ChainReadError
from keeper.rpc import Rpc, RpcError
from keeper.sources.base import FundingView, Limits
from keeper.sources.onchain import history_from_rate_updates, onchain_funding_info

TOPIC = "0x" + keccak(text="FundingRateUpdated(int256,int256,int256)").hex()


@dataclass
class ReferenceHistory:
    """Rate changes as (timestamp, new rate), oldest first, since `start`."""

    start: int  # the deployment's block time
    initial_rate: int  # the rate in force at `start`
    changes: list[tuple[int, int]] = field(default_factory=list)

    synced_block: int = 0  # logs read up to here

    @classmethod
    def backfill(cls, rpc: Rpc, perp_market: str, from_block: int) -> ReferenceHistory:
        """Every rate change since `from_block` (the deployment): two requests."""
        (start,) = _timestamps(rpc, [from_block]).values()
        history = cls(start, 0, synced_block=from_block - 1)
        events = history._read_events(rpc, perp_market, from_block, "latest")
        if events:
            history.initial_rate = events[0][1]
        history.changes = [(t, new) for t, _, new in events]
        return history

    def sync(self, rpc: Rpc, perp_market: str, to_block: int) -> None:
        """Reads the changes since the last sync (the tick saw a rate it did not know)."""
        events = self._read_events(rpc, perp_market, self.synced_block + 1, hex(to_block))
        self.changes.extend((t, new) for t, _, new in events if not self.changes or t >= self.changes[-1][0])
        self.synced_block = max(self.synced_block, to_block)

    def _read_events(
        self, rpc: Rpc, perp_market: str, from_block: int, to_block: str
    ) -> list[tuple[int, int, int]]:
        query = {"address": perp_market, "topics": [TOPIC], "fromBlock": hex(from_block), "toBlock": to_block}
        logs = rpc.call("eth_getLogs", query)
        if not isinstance(logs, list):
            raise ChainReadError(f"eth_getLogs: unexpected answer {str(logs)[:80]}")
        times = _timestamps(rpc, sorted({int(log["blockNumber"], 16) for log in logs}))
        events = []
        for log in logs:
            number = int(log["blockNumber"], 16)
            old, new, _ = decode(["int256", "int256", "int256"], bytes.fromhex(log["data"][2:]))
            events.append((times[number], int(old), int(new)))
            self.synced_block = max(self.synced_block, number)
        return events

    def observe(self, timestamp: int, rate: int) -> None:
        """A snapshot's live rate when `sync` found no event for it (a node that lost logs):
        recorded at the snapshot's time, the best the keeper knows."""
        if rate != self.rate_at(timestamp) and timestamp >= self.start:
            self.changes.append((max(timestamp, self.changes[-1][0] if self.changes else self.start), rate))

    def rate_at(self, timestamp: int) -> int:
        i = bisect_right(self.changes, (timestamp, 2**255))
        return self.changes[i - 1][1] if i else self.initial_rate

    def view(
        self,
        *,
        block_timestamp: int,
        funding_rate: int,
        index_price_e8: int,
        window: int,
        limits: Limits,
        market: str = "ETH-USD",
    ) -> FundingView:
        """The market's reading at a snapshot plus its prints over the last `window` s."""
        self.observe(block_timestamp, funding_rate)
        info = onchain_funding_info(
            funding_rate=funding_rate,
            index_price_e8=index_price_e8,
            mark_price_e8=index_price_e8,
            block_timestamp=block_timestamp,
            market=market,
            limits=limits,
        )
        start = max(self.start, block_timestamp - window)
        if block_timestamp <= start:
            return FundingView(info)
        updates = [(t, r) for t, r in self.changes if start < t <= block_timestamp]
        history = history_from_rate_updates(
            self.rate_at(start), start, updates, block_timestamp, market=market, limits=limits
        )
        return FundingView(info, history)


def _timestamps(rpc: Rpc, blocks: list[int]) -> dict[int, int]:
    if not blocks:
        return {}
    headers = rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in blocks])
    times: dict[int, int] = {}
    for number, header in zip(blocks, headers, strict=True):
        if isinstance(header, RpcError) or not isinstance(header, dict):
            raise ChainReadError(f"block {number}: cannot read its header")
        times[number] = int(header["timestamp"], 16)
    return times
