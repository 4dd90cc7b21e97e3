"""The contracts' ABI as the keeper and the chain replay speak it, in one place: calldata
for a signature, view calls and their return types (the perp market's position tuple, a
Chainlink round), the hedge's keeper calls, and revert reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.abi import function_signature_to_4byte_selector

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
    types = [t for t in signature[signature.index("(") + 1 : -1].split(",") if t]
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
