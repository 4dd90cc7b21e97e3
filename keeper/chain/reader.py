"""Reading the vault, its venue and the keeper's account from a node, in few round trips.

A tick costs two requests: the latest block header, then one batch of `eth_call`s pinned
to that block (so every value comes from the same state: the vault's shares, its hedge's
books, the hedge's perp account at the venue, both feeds, the pool) plus the keeper's
confirmed and pending nonces. Values stay in the contracts' integer units; `keeper.core.state` turns them
into what the strategy reads. What never changes after deploy (the rules, from the
getters of the vault and of its hedge, decimals, the venue's fees) is read once by
`read_static`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from keeper.chain.abi import POSITION_FIELDS, Call, position_call, reserves_call, round_call
from keeper.core.rules import VaultRules
from keeper.net.rpc import Rpc, RpcError

# Which contract's getter each rule comes from (`keeper.core.rules.VaultRules` splits them the
# same way): the vault enforces the entry/exit and fee rules, the hedge the trading ones.
# `max_oracle_age` is in both (the same value); the vault's is read.
VAULT_RULES = VaultRules.VAULT_FIELDS
HEDGE_RULES = tuple(name for name in VaultRules.HEDGE_FIELDS if name not in VAULT_RULES)
RULE_NAMES = VAULT_RULES + HEDGE_RULES


class ChainReadError(Exception):
    """A value the keeper needs could not be read (the message names it)."""


@dataclass(frozen=True)
class Addresses:
    vault: str
    hedge: str
    asset: str
    base: str
    price_feed: str
    asset_feed: str
    perp_market: str
    spot_pool: str
    keeper: str


@dataclass(frozen=True)
class StaticInfo:
    """What cannot change after deploy."""

    rules: dict[str, int]  # every `VaultRules` field, from the getter of the contract enforcing it
    asset_decimals: int
    base_decimals: int
    taker_fee_ppm: int
    initial_margin_bps: int
    maintenance_margin_bps: int
    spot_fee_bps: int
    is_keeper: bool


@dataclass(frozen=True)
class Snapshot:
    """One block's view of the vault, its hedge, the venue and the keeper's nonces."""

    block_number: int
    block_timestamp: int
    # the vault
    total_assets: int
    total_supply: int
    idle: int
    is_shutdown: bool
    paused: bool
    # the hedge
    spot_base: int
    booked_short: int
    last_rebalance_time: int
    budget_window_start: int
    budget_nav: int
    budget_spent: int
    # the venue: the hedge's perp account (the truth about the short)
    position: dict[str, int]
    funding_rate: int
    perp_depth: int
    premium: int  # the mark's premium over the index, 1e18 = 100 %
    oracle_answer: int
    oracle_updated_at: int
    asset_answer: int  # the asset's own USD feed (the vault's de-peg guard)
    asset_updated_at: int
    reserve_base: int
    reserve_asset: int
    nonce_latest: int
    nonce_pending: int

    @property
    def short_size(self) -> int:
        """The venue's short of the hedge now (`BasisHedge.short_size()`, without a call)."""
        return max(-self.position["size"], 0)

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
    calls = [Call(name, a.vault, f"{name}()") for name in VAULT_RULES]
    calls += [Call(name, a.hedge, f"{name}()") for name in HEDGE_RULES]
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


def read_links(rpc: Rpc, vault: str) -> dict[str, str]:
    """The vault's immutable links (`hedge()`, `asset_oracle()`), checksummed: where a
    manifest does not name them, and to check one that does."""
    calls = [
        Call("hedge", vault, "hedge()", returns=("address",)),
        Call("asset_oracle", vault, "asset_oracle()", returns=("address",)),
    ]
    hedge, asset_feed = run_calls(rpc, calls, "latest")
    return {"hedge": to_checksum_address(hedge), "asset_feed": to_checksum_address(asset_feed)}


def tick_calls(a: Addresses) -> list[Call]:
    vault, hedge = a.vault, a.hedge
    return [
        Call("totalAssets", vault, "totalAssets()"),
        Call("totalSupply", vault, "totalSupply()"),
        Call("idle", vault, "idle()"),
        Call("is_shutdown", vault, "is_shutdown()", returns=("bool",)),
        Call("paused", vault, "paused()", returns=("bool",)),
        Call("spot_base", hedge, "spot_base()"),
        Call("booked_short", hedge, "booked_short()"),
        Call("last_rebalance_time", hedge, "last_rebalance_time()"),
        Call("budget_window_start", hedge, "budget_window_start()"),
        Call("budget_nav", hedge, "budget_nav()"),
        Call("budget_spent", hedge, "budget_spent()"),
        position_call(a.perp_market, hedge),
        Call("funding_rate", a.perp_market, "funding_rate()", returns=("int256",)),
        Call("depth", a.perp_market, "depth()"),
        Call("premium", a.perp_market, "premium()", returns=("int256",)),
        round_call("latestRoundData", a.price_feed),
        round_call("asset latestRoundData", a.asset_feed),
        reserves_call(a.spot_pool),
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
        total_assets, total_supply, idle, is_shutdown, paused,
        spot_base, booked_short, last_rebalance_time, budget_window_start, budget_nav, budget_spent,
        position, funding_rate, perp_depth, premium, oracle, asset, reserves, nonce_latest, nonce_pending,
    ) = run_calls(rpc, tick_calls(a), block, nonces)  # fmt: skip
    return Snapshot(
        block_number=int(block, 16), block_timestamp=int(head["timestamp"], 16),
        total_assets=total_assets, total_supply=total_supply, idle=idle,
        is_shutdown=is_shutdown, paused=paused,
        spot_base=spot_base, booked_short=booked_short, last_rebalance_time=last_rebalance_time,
        budget_window_start=budget_window_start, budget_nav=budget_nav, budget_spent=budget_spent,
        position=dict(zip(POSITION_FIELDS, position, strict=True)),
        funding_rate=funding_rate, perp_depth=perp_depth, premium=premium,
        oracle_answer=oracle[1], oracle_updated_at=oracle[3],
        asset_answer=asset[1], asset_updated_at=asset[3],
        reserve_base=reserves[0], reserve_asset=reserves[1],
        nonce_latest=int(nonce_latest, 16), nonce_pending=int(nonce_pending, 16),
    )  # fmt: skip
