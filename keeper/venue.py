"""Deploying the reference venue (test tokens, price feed, spot pool, perp market).

One place holds the venue's default parameters and the deploy order, so tests, the
benchmarks, the demo and the deploy script all build the same market. Contract objects
are ape's; this module takes ape's `project` and an account as arguments, so importing it
needs no connected network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRICE_DECIMALS = 8
PRICE_UNIT = 100_000_000  # 10 ** PRICE_DECIMALS


@dataclass(frozen=True)
class VenueParams:
    """What the reference venue is deployed with. Money in whole token units unless `_wei`."""

    asset_name: str = "USD Coin (test)"
    asset_symbol: str = "USDC"
    asset_decimals: int = 6
    base_name: str = "Wrapped Ether (test)"
    base_symbol: str = "WETH"
    base_decimals: int = 18
    # Faucet: the most one `mint` call creates, whole units.
    asset_mint_cap: int = 1_000_000
    base_mint_cap: int = 1_000
    price_description: str = "ETH / USD"
    price_e8: int = 3_000 * 10**PRICE_DECIMALS
    # The asset's own USD feed (the vault's de-peg guard), like Chainlink's USDC / USD.
    asset_price_description: str = "USDC / USD"
    asset_price_e8: int = 10**PRICE_DECIMALS
    # Spot pool: Uniswap's 5 bps tier, seeded deep enough that a $1M trade moves it ~0.2 %.
    spot_fee_bps: int = 5
    spot_seed_asset: int = 1_000_000_000
    # Perp market: Hyperliquid-like taker fee and leverage limits.
    taker_fee_ppm: int = 450  # 4.5 bps
    initial_margin_bps: int = 500  # 20x
    maintenance_margin_bps: int = 250
    liquidation_fee_bps: int = 50
    max_oracle_age: int = 86_400
    # A $1M trade fills 2 bps from the index.
    depth_asset: int = 5_000_000_000
    perp_pool_seed_asset: int = 50_000_000

    @property
    def asset_unit(self) -> int:
        return int(10**self.asset_decimals)

    @property
    def base_unit(self) -> int:
        return int(10**self.base_decimals)

    def asset_wei(self, units: int) -> int:
        return units * self.asset_unit

    def base_wei(self, units: int) -> int:
        return units * self.base_unit

    @property
    def spot_seed_base_wei(self) -> int:
        """Base that balances `spot_seed_asset` at `price_e8`."""
        asset_value = self.asset_wei(self.spot_seed_asset) * self.base_unit * PRICE_UNIT
        return asset_value // (self.price_e8 * self.asset_unit)


@dataclass
class Venue:
    asset: Any
    base: Any
    price_feed: Any
    spot_pool: Any
    perp_market: Any
    asset_feed: Any

    def addresses(self) -> dict[str, str]:
        return {
            "asset": self.asset.address,
            "base": self.base.address,
            "price_feed": self.price_feed.address,
            "asset_feed": self.asset_feed.address,
            "spot_pool": self.spot_pool.address,
            "perp_market": self.perp_market.address,
        }


def deploy_venue(project: Any, deployer: Any, params: VenueParams | None = None) -> Venue:
    """Deploys and seeds the whole venue from `deployer`, who keeps admin, feeder and
    operator roles (grant them onwards and renounce as the deployment requires)."""
    p = params or VenueParams()
    spot_base = p.spot_seed_base_wei
    asset = deployer.deploy(
        project.TestToken,
        p.asset_name,
        p.asset_symbol,
        p.asset_decimals,
        p.asset_wei(p.asset_mint_cap),
        p.asset_wei(p.spot_seed_asset + p.perp_pool_seed_asset),
    )
    base = deployer.deploy(
        project.TestToken, p.base_name, p.base_symbol, p.base_decimals, p.base_wei(p.base_mint_cap), spot_base
    )
    feed = deployer.deploy(project.PriceFeed, p.price_description, p.price_e8)
    asset_feed = deployer.deploy(project.PriceFeed, p.asset_price_description, p.asset_price_e8)
    pool = deployer.deploy(project.SpotPool, base.address, asset.address, p.spot_fee_bps)
    perp = deployer.deploy(
        project.PerpMarket,
        asset.address,
        feed.address,
        p.taker_fee_ppm,
        p.initial_margin_bps,
        p.maintenance_margin_bps,
        p.liquidation_fee_bps,
        p.max_oracle_age,
        p.asset_wei(p.depth_asset),
    )
    asset.approve(pool.address, p.asset_wei(p.spot_seed_asset), sender=deployer)
    base.approve(pool.address, spot_base, sender=deployer)
    pool.add_liquidity(spot_base, p.asset_wei(p.spot_seed_asset), 0, deployer.address, sender=deployer)
    asset.approve(perp.address, p.asset_wei(p.perp_pool_seed_asset), sender=deployer)
    perp.add_liquidity(p.asset_wei(p.perp_pool_seed_asset), 0, sender=deployer)
    return Venue(
        asset=asset, base=base, price_feed=feed, spot_pool=pool, perp_market=perp, asset_feed=asset_feed
    )


@dataclass(frozen=True)
class VaultRules:
    """The immutable rules of a BasisVault and its BasisHedge (constructor structs
    `BasisVault.Rules` and `IBasisHedge.Rules`), in one place: `vault_tuple` and
    `hedge_tuple` split them where each contract enforces them."""

    max_leverage_bps: int = 40_000  # short notional / perp equity <= 4x
    min_margin_ratio_bps: int = 2_000  # perp equity / notional >= 20 % after a rebalance
    critical_margin_ratio_bps: int = 1_000  # below 10 % anyone may deleverage
    max_delta_bps: int = 200  # |spot - short| <= 2 % of NAV after a rebalance
    max_slippage_bps: int = 50  # every fill within 0.5 %: spot of the oracle, the perp of its mark
    max_oracle_age: int = 3 * 3_600
    max_nav_loss_bps: int = 50  # one rebalance may cost at most 0.5 % of NAV
    max_management_fee_bps: int = 200
    max_performance_fee_bps: int = 2_000
    deposit_cap_ceiling: int = 10_000_000 * 10**6
    dead_man_interval: int = 3 * 86_400
    # All rebalances of one day together may cost at most 1.5 % of NAV (three worst cases).
    keeper_loss_budget_bps: int = 150
    # The asset's USD feed: Chainlink's USDC / USD heartbeat is 24 h, so 25 h.
    max_asset_oracle_age: int = 25 * 3_600
    # Entries and exits stop while the asset is more than 1 % off its peg.
    max_depeg_bps: int = 100

    VAULT_FIELDS = (
        "max_oracle_age",
        "max_asset_oracle_age",
        "max_depeg_bps",
        "max_management_fee_bps",
        "max_performance_fee_bps",
        "deposit_cap_ceiling",
    )
    HEDGE_FIELDS = (
        "max_leverage_bps",
        "min_margin_ratio_bps",
        "critical_margin_ratio_bps",
        "max_delta_bps",
        "max_slippage_bps",
        "max_oracle_age",
        "max_nav_loss_bps",
        "dead_man_interval",
        "keeper_loss_budget_bps",
    )

    def vault_tuple(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in self.VAULT_FIELDS)

    def hedge_tuple(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in self.HEDGE_FIELDS)


ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def deploy_vault(
    project: Any,
    deployer: Any,
    venue: Venue,
    rules: VaultRules | None = None,
    *,
    owner: str | None = None,
    guardian: str = ZERO_ADDRESS,
    keeper: str = ZERO_ADDRESS,
    fee_recipient: str = ZERO_ADDRESS,
    name: str = "Basis Vault USDC",
    symbol: str = "bvUSD",
    hedge_blueprint: str | None = None,
) -> Any:
    """Deploys a BasisVault on `venue` (two transactions: the BasisHedge blueprint, unless
    `hedge_blueprint` names one already on chain, then the vault, which creates its hedge);
    the deployer keeps no role unless it is `owner`. `hedge_of(project, vault)` is the hedge."""
    r = rules or VaultRules()
    blueprint = hedge_blueprint or declare_hedge(project, deployer)
    return deployer.deploy(
        project.BasisVault,
        venue.asset.address,
        venue.base.address,
        venue.price_feed.address,
        venue.asset_feed.address,
        venue.perp_market.address,
        venue.spot_pool.address,
        blueprint,
        name,
        symbol,
        r.vault_tuple(),
        r.hedge_tuple(),
        owner or deployer.address,
        guardian,
        keeper,
        fee_recipient,
    )


def declare_hedge(project: Any, deployer: Any) -> str:
    """Deploys the BasisHedge blueprint (EIP-5202) every vault creates its hedge from.
    The sender is named on the transaction: ape's `account.declare` estimates gas before it
    sets the sender, and a node that charges fees refuses that estimate as from an empty
    account ("Insufficient funds for gas * price + value")."""
    receipt = deployer.declare(project.BasisHedge, sender=deployer)
    if not receipt.contract_address:
        raise RuntimeError("BasisHedge blueprint: the transaction created no contract")
    return str(receipt.contract_address)


def hedge_of(project: Any, vault: Any) -> Any:
    """The BasisHedge a vault created (its `hedge()`), as an ape contract."""
    return project.BasisHedge.at(vault.hedge())


def arb_trade(
    reserve_base: int,
    reserve_asset: int,
    target_price_e8: int,
    base_unit: int,
    asset_unit: int,
    fee_bps: int,
) -> tuple[bool, int]:
    """The swap that brings a constant-product pool's mid price to `target_price_e8`.

    Returns (base_in, amount_in): sell `amount_in` base when `base_in`, else sell that much
    asset. Solves for the reserves on the same k at the target ratio, grossed up for the fee
    taken off the input. (0 when already there.)
    """
    from math import isqrt

    k = reserve_base * reserve_asset
    target_asset = isqrt(k * target_price_e8 * asset_unit // (base_unit * 10**PRICE_DECIMALS))
    if target_asset > reserve_asset:
        return False, (target_asset - reserve_asset) * 10_000 // (10_000 - fee_bps)
    target_base = k // max(target_asset, 1)
    if target_base > reserve_base:
        return True, (target_base - reserve_base) * 10_000 // (10_000 - fee_bps)
    return False, 0


def faucet(token: Any, to: Any, amount: int) -> None:
    """Mint `amount` of a TestToken to `to`, in as many capped faucet calls as it takes."""
    cap = token.mint_cap()
    while amount:
        step = min(cap, amount)
        token.mint(to, step, sender=to)
        amount -= step


def arb_to_oracle(venue: Venue, arbitrageur: Any) -> None:
    """Trade the spot pool back to the oracle price (what the market feeder's `arb` does),
    with tokens from the faucet. Does nothing when the trade would be dust."""
    pool = venue.spot_pool
    reserve_base, reserve_asset = pool.get_reserves()
    base_in, amount = arb_trade(
        reserve_base,
        reserve_asset,
        venue.price_feed.latestAnswer(),
        10 ** venue.base.decimals(),
        10 ** venue.asset.decimals(),
        pool.fee_bps(),
    )
    token = venue.base if base_in else venue.asset
    if amount == 0 or pool.get_amount_out(token, amount) == 0:
        return
    faucet(token, arbitrageur, amount)
    token.approve(pool, amount, sender=arbitrageur)
    pool.swap(token, amount, 0, arbitrageur, sender=arbitrageur)
