"""The official Uniswap v3 contracts, deployed from their npm artifacts, and the vault's
adapter on a pool of them (`contracts/venues/UniswapV3Spot.vy`).

`@uniswap/v3-core@1.0.1` and `@uniswap/v3-periphery@1.4.4` (pinned in package.json, read
from `node_modules/` by path) ship the compiled contracts that run on mainnet; they deploy on
anvil unchanged (the pool bytecode's keccak is periphery's `POOL_INIT_CODE_HASH`). No
Solidity compiler is involved. `deploy_uniswap_v3` deploys the factory, `SwapRouter`,
`QuoterV2` and `NonfungiblePositionManager`, creates and initializes a pool at the oracle
price, seeds liquidity through the position manager (full range by default, or a
concentrated tick range) and deploys the adapter the hedge trades through.
`bind_existing` checks addresses of a deployment someone else made (a public testnet).

The tick and price math here is v3-core's (`TickMath`), in Python integers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from math import isqrt
from pathlib import Path
from typing import Any

from keeper.core.errors import UserError
from keeper.core.fixed import PRICE_UNIT

NODE_MODULES_ENV = "BASIS_NODE_MODULES"
CORE = "@uniswap/v3-core/artifacts/contracts"
PERIPHERY = "@uniswap/v3-periphery/artifacts/contracts"
ARTIFACTS = {
    "UniswapV3Factory": f"{CORE}/UniswapV3Factory.sol/UniswapV3Factory.json",
    "UniswapV3Pool": f"{CORE}/UniswapV3Pool.sol/UniswapV3Pool.json",
    "SwapRouter": f"{PERIPHERY}/SwapRouter.sol/SwapRouter.json",
    "QuoterV2": f"{PERIPHERY}/lens/QuoterV2.sol/QuoterV2.json",
    "NonfungiblePositionManager": (
        f"{PERIPHERY}/NonfungiblePositionManager.sol/NonfungiblePositionManager.json"
    ),
}
# periphery's PoolAddress.POOL_INIT_CODE_HASH: the pool artifact must hash to it, or the
# router, quoter and position manager compute other pool addresses than the factory's.
POOL_INIT_CODE_HASH = "e34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"

# v3-core TickMath bounds, and the fee tiers a fresh factory enables (fee pips: spacing).
MIN_TICK = -887272
MAX_TICK = 887272
FEE_TIERS = {500: 10, 3000: 60, 10000: 200}
Q96 = 2**96
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
V3_KEYS = ("factory", "router", "quoter", "position_manager", "pool")
# Seconds a deploy's position-manager mint may wait in the mempool.
MINT_DEADLINE = 3_600


def node_modules() -> Path:
    """Where the npm packages are: $BASIS_NODE_MODULES, else the project's node_modules."""
    configured = os.environ.get(NODE_MODULES_ENV)
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "node_modules"


