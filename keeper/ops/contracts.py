"""Deploying the reference venue (test tokens, price feed, spot pool, perp market) and a
vault on it, and the faucet and arbitrage the demo and tests drive it with.

One place holds the deploy order (the parameters are `keeper.core.rules.VenueParams`), so
tests, the benchmarks, the demo and the deploy script all build the same market. Contract objects
are ape's; this module takes ape's `project` and an account as arguments, so importing it
needs no connected network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keeper.core.rules import VaultRules, VenueParams
from keeper.model.markets import arb_trade
from keeper.ops.uniswap_v3 import deploy_uniswap_v3, range_ticks

# The venue's contracts: each role and its contract type on the reference venue.
VENUE_ROLES = (
    ("asset", "TestToken"),
    ("base", "TestToken"),
    ("price_feed", "PriceFeed"),
    ("spot_pool", "SpotPool"),
    ("perp_market", "PerpMarket"),
    ("asset_feed", "PriceFeed"),
)


@dataclass
class Venue:
    asset: Any
    base: Any
    price_feed: Any
    spot_pool: Any  # SpotPool, or the UniswapV3Spot adapter when the spot leg trades on v3
    perp_market: Any
    asset_feed: Any
    uniswap_v3: Any = None  # keeper.ops.uniswap_v3.UniswapV3 behind `spot_pool`, if any

    @classmethod
    def bind(cls, project: Any, addresses: Any, spot_kind: str = "SpotPool") -> Venue:
        """Contract objects for `addresses` (anything with an attribute per role), unchecked;
        `spot_pool` as `spot_kind` (UniswapV3Spot for an adapter), None where no address."""

        def at(role: str, kind: str) -> Any:
            address = getattr(addresses, role)
            kind = spot_kind if role == "spot_pool" else kind
            return None if address is None else getattr(project, kind).at(address)

        return cls(**{role: at(role, kind) for role, kind in VENUE_ROLES})

    @classmethod
    def of(cls, holder: Any) -> Venue:
        """The venue part of anything holding its contracts (a `Deployment`)."""
        roles = {role: getattr(holder, role) for role, _ in VENUE_ROLES}
        return cls(**roles, uniswap_v3=getattr(holder, "uniswap_v3", None))

    def addresses(self) -> dict[str, str]:
        return {
            "asset": self.asset.address,
            "base": self.base.address,
            "price_feed": self.price_feed.address,
            "asset_feed": self.asset_feed.address,
            "spot_pool": self.spot_pool.address,
            "perp_market": self.perp_market.address,
        }


def deploy_venue(
    project: Any,
    deployer: Any,
    params: VenueParams | None = None,
    *,
    spot: str = "reference",
    spot_fee: int = 500,
    spot_range_bps: int | None = None,
) -> Venue:
    """Deploys and seeds the whole venue from `deployer`, who keeps admin, feeder and
    operator roles (grant them onwards and renounce as the deployment requires).
    `spot="uniswap-v3"` puts the spot leg on the official Uniswap v3 contracts instead of
    the SpotPool: a `spot_fee` pool at the start price holding the same seed, full range
    unless `spot_range_bps` (+/- around the price), behind a UniswapV3Spot adapter."""
    p = params or VenueParams()
    spot_base = p.spot_seed_base_wei
    spot_asset = p.asset_wei(p.spot_seed_asset)
    # The tokens' initial supply: the spot seed (for either spot venue) and the perp pool's.
    asset = deployer.deploy(
        project.TestToken,
        p.asset_name,
        p.asset_symbol,
        p.asset_decimals,
        p.asset_wei(p.asset_mint_cap),
        spot_asset + p.asset_wei(p.perp_pool_seed_asset),
    )
    base = deployer.deploy(
        project.TestToken, p.base_name, p.base_symbol, p.base_decimals, p.base_wei(p.base_mint_cap), spot_base
    )
    feed = deployer.deploy(project.PriceFeed, p.price_description, p.price_e8)
    asset_feed = deployer.deploy(project.PriceFeed, p.asset_price_description, p.asset_price_e8)
    reference = spot != "uniswap-v3"
    if reference:
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
    v3 = None
    if reference:
        asset.approve(pool.address, spot_asset, sender=deployer)
        base.approve(pool.address, spot_base, sender=deployer)
        pool.add_liquidity(spot_base, spot_asset, 0, deployer.address, sender=deployer)
    else:
        ticks = None
        if spot_range_bps is not None:
            token0 = int(base.address, 16) < int(asset.address, 16)
            decimals = (p.base_decimals, p.asset_decimals)
            ticks = range_ticks(p.price_e8, spot_range_bps, spot_fee, *decimals, token0)
        v3 = deploy_uniswap_v3(
            project, deployer, base, asset, p.price_e8, spot_base, spot_asset, fee=spot_fee, ticks=ticks
        )
        pool = v3.adapter
    asset.approve(perp.address, p.asset_wei(p.perp_pool_seed_asset), sender=deployer)
    perp.add_liquidity(p.asset_wei(p.perp_pool_seed_asset), 0, sender=deployer)
    return Venue(
        asset=asset,
        base=base,
        price_feed=feed,
        spot_pool=pool,
        perp_market=perp,
        asset_feed=asset_feed,
        uniswap_v3=v3,
    )


ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def deploy_vault(
    project: Any, deployer: Any, venue: Venue, rules: VaultRules | None = None,
    *, owner: str | None = None, guardian: str = ZERO_ADDRESS, keeper: str = ZERO_ADDRESS,
    fee_recipient: str = ZERO_ADDRESS, name: str = "Basis Vault USDC", symbol: str = "bvUSD",
    hedge_blueprint: str | None = None,
) -> Any:  # fmt: skip
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
