"""A deployment bound to live contracts: what every operator tool and the keeper start from.

`Deployment.load(project, chain)` reads `deployments/<chain_id>.json` for the connected
chain, checks the chain is the one it was written for and returns ape contract objects for
each address: the vault (shares, roles) and its hedge (the position), the venue, and the
asset's own USD feed. Functions here take ape's `project` and `chain` as arguments, so importing
this module needs no connected network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.conversions import to_hex

from keeper.chain.manifest import Manifest, load_manifest, manifest_path
from keeper.core.errors import UserError
from keeper.ops.contracts import VENUE_ROLES, Venue


def chain_id_of(provider: Any) -> int:
    """The id the node itself reports (`eth_chainId`). Ape's `local` network reports 1337
    for any node, while anvil answers 31337; manifests use the node's answer."""
    raw = provider.make_request("eth_chainId", [])
    return int(raw, 16) if isinstance(raw, str) else int(raw)


def genesis_hash_of(chain: Any) -> str:
    return str(to_hex(chain.blocks[0].hash))


@dataclass
class Deployment:
    manifest: Manifest
    vault: Any
    asset: Any
    base: Any
    price_feed: Any
    perp_market: Any
    spot_pool: Any
    hedge: Any  # BasisHedge: spot leg, perp account, rebalance/unwind/sync
    asset_feed: Any  # the asset's USD feed (PriceFeed on the reference venue)

    @property
    def venue(self) -> Venue:
        return Venue.of(self)

    @classmethod
    def bind(cls, project: Any, manifest: Manifest) -> Deployment:
        """Contract objects for the manifest's addresses (no checks)."""
        spot_kind = "SpotPool" if manifest.spot_kind == "reference" else "UniswapV3Spot"
        venue = Venue.bind(project, manifest, spot_kind)
        return cls(
            manifest,
            vault=project.BasisVault.at(manifest.vault),
            hedge=project.BasisHedge.at(manifest.hedge),
            **{role: getattr(venue, role) for role, _ in VENUE_ROLES},
        )

    @classmethod
    def load(cls, project: Any, chain: Any, directory: Path | None = None) -> Deployment:
        """The deployment on the connected chain, after checking the manifest matches it."""
        chain_id = chain_id_of(chain.provider)
        manifest = load_manifest(chain_id, directory)
        path = manifest_path(chain_id, directory)
        if genesis_hash_of(chain) != manifest.genesis_hash:
            raise UserError(
                f"{path} was written for another chain with id {chain_id} (was the node restarted?); "
                "deploy again with `ape run deploy ... --force`"
            )
        for key, address in manifest.addresses().items():
            if not chain.provider.get_code(address):
                raise UserError(
                    f"{path}: no contract at {key} {address} on this chain; deploy again with --force"
                )
        dep = cls.bind(project, manifest)
        linked = str(dep.vault.hedge())
        if linked.lower() != manifest.hedge.lower():
            raise UserError(
                f"{path}: vault {manifest.vault}'s hedge is {linked}, not the manifest's {manifest.hedge}; "
                "deploy again with --force"
            )
        return dep
