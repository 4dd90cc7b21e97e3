"""The deployment manifest: `deployments/<chain_id>.json`, written by `ape run deploy`.

Every other tool (depositor scripts, the market feeder, the keeper) reads contract
addresses from it and nothing else. It is written once, atomically, after a deploy has
completed, so a file that exists always describes a whole deployment.

The folder is `./deployments` (run the tools from the project root) unless
`BASIS_DEPLOYMENTS_DIR` names another one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from eth_utils.address import is_checksum_address
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keeper.core.errors import UserError

DEPLOYMENTS_ENV = "BASIS_DEPLOYMENTS_DIR"
# 2: vault v2 (BasisVault + BasisHedge): `hedge`, `asset_feed`, `hedge_blueprint`.
SCHEMA_VERSION = 2
ADDRESS_KEYS = (
    "vault",
    "hedge",
    "asset",
    "base",
    "price_feed",
    "asset_feed",
    "perp_market",
    "spot_pool",
    "hedge_blueprint",
)
V3_ADDRESS_KEYS = ("factory", "router", "quoter", "position_manager", "pool")


class Manifest(BaseModel):
    """One deployment on one chain. Addresses are checksummed; a role nobody holds is null."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    chain_id: int = Field(gt=0)
    network: str  # the ape network choice it was deployed with, e.g. "ethereum:local:node"
    genesis_hash: str  # block 0's hash: tells a restarted anvil (same chain id) apart
    deploy_block: int = Field(ge=0)  # the block of the first deploy transaction
    deployed_at: int  # unix seconds of the last deploy block
    deployer: str

    vault: str
    hedge: str  # the vault's BasisHedge (its `hedge()`): the position, where keepers call
    asset: str
    base: str
    price_feed: str
    asset_feed: str  # the asset's own USD feed (the vault's `asset_oracle()`)
    perp_market: str
    spot_pool: str
    hedge_blueprint: str  # the EIP-5202 BasisHedge blueprint the vault created its hedge from

    owner: str
    pending_owner: str | None = None  # two-step handover offered but not yet accepted
    keeper: str | None
    guardian: str | None
    fee_recipient: str | None
    feeder: str | None  # holds FEEDER_ROLE/OPERATOR_ROLE on the reference venue (None: not ours)
    venue_deployed: bool  # True when this deploy created the reference venue

    rules: dict[str, int]  # keeper.core.rules.VaultRules as deployed (vault and hedge), contract units
    # Where the spot leg trades: the reference SpotPool, or a Uniswap v3 pool deployed here
    # ("uniswap-v3") or someone else's ("existing"), behind the UniswapV3Spot adapter that
    # `spot_pool` then names. `uniswap_v3`: factory, router, quoter, position_manager, pool
    # (addresses), fee (pips), tick_lower, tick_upper, position_id (the seeded position).
    spot_kind: Literal["reference", "uniswap-v3", "existing"] = "reference"
    uniswap_v3: dict[str, str | int | None] | None = None
    transactions: int = Field(ge=0)
    gas_used: int = Field(ge=0)

    @field_validator("deployer", "owner", *ADDRESS_KEYS)
    @classmethod
    def _checksummed(cls, value: str) -> str:
        if not is_checksum_address(value):
            raise ValueError(f"'{value}' is not a checksummed address")
        return value

    @field_validator("pending_owner", "keeper", "guardian", "fee_recipient", "feeder")
    @classmethod
    def _checksummed_or_none(cls, value: str | None) -> str | None:
        if value is not None and not is_checksum_address(value):
            raise ValueError(f"'{value}' is not a checksummed address")
        return value

    @field_validator("uniswap_v3")
    @classmethod
    def _v3_checksummed(cls, value: dict[str, str | int | None] | None) -> dict[str, str | int | None] | None:
        for key in V3_ADDRESS_KEYS:
            address = (value or {}).get(key)
            if address is not None and not (isinstance(address, str) and is_checksum_address(address)):
                raise ValueError(f"uniswap_v3.{key}: '{address}' is not a checksummed address")
        return value

    def addresses(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in ADDRESS_KEYS}

    def v3_addresses(self) -> dict[str, str]:
        """The Uniswap v3 contracts the spot leg trades on (none on the reference pool)."""
        v3 = self.uniswap_v3 or {}
        return {key: str(v3[key]) for key in V3_ADDRESS_KEYS if v3.get(key)}


def deployments_dir() -> Path:
    return Path(os.environ.get(DEPLOYMENTS_ENV) or "deployments")


def manifest_path(chain_id: int, directory: Path | None = None) -> Path:
    return (directory or deployments_dir()) / f"{chain_id}.json"


def load_manifest(chain_id: int, directory: Path | None = None) -> Manifest:
    """The manifest for `chain_id`, validated; a clear UserError when it is missing or bad."""
    path = manifest_path(chain_id, directory)
    if not path.is_file():
        raise UserError(
            f"no deployment for chain {chain_id}: {path} does not exist "
            "(run `ape run deploy --network <network> --account <alias>` first)"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is not readable JSON ({err}); redeploy with --force") from None
    if isinstance(data, dict) and "vault" in data and "hedge" not in data:
        raise UserError(
            f"{path} describes a vault v1 (one contract, no `hedge`), which these tools no longer drive: "
            "deploy vault v2 with `ape run deploy --network <network> --account <alias> --force`"
        )
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise UserError(f"{path} is not a valid manifest: {loc}: {first['msg']}") from None
    if manifest.chain_id != chain_id:
        raise UserError(f"{path} describes chain {manifest.chain_id}, not {chain_id}")
    return manifest


def write_manifest(manifest: Manifest, directory: Path | None = None, *, force: bool = False) -> Path:
    """Writes atomically (temp file + rename in the same folder); refuses to replace an
    existing manifest unless `force`."""
    path = manifest_path(manifest.chain_id, directory)
    check_can_write(manifest.chain_id, directory, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_can_write(chain_id: int, directory: Path | None = None, *, force: bool = False) -> None:
    """Raises before a deploy starts if its manifest could not be written at the end."""
    path = manifest_path(chain_id, directory)
    if path.exists() and not force:
        raise UserError(
            f"{path} already exists (a deployment on chain {chain_id}); "
            "pass --force to deploy again and replace it"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create {path.parent} for the manifest ({err.strerror})") from None
    if not os.access(path.parent, os.W_OK):
        raise UserError(f"cannot write the manifest into {path.parent} (no write permission)")
