"""`ape run deploy`: the reference venue (unless the config names one), the BasisHedge
blueprint and a BasisVault (whose constructor creates its hedge).

Every precondition is checked before the first transaction: the config, that the manifest
may be written, the deployer's ETH against the deploy's gas, and an existing venue's
contracts. The manifest is written only after the last transaction succeeded; a deploy
that fails or is interrupted half-way hands what it deployed to `record` (the CLI writes
`deployments/<chain_id>.partial.json`: the step, the reason and the contracts' addresses),
and the error names them; a redeploy starts afresh.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from keeper.chain.manifest import Manifest
from keeper.core.errors import UserError
from keeper.core.fixed import PRICE_UNIT
from keeper.core.rules import VaultRules
from keeper.ops.config import DEPLOYER, DeployConfig
from keeper.ops.contracts import ZERO_ADDRESS, Venue, declare_hedge, deploy_vault, deploy_venue
from keeper.ops.deployment import Deployment, chain_id_of, genesis_hash_of
from keeper.ops.uniswap_v3 import bind_existing

# Gas a full deploy uses with the reference venue (measured 22.43 M: 13 transactions, of
# which the BasisHedge blueprint and the vault 11.80 M; `ape run deploy` prints the actual
# figure); the balance check asks for this much at the current gas price, plus 50 %.
DEPLOY_GAS_ESTIMATE = 24_000_000
VAULT_ONLY_GAS_ESTIMATE = 13_000_000
# Uniswap v3 deployed here (factory, SwapRouter, QuoterV2, NonfungiblePositionManager, a
# pool, its position, the adapter: 21.6 M more than the reference pool, measured 44.03 M in
# all for 19 transactions) on top; or only the adapter on an existing v3 pool (3.26 M:
# with the blueprint and the vault 15.06 M).
UNISWAP_V3_GAS_ESTIMATE = 23_000_000
ADAPTER_GAS_ESTIMATE = 4_000_000

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class DeployStats:
    transactions: int = 0
    gas_used: int = 0
    seconds: float = 0.0
    contracts: dict[str, str] = field(default_factory=dict)


def _resolve(value: str | None, deployer: str) -> str | None:
    return deployer if value == DEPLOYER else value


def check_funds(deployer: Any, provider: Any, config: DeployConfig) -> None:
    """Refuses to start a deploy the account cannot pay for."""
    gas = DEPLOY_GAS_ESTIMATE if config.venue.mode == "deploy" else VAULT_ONLY_GAS_ESTIMATE
    gas += {"uniswap-v3": UNISWAP_V3_GAS_ESTIMATE, "existing": ADAPTER_GAS_ESTIMATE}.get(
        config.venue.spot.kind, 0
    )
    # A chain quoting no gas price (a local dev chain) is checked at 1 gwei, so an empty
    # account still fails here rather than half-way.
    price = int(provider.gas_price) or 10**9
    need = gas * price * 3 // 2
    have = int(deployer.balance)
    if have < need:
        eth = Decimal(10) ** 18
        raise UserError(
            f"account {deployer.address} holds {Decimal(have) / eth:.6f} ETH; the deploy needs about "
            f"{Decimal(need) / eth:.6f} ETH ({gas:,} gas at {Decimal(price) / 10**9:.3f} gwei, plus 50 %)"
        )


def bind_existing_venue(project: Any, provider: Any, config: DeployConfig) -> Venue:
    """Contract objects for `venue.existing`, after checking each has code and they fit together."""
    existing = config.venue.existing
    assert existing is not None
    for key, address in existing.model_dump().items():
        if address is not None and not provider.get_code(address):
            raise UserError(f"venue.existing.{key}: no contract at {address} on this chain")
    venue = Venue.bind(project, existing)
    checks = [
        ("perp_market.asset()", venue.perp_market.asset(), existing.asset),
        ("perp_market.oracle()", venue.perp_market.oracle(), existing.price_feed),
    ]
    if venue.spot_pool is not None:
        checks += [
            ("spot_pool.asset()", venue.spot_pool.asset(), existing.asset),
            ("spot_pool.base()", venue.spot_pool.base(), existing.base),
        ]
    for what, actual, expected in checks:
        if str(actual).lower() != expected.lower():
            raise UserError(f"venue.existing: {what} is {actual}, not the configured {expected}")
    if str(existing.asset_feed).lower() == str(existing.price_feed).lower():
        raise UserError(
            "venue.existing.asset_feed is the price_feed: name the asset's own USD feed (e.g. USDC / USD)"
        )
    for key in ("price_feed", "asset_feed"):
        decimals = int(getattr(venue, key).decimals())
        if decimals != 8:
            raise UserError(f"venue.existing.{key} answers with {decimals} decimals; the vault needs 8")
    if int(venue.asset.decimals()) > 18:
        raise UserError(
            f"venue.existing.asset has {venue.asset.decimals()} decimals; the vault takes at most 18"
        )
    im = int(venue.perp_market.initial_margin_bps())
    if config.rules.min_margin_ratio_bps < im:
        raise UserError(
            f"rules.min_margin_ratio_bps ({config.rules.min_margin_ratio_bps}) is below the "
            f"existing perp market's initial margin ({im} bps)"
        )
    answer = int(venue.asset_feed.latestAnswer())
    if abs(answer - PRICE_UNIT) * 10_000 > PRICE_UNIT * config.rules.max_depeg_bps:
        raise UserError(
            f"venue.existing.asset_feed answers {answer / PRICE_UNIT:.4f} USD, more than rules.max_depeg_bps "
            f"({config.rules.max_depeg_bps}) from 1: the vault would refuse every deposit"
        )
    spot = config.venue.spot
    if spot.kind == "existing":
        assert spot.existing is not None
        v3 = bind_existing(
            project, provider, spot.existing.model_dump(), existing.base, existing.asset, spot.fee
        )
        venue = dataclasses.replace(venue, uniswap_v3=v3)
    return venue


def deploy(
    project: Any,
    chain: Any,
    deployer: Any,
    config: DeployConfig,
    *,
    network: str,
    progress: Progress = _quiet,
    record: Callable[[dict[str, Any]], str] | None = None,
) -> tuple[Manifest, DeployStats]:
    """Deploys as configured and returns the manifest to write (not written here)."""
    provider = chain.provider
    stats = DeployStats()
    started = time.monotonic()
    me = deployer.address
    owner = _resolve(config.roles.owner, me)
    assert owner is not None
    guardian = _resolve(config.roles.guardian, me)
    keeper = _resolve(config.roles.keeper, me)
    feeder = _resolve(config.roles.feeder, me)
    fee_recipient = _resolve(config.roles.fee_recipient, me)
    # The deployer owns the vault first only when it must configure it as owner; otherwise
    # the constructor hands ownership over at once (no acceptance step).
    first_owner = me if config.needs_owner_calls else owner

    venue_existing = config.venue.mode == "existing"
    venue = bind_existing_venue(project, provider, config) if venue_existing else None
    check_funds(deployer, provider, config)
    start_nonce = int(deployer.nonce)
    deploy_block = int(chain.blocks.head.number) + 1

    step = "start"
    try:
        if venue is None:
            step = "deploy the reference venue"
            progress(f"deploying the reference venue (price {config.venue.deploy.price_usd} USD) ...")
            spot = config.venue.spot
            if spot.kind == "uniswap-v3":
                progress(f"... the spot leg on Uniswap v3 (fee {spot.fee}, from the npm artifacts)")
            venue = deploy_venue(
                project,
                deployer,
                config.venue.deploy.to_params(),
                spot=spot.kind,
                spot_fee=spot.fee,
                spot_range_bps=spot.range_bps,
            )
            stats.contracts.update(venue.addresses())
            if feeder is not None and feeder != me:
                step = "grant the feeder roles"
                venue.price_feed.grantRole(venue.price_feed.FEEDER_ROLE(), feeder, sender=deployer)
                venue.asset_feed.grantRole(venue.asset_feed.FEEDER_ROLE(), feeder, sender=deployer)
                venue.perp_market.grantRole(venue.perp_market.OPERATOR_ROLE(), feeder, sender=deployer)
        elif venue.uniswap_v3 is not None and venue.spot_pool is None:
            step = "deploy the Uniswap v3 adapter"
            v3 = venue.uniswap_v3
            progress(f"deploying the UniswapV3Spot adapter on pool {v3.pool.address} ...")
            v3.adapter = deployer.deploy(
                project.UniswapV3Spot, v3.factory.address, v3.pool.address, venue.base, venue.asset, v3.fee
            )
            venue = dataclasses.replace(venue, spot_pool=v3.adapter)
            stats.contracts["spot_pool"] = v3.adapter.address
        if venue.uniswap_v3 is not None:
            stats.contracts.update(venue.uniswap_v3.addresses())
        step = "declare the BasisHedge blueprint"
        progress("declaring the BasisHedge blueprint ...")
        blueprint = declare_hedge(project, deployer)
        stats.contracts["hedge_blueprint"] = blueprint
        step = "deploy the vault"
        progress("deploying BasisVault (it creates its BasisHedge) ...")
        vault = deploy_vault(
            project,
            deployer,
            venue,
            config.rules.to_rules(),
            owner=first_owner,
            guardian=guardian or ZERO_ADDRESS,
            keeper=keeper or ZERO_ADDRESS,
            fee_recipient=fee_recipient or ZERO_ADDRESS,
            name=config.vault.name,
            symbol=config.vault.symbol,
            hedge_blueprint=blueprint,
        )
        stats.contracts["vault"] = vault.address
        hedge = str(vault.hedge())
        stats.contracts["hedge"] = hedge
        v = config.vault
        if v.management_fee_bps or v.performance_fee_bps:
            step = "set the fees"
            vault.set_fees(v.management_fee_bps, v.performance_fee_bps, sender=deployer)
        if v.deposit_cap is not None:
            step = "set the deposit cap"
            vault.set_deposit_cap(v.deposit_cap, sender=deployer)
        pending_owner = None
        if first_owner != owner:
            step = "offer ownership"
            vault.transfer_ownership(owner, sender=deployer)
            pending_owner = owner
    except UserError:
        raise
    except BaseException as err:  # any failure or Ctrl-C: say where, and what was deployed
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        left = ", ".join(f"{k} {a}" for k, a in stats.contracts.items()) or "none"
        where = ""
        if record is not None and stats.contracts:
            recorded = {"failed_at": step, "reason": reason, "deployer": me, "contracts": stats.contracts}
            where = f"; recorded in {record(recorded)}"
        raise UserError(
            f"deploy failed at '{step}': {reason}; no manifest was written (contracts deployed so far, "
            f"now abandoned: {left}{where})"
        ) from err

    head = chain.blocks.head
    receipts = [r for r in chain.history[me].sessional if r.nonce is not None and r.nonce >= start_nonce]
    stats.transactions = int(deployer.nonce) - start_nonce
    stats.gas_used = sum(int(r.gas_used) for r in receipts)
    stats.seconds = time.monotonic() - started
    rules = dataclasses.asdict(config.rules.to_rules())
    manifest = Manifest(
        chain_id=chain_id_of(provider),
        network=network,
        genesis_hash=genesis_hash_of(chain),
        deploy_block=deploy_block,
        deployed_at=int(head.timestamp),
        deployer=me,
        vault=vault.address,
        hedge=hedge,
        hedge_blueprint=blueprint,
        asset=venue.asset.address,
        base=venue.base.address,
        price_feed=venue.price_feed.address,
        asset_feed=venue.asset_feed.address,
        spot_pool=venue.spot_pool.address,
        perp_market=venue.perp_market.address,
        owner=str(vault.owner()),
        pending_owner=pending_owner,
        keeper=keeper,
        guardian=guardian,
        fee_recipient=fee_recipient,
        feeder=None if venue_existing else feeder,
        venue_deployed=not venue_existing,
        rules=rules,
        spot_kind=config.venue.spot.kind,
        uniswap_v3=venue.uniswap_v3.record() if venue.uniswap_v3 is not None else None,
        transactions=stats.transactions,
        gas_used=stats.gas_used,
    )
    return manifest, stats


def verify(project: Any, manifest: Manifest) -> Deployment:
    """Reads the deployed vault and hedge back and checks they hold what the manifest says."""
    dep = Deployment.bind(project, manifest)
    vault = dep.vault
    if (
        str(vault.hedge()).lower() != manifest.hedge.lower()
        or str(dep.hedge.vault()).lower() != vault.address.lower()
    ):
        raise UserError(f"vault {vault.address} and hedge {manifest.hedge} are not linked")
    for key, value in manifest.rules.items():
        for name, contract in (("vault", vault), ("hedge", dep.hedge)):
            fields = VaultRules.VAULT_FIELDS if name == "vault" else VaultRules.HEDGE_FIELDS
            if key in fields and int(getattr(contract, key)()) != value:
                raise UserError(f"{name} rule {key} reads {getattr(contract, key)()}, expected {value}")
    if manifest.keeper is not None and not vault.is_keeper(manifest.keeper):
        raise UserError(f"vault does not list {manifest.keeper} as keeper")
    return dep
