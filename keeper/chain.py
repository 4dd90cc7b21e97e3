"""Reading the vault, its venue and the keeper's account from a node, in few round trips.

A tick costs two requests: the latest block header, then one batch of `eth_call`s pinned
to that block (so every value comes from the same state) plus the keeper's confirmed and
pending nonces. Values stay in the contracts' integer units; `keeper.state` turns them
into what the strategy reads. What never changes after deploy (the vault's rules,
decimals, the venue's fees) is read once by `read_static`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from keeper.rpc import Rpc, RpcError

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
RULE_NAMES = (
    "max_leverage_bps",
    "min_margin_ratio_bps",
    "critical_margin_ratio_bps",
    "max_delta_bps",
    "max_slippage_bps",
    "max_oracle_age",
    "max_nav_loss_bps",
    "max_management_fee_bps",
    "max_performance_fee_bps",
    "deposit_cap_ceiling",
    "dead_man_interval",
)


class ChainReadError(Exception):
    """A value the keeper needs could not be read (the message names it)."""


@dataclass(frozen=True)
class Call:
    """One view call: `signature` like "equity(address)", its args, its return types."""

    name: str
    to: str
    signature: str
    args: tuple[Any, ...] = ()
    returns: tuple[str, ...] = ("uint256",)

    def data(self) -> str:
        arg_types = self.signature[self.signature.index("(") + 1 : -1]
        types = [t for t in arg_types.split(",") if t]
        selector = function_signature_to_4byte_selector(self.signature)
        return "0x" + (selector + encode(types, list(self.args))).hex()

    def decode(self, raw: str) -> Any:
        values = decode(list(self.returns), bytes.fromhex(raw.removeprefix("0x")))
        return values[0] if len(values) == 1 else tuple(values)


@dataclass(frozen=True)
class Addresses:
    vault: str
    asset: str
    base: str
    price_feed: str
    perp_market: str
    spot_pool: str
    keeper: str


@dataclass(frozen=True)
class StaticInfo:
    """What cannot change after deploy."""

    rules: dict[str, int]
    asset_decimals: int
    base_decimals: int
    taker_fee_ppm: int
    initial_margin_bps: int
    maintenance_margin_bps: int
    spot_fee_bps: int
    is_keeper: bool


@dataclass(frozen=True)
class Snapshot:
    """One block's view of the vault, the venue and the keeper's nonces."""

    block_number: int
    block_timestamp: int
    total_assets: int
    total_supply: int
    idle: int
    spot_base: int
    short_size: int
    is_shutdown: bool
    paused: bool
    last_rebalance_time: int
    position: dict[str, int]
    funding_rate: int
    perp_depth: int
    oracle_answer: int
    oracle_updated_at: int
    reserve_base: int
    reserve_asset: int
    nonce_latest: int
    nonce_pending: int

    @property
    def tx_in_flight(self) -> bool:
        """The keeper has a transaction the chain has not included yet."""
        return self.nonce_pending > self.nonce_latest


def run_calls(
    rpc: Rpc, calls: Sequence[Call], block: str, extra: Sequence[tuple[str, list[Any]]] = ()
) -> list[Any]:
    """`calls` (decoded) and `extra` raw requests in one batch at `block`."""
    requests = [("eth_call", [{"to": c.to, "data": c.data()}, block]) for c in calls]
    results = rpc.batch([*requests, *extra])
    decoded: list[Any] = []
    for call, raw in zip(calls, results, strict=False):
        if isinstance(raw, RpcError):
            raise ChainReadError(f"{call.name}: {raw.message}")
        if not isinstance(raw, str) or raw in ("0x", ""):
            raise ChainReadError(f"{call.name}: empty answer (is {call.to} the right contract?)")
        try:
            decoded.append(call.decode(raw))
        except Exception as err:  # eth_abi raises several types for short or bad data
            raise ChainReadError(f"{call.name}: undecodable answer ({err})") from None
    for (method, _), raw in zip(extra, results[len(calls) :], strict=False):
        if isinstance(raw, RpcError):
            raise ChainReadError(f"{method}: {raw.message}")
        decoded.append(raw)
    return decoded


def read_static(rpc: Rpc, a: Addresses) -> StaticInfo:
    calls = [Call(name, a.vault, f"{name}()") for name in RULE_NAMES]
    calls += [
        Call("asset decimals", a.asset, "decimals()", returns=("uint8",)),
        Call("base decimals", a.base, "decimals()", returns=("uint8",)),
        Call("taker_fee_ppm", a.perp_market, "taker_fee_ppm()"),
        Call("initial_margin_bps", a.perp_market, "initial_margin_bps()"),
        Call("maintenance_margin_bps", a.perp_market, "maintenance_margin_bps()"),
        Call("fee_bps", a.spot_pool, "fee_bps()"),
        Call("is_keeper", a.vault, "is_keeper(address)", (to_checksum_address(a.keeper),), ("bool",)),
    ]
    values = run_calls(rpc, calls, "latest")
    n = len(RULE_NAMES)
    return StaticInfo(dict(zip(RULE_NAMES, values[:n], strict=True)), *values[n:])


def tick_calls(a: Addresses) -> list[Call]:
    vault = a.vault
    return [
        Call("totalAssets", vault, "totalAssets()"),
        Call("totalSupply", vault, "totalSupply()"),
        Call("idle", vault, "idle()"),
        Call("spot_base", vault, "spot_base()"),
        Call("short_size", vault, "short_size()"),
        Call("is_shutdown", vault, "is_shutdown()", returns=("bool",)),
        Call("paused", vault, "paused()", returns=("bool",)),
        Call("last_rebalance_time", vault, "last_rebalance_time()"),
        Call("position", a.perp_market, "position(address)", (vault,), POSITION_TYPES),
        Call("funding_rate", a.perp_market, "funding_rate()", returns=("int256",)),
        Call("depth", a.perp_market, "depth()"),
        Call(
            "latestRoundData",
            a.price_feed,
            "latestRoundData()",
            returns=("uint80", "int256", "uint256", "uint256", "uint80"),
        ),
        Call("get_reserves", a.spot_pool, "get_reserves()", returns=("uint256", "uint256")),
    ]


def read_snapshot(rpc: Rpc, a: Addresses) -> Snapshot:
    """Two round trips: the head block, then everything at that block."""
    head = rpc.call("eth_getBlockByNumber", "latest", False)
    if not isinstance(head, dict) or "number" not in head:
        raise ChainReadError(f"eth_getBlockByNumber: unexpected answer {str(head)[:80]}")
    block = head["number"]
    nonces = [
        ("eth_getTransactionCount", [a.keeper, block]),
        ("eth_getTransactionCount", [a.keeper, "pending"]),
    ]
    (
        total_assets,
        total_supply,
        idle,
        spot_base,
        short_size,
        is_shutdown,
        paused,
        last_rebalance_time,
        position,
        funding_rate,
        perp_depth,
        round_data,
        reserves,
        nonce_latest,
        nonce_pending,
    ) = run_calls(rpc, tick_calls(a), block, nonces)
    return Snapshot(
        block_number=int(block, 16),
        block_timestamp=int(head["timestamp"], 16),
        total_assets=total_assets,
        total_supply=total_supply,
        idle=idle,
        spot_base=spot_base,
        short_size=short_size,
        is_shutdown=is_shutdown,
        paused=paused,
        last_rebalance_time=last_rebalance_time,
        position=dict(zip(POSITION_FIELDS, position, strict=True)),
        funding_rate=funding_rate,
        perp_depth=perp_depth,
        oracle_answer=round_data[1],
        oracle_updated_at=round_data[3],
        reserve_base=reserves[0],
        reserve_asset=reserves[1],
        nonce_latest=int(nonce_latest, 16),
        nonce_pending=int(nonce_pending, 16),
    )
