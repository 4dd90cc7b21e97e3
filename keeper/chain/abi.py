"""The contracts' ABI as the keeper and the chain replay speak it, in one place: calldata
for a signature, view calls and their return types (the perp market's position tuple, a
Chainlink round, the pool's reserves), the hedge's keeper calls, the events read from logs,
and revert reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.abi import event_signature_to_log_topic, function_signature_to_4byte_selector

from keeper.net.rpc import RpcError

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
# `PerpMarket.position(address)`, in the order it returns them.
POSITION_FIELDS = (
    "size",
    "entry_price_e8",
    "margin",
    "unrealized_pnl",
    "accrued_funding",
    "equity",
    "notional",
    "margin_ratio_bps",
)
POSITION_TYPES = ("int256", "uint256", "uint256", "int256", "int256", "int256", "uint256", "uint256")
ROUND_TYPES = ("uint80", "int256", "uint256", "uint256", "uint80")


def calldata(signature: str, *args: Any) -> str:
    types = _types(signature)
    return "0x" + (function_signature_to_4byte_selector(signature) + encode(types, list(args))).hex()


@dataclass(frozen=True)
class Call:
    """One view call: `signature` like "equity(address)", its args, its return types."""

    name: str
    to: str
    signature: str
    args: tuple[Any, ...] = ()
    returns: tuple[str, ...] = ("uint256",)

    def data(self) -> str:
        return calldata(self.signature, *self.args)

    def decode(self, raw: str) -> Any:
        values = decode(list(self.returns), bytes.fromhex(raw.removeprefix("0x")))
        return values[0] if len(values) == 1 else tuple(values)


def _types(signature: str) -> list[str]:
    return [t for t in signature[signature.index("(") + 1 : -1].split(",") if t]


def position_call(perp_market: str, account: str) -> Call:
    return Call("position", perp_market, "position(address)", (account,), POSITION_TYPES)


def round_call(name: str, feed: str) -> Call:
    """A Chainlink-style feed's `latestRoundData()` (answer at [1], updatedAt at [3])."""
    return Call(name, feed, "latestRoundData()", returns=ROUND_TYPES)


def reserves_call(spot_pool: str) -> Call:
    return Call("get_reserves", spot_pool, "get_reserves()", returns=("uint256", "uint256"))


class Event:
    """An event: its topic, and its non-indexed fields decoded from a log's data. `indexed`
    is how many of the leading parameters are indexed (in the topics, not the data)."""

    def __init__(self, signature: str, indexed: int) -> None:
        self.signature = signature
        self.topic = "0x" + event_signature_to_log_topic(signature).hex()
        self.data_types = _types(signature)[indexed:]

    def data(self, log: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(decode(self.data_types, bytes.fromhex(log["data"][2:])))


SWAP = Event("Swap(address,address,address,uint256,uint256,uint256,uint256)", indexed=3)
# (size_delta, fill, index, mark, fee, realized PnL, size, cost, margin)
POSITION_MODIFIED = Event(
    "PositionModified(address,int256,uint256,uint256,uint256,uint256,int256,int256,int256,uint256)", indexed=1
)
FUNDING_SETTLED = Event("FundingSettled(address,int256,int256)", indexed=1)
FUNDING_RATE_UPDATED = Event("FundingRateUpdated(int256,int256,int256)", indexed=0)


def topic_address(address: str) -> str:
    """An indexed address as it stands in a log's topics."""
    return "0x" + address.lower().removeprefix("0x").rjust(64, "0")


def rebalance_calldata(target_short: int, target_margin: int, max_slippage_bps: int, deadline: int) -> str:
    return calldata(
        "rebalance(uint256,uint256,uint256,uint256)", target_short, target_margin, max_slippage_bps, deadline
    )


def emergency_calldata() -> str:
    return calldata("emergency_deleverage()")


def unwind_calldata(max_size: int) -> str:
    return calldata("unwind(uint256)", max_size)


def revert_reason(err: RpcError) -> str:
    """The revert string of an `eth_call`/`eth_estimateGas` error, as nodes report it."""
    data = err.data.get("data") if isinstance(err.data, dict) else err.data
    if isinstance(data, str) and data.startswith("0x" + ERROR_SELECTOR.hex()):
        try:
            (reason,) = decode(["string"], bytes.fromhex(data[10:]))
            return str(reason)
        except Exception:  # undecodable: fall back to the node's message
            pass
    return err.message.removeprefix("execution reverted: ").removeprefix("execution reverted") or "reverted"