@cache
def artifact(name: str) -> dict[str, Any]:
    """The Hardhat artifact (abi, bytecode) of one official contract."""
    path = node_modules() / ARTIFACTS[name]
    if not path.is_file():
        raise UserError(
            f"{path} is missing: the Uniswap v3 artifacts come from npm "
            "(run `make setup`, which runs `npm ci`)"
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def container(name: str) -> Any:
    """An ape ContractContainer for an official contract (deployable, or `.at(address)`)."""
    from ape.contracts import ContractContainer
    from ethpm_types import ContractType

    data = artifact(name)
    contract_type = ContractType.model_validate(
        {
            "contractName": name,
            "abi": data["abi"],
            "deploymentBytecode": {"bytecode": data["bytecode"]},
            "runtimeBytecode": {"bytecode": data["deployedBytecode"]},
        }
    )
    return ContractContainer(contract_type)


def full_range(fee: int) -> tuple[int, int]:
    """The widest ticks a position may use at `fee`'s spacing (-887270..887270 at 500)."""
    spacing = spacing_of(fee)
    return (-(MAX_TICK // spacing) * spacing, (MAX_TICK // spacing) * spacing)


def spacing_of(fee: int) -> int:
    if fee not in FEE_TIERS:
        raise UserError(
            f"fee tier {fee} is not one a fresh v3 factory enables ({', '.join(map(str, FEE_TIERS))})"
        )
    return FEE_TIERS[fee]


_TICK_FACTORS = (
    0xFFF97272373D413259A46990580E213A,
    0xFFF2E50F5F656932EF12357CF3C7FDCC,
    0xFFE5CACA7E10E4E61C3624EAA0941CD0,
    0xFFCB9843D60F6159C9DB58835C926644,
    0xFF973B41FA98C081472E6896DFB254C0,
    0xFF2EA16466C96A3843EC78B326B52861,
    0xFE5DEE046A99A2A811C461F1969C3053,
    0xFCBE86C7900A88AEDCFFC83B479AA3A4,
    0xF987A7253AC413176F2B074CF7815E54,
    0xF3392B0822B70005940C7A398E4B70F3,
    0xE7159475A2C29B7443B29C7FA6E889D9,
    0xD097F3BDFD2022B8845AD8F792AA5825,
    0xA9F746462D870FDF8A65DC1F90E061E5,
    0x70D869A156D2A1B890BB3DF62BAF32F7,
    0x31BE135F97D08FD981231505542FCFA6,
    0x9AA508B5B7A84E1C677DE54F3E99BC9,
    0x5D6AF8DEDB81196699C329225EE604,
    0x2216E584F5FA1EA926041BEDFE98,
    0x48A170391F7DC42444E8FA2,
)


def sqrt_ratio_at_tick(tick: int) -> int:
    """v3-core `TickMath.getSqrtRatioAtTick`, exactly."""
    a = abs(tick)
    if a > MAX_TICK:
        raise ValueError(f"tick {tick} out of range")
    ratio = 0xFFFCB933BD6FAD37AA2D162D1A594001 if a & 1 else 1 << 128
    for bit, factor in enumerate(_TICK_FACTORS, start=1):
        if a & (1 << bit):
            ratio = (ratio * factor) >> 128
    if tick > 0:
        ratio = (2**256 - 1) // ratio
    return (ratio >> 32) + (1 if ratio % (1 << 32) else 0)


def tick_at_sqrt_ratio(sqrt_price_x96: int) -> int:
    """v3-core `TickMath.getTickAtSqrtRatio`: the greatest tick whose ratio is <= it."""
    lo, hi = MIN_TICK, MAX_TICK
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sqrt_ratio_at_tick(mid) <= sqrt_price_x96:
            lo = mid
        else:
            hi = mid - 1
    return lo


def sqrt_price_x96(price_e8: int, base_decimals: int, asset_decimals: int, base_is_token0: bool) -> int:
    """The pool's sqrtPriceX96 for an asset-per-base price (8 decimals): sqrt(token1 wei
    per token0 wei) * 2**96, rounded down."""
    # asset wei per base wei = price_e8 * 10**asset_decimals / (PRICE_UNIT * 10**base_decimals)
    num = price_e8 * 10**asset_decimals
    den = PRICE_UNIT * 10**base_decimals
    if not base_is_token0:
        num, den = den, num
    return isqrt(num * 2**192 // den)


def range_ticks(
    price_e8: int, width_bps: int, fee: int, base_decimals: int, asset_decimals: int, base_is_token0: bool
) -> tuple[int, int]:
    """A concentrated range +/- `width_bps` around `price_e8`, on the fee tier's spacing."""
    spacing = spacing_of(fee)
    lo_price = price_e8 * (10_000 - width_bps) // 10_000
    hi_price = price_e8 * (10_000 + width_bps) // 10_000
    ticks = sorted(
        tick_at_sqrt_ratio(sqrt_price_x96(p, base_decimals, asset_decimals, base_is_token0))
        for p in (lo_price, hi_price)
    )
    lower = ticks[0] // spacing * spacing
    upper = -(-ticks[1] // spacing) * spacing
    return lower, upper


@dataclass
class UniswapV3:
    """One v3 deployment and the vault's adapter on one of its pools (ape contracts)."""

    factory: Any
    router: Any
    quoter: Any
    position_manager: Any
    pool: Any
    adapter: Any  # UniswapV3Spot: what the hedge's `spot_pool` is
    fee: int  # pips
    tick_lower: int | None = None  # the seeded position (None: not ours)
    tick_upper: int | None = None
    position_id: int | None = None

    def addresses(self) -> dict[str, str]:
        """Every contract's address (the adapter as `spot_pool`), for the deploy's records."""
        contracts = {
            "factory": self.factory,
            "router": self.router,
            "quoter": self.quoter,
            "position_manager": self.position_manager,
            "pool": self.pool,
            "spot_pool": self.adapter,
        }
        return {key: str(c.address) for key, c in contracts.items() if c is not None}

    def record(self) -> dict[str, Any]:
        """What the manifest keeps (`Manifest.uniswap_v3`)."""
        addresses = self.addresses()
        return {
            **{key: addresses.get(key) for key in V3_KEYS},
            "fee": self.fee,
            "tick_lower": self.tick_lower,
            "tick_upper": self.tick_upper,
            "position_id": self.position_id,
        }


def _check_pool_hash() -> None:
    from eth_utils.crypto import keccak

    digest = keccak(hexstr=artifact("UniswapV3Pool")["bytecode"]).hex()
    if digest.removeprefix("0x") != POOL_INIT_CODE_HASH:
        raise UserError(
            f"the UniswapV3Pool artifact hashes to {digest}, not periphery's POOL_INIT_CODE_HASH "
            f"{POOL_INIT_CODE_HASH}: reinstall the pinned npm packages (`npm ci`)"
        )


def deploy_core(deployer: Any, weth9: str) -> tuple[Any, Any, Any, Any]:
    """Factory, SwapRouter, QuoterV2 and NonfungiblePositionManager (4 transactions).
    `weth9` is only used for native-ETH paths, which the vault never takes: any ERC-20
    stands in. The position manager's token descriptor (only `tokenURI` reads it) is unset."""
    _check_pool_hash()
    factory = deployer.deploy(container("UniswapV3Factory"))
    router = deployer.deploy(container("SwapRouter"), factory.address, weth9)
    quoter = deployer.deploy(container("QuoterV2"), factory.address, weth9)
    manager = deployer.deploy(container("NonfungiblePositionManager"), factory.address, weth9, ZERO_ADDRESS)
    return factory, router, quoter, manager


def deploy_uniswap_v3(
    project: Any,
    deployer: Any,
    base: Any,
    asset: Any,
    price_e8: int,
    base_amount: int,
    asset_amount: int,
    *,
    fee: int = 500,
    ticks: tuple[int, int] | None = None,
) -> UniswapV3:
    """Deploys v3 (factory and periphery), creates and initializes the (base, asset) pool
    at `price_e8`, mints a position of at most `base_amount` / `asset_amount` wei from
    `deployer` (which must hold them) over `ticks` (default: full range) and deploys the
    adapter: 11 transactions."""
    spacing = spacing_of(fee)
    lower, upper = ticks or full_range(fee)
    if lower % spacing or upper % spacing or not MIN_TICK <= lower < upper <= MAX_TICK:
        raise UserError(f"ticks {lower}..{upper} are not a range on fee {fee}'s spacing of {spacing}")
    factory, router, quoter, manager = deploy_core(deployer, base.address)
    factory.createPool(base.address, asset.address, fee, sender=deployer)
    pool = container("UniswapV3Pool").at(factory.getPool(base.address, asset.address, fee))
    base_is_token0 = int(base.address, 16) < int(asset.address, 16)
    sqrt_x96 = sqrt_price_x96(price_e8, int(base.decimals()), int(asset.decimals()), base_is_token0)
    pool.initialize(sqrt_x96, sender=deployer)
    base.approve(manager.address, base_amount, sender=deployer)
    asset.approve(manager.address, asset_amount, sender=deployer)
    token0, token1 = (base, asset) if base_is_token0 else (asset, base)
    amount0, amount1 = (base_amount, asset_amount) if base_is_token0 else (asset_amount, base_amount)
    deadline = int(deployer.provider.get_block("latest").timestamp) + MINT_DEADLINE
    receipt = manager.mint(
        (
            token0.address,
            token1.address,
            fee,
            lower,
            upper,
            amount0,
            amount1,
            0,
            0,
            deployer.address,
            deadline,
        ),
        sender=deployer,
    )
    position_id = next((int(log.tokenId) for log in receipt.decode_logs(manager.IncreaseLiquidity)), None)
    adapter = deployer.deploy(
        project.UniswapV3Spot, factory.address, pool.address, base.address, asset.address, fee
    )
    return UniswapV3(
        factory=factory,
        router=router,
        quoter=quoter,
        position_manager=manager,
        pool=pool,
        adapter=adapter,
        fee=fee,
        tick_lower=lower,
        tick_upper=upper,
        position_id=position_id,
    )


def bind_existing(
    project: Any, provider: Any, addresses: dict[str, str], base: str, asset: str, fee: int
) -> UniswapV3:
    """Contract objects for a v3 deployment someone else made, each checked before any
    transaction: code at every address, the pool is the factory's pool for (base, asset,
    fee), its tokens and fee tier, and it is initialized. `addresses` holds factory, pool,
    router, quoter (position_manager optional) and spot_pool (the adapter, when one is deployed already)."""
    for key in ("factory", "pool", "router", "quoter"):
        if not addresses.get(key):
            raise UserError(f"venue.spot.existing.{key} is required")
    for key, address in addresses.items():
        if address and not provider.get_code(address):
            raise UserError(f"venue.spot.existing.{key}: no contract at {address} on this chain")
    factory = container("UniswapV3Factory").at(addresses["factory"])
    pool = container("UniswapV3Pool").at(addresses["pool"])
    check_pool(factory, pool, base, asset, fee)
    adapter = project.UniswapV3Spot.at(addresses["spot_pool"]) if addresses.get("spot_pool") else None
    manager_address = addresses.get("position_manager")
    return UniswapV3(
        factory=factory,
        router=container("SwapRouter").at(addresses["router"]),
        quoter=container("QuoterV2").at(addresses["quoter"]),
        position_manager=container("NonfungiblePositionManager").at(manager_address)
        if manager_address
        else None,
        pool=pool,
        adapter=adapter,
        fee=fee,
    )


def check_pool(factory: Any, pool: Any, base: str, asset: str, fee: int) -> None:
    """One UserError naming the first thing about the pool that does not fit the config
    (what the adapter's constructor would revert on, said before any transaction)."""

    def read(what: str, key: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:  # a revert or an undecodable answer: not the contract named
            raise UserError(
                f"venue.spot.existing.{key}: {what} reverted at {fn.contract.address}: is it the v3 {key}?"
            ) from None

    tokens = {
        str(read("token0()", "pool", pool.token0)).lower(),
        str(read("token1()", "pool", pool.token1)).lower(),
    }
    if tokens != {base.lower(), asset.lower()}:
        raise UserError(
            f"venue.spot: pool {pool.address} trades {pool.token0()}/{pool.token1()}, not the vault's base "
            f"{base} and asset {asset}"
        )
    actual_fee = int(read("fee()", "pool", pool.fee))
    if actual_fee != fee:
        raise UserError(f"venue.spot.fee is {fee}, but pool {pool.address} is the {actual_fee} fee tier")
    listed = str(read("getPool(...)", "factory", factory.getPool, base, asset, fee))
    if listed.lower() != str(pool.address).lower():
        raise UserError(
            f"venue.spot: pool {pool.address} is not factory {factory.address}'s pool for these "
            f"tokens at fee {fee} (the factory lists {listed})"
        )
    if fee % 100:
        raise UserError(f"venue.spot.fee {fee} is not a whole number of bps (the vault's keeper models bps)")
    if int(read("slot0()", "pool", pool.slot0)[0]) == 0:
        raise UserError(f"venue.spot: pool {pool.address} is not initialized (no price)")
