"""The deploy configuration: one YAML file per network (`deploy/<network>.yaml`).

It names the vault's immutable rules, its roles, its fees and deposit cap, and either the
parameters of a reference venue to deploy or the addresses of an existing one. Loading
validates everything a deploy would otherwise discover half-way through (the vault
constructor's asserts included), and every error names the key and what is wrong.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml  # type: ignore[import-untyped]
from eth_utils.address import is_address, to_checksum_address
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from keeper.core.errors import UserError
from keeper.core.fixed import PRICE_UNIT
from keeper.core.rules import VaultRules, VenueParams

DEPLOYER = "deployer"
CONFIG_DIR = Path("deploy")

# The absolute bounds in BasisVault's and BasisHedge's constructors (MAX_*_CAP_BPS
# constants), checked here so a bad rule fails before the first transaction rather than in
# a constructor.
MAX_MANAGEMENT_FEE_CAP_BPS = 500
MAX_PERFORMANCE_FEE_CAP_BPS = 5_000
MAX_SLIPPAGE_CAP_BPS = 500
MAX_DEPEG_CAP_BPS = 1_000
BPS = 10_000


def _address_or_keyword(value: Any, allow_none: bool) -> str | None:
    if value is None:
        if allow_none:
            return None
        raise ValueError("must be 'deployer' or an address, not empty")
    if not isinstance(value, str):
        raise ValueError(f"must be 'deployer' or a 0x address, got {value!r}")
    if value == DEPLOYER:
        return DEPLOYER
    if not is_address(value):
        raise ValueError(f"'{value}' is not an address (0x followed by 40 hex digits) or 'deployer'")
    return str(to_checksum_address(value))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RulesConfig(Strict):
    """The immutable rules, field for field (units as in the contracts): BasisVault's
    `Rules` and BasisHedge's `Rules` together (`max_oracle_age` is in both); each bound
    mirrors an assert in one of the constructors."""

    max_leverage_bps: StrictInt = Field(gt=0)
    min_margin_ratio_bps: StrictInt = Field(gt=0, le=BPS)
    critical_margin_ratio_bps: StrictInt = Field(gt=0)
    max_delta_bps: StrictInt = Field(ge=0, le=BPS)
    max_slippage_bps: StrictInt = Field(gt=0, le=MAX_SLIPPAGE_CAP_BPS)
    max_oracle_age: StrictInt = Field(gt=0)
    max_nav_loss_bps: StrictInt = Field(ge=0, le=BPS)
    max_management_fee_bps: StrictInt = Field(ge=0, le=MAX_MANAGEMENT_FEE_CAP_BPS)
    max_performance_fee_bps: StrictInt = Field(ge=0, le=MAX_PERFORMANCE_FEE_CAP_BPS)
    deposit_cap_ceiling: StrictInt = Field(gt=0)
    dead_man_interval: StrictInt = Field(gt=0)
    # BasisHedge: all rebalances of one 24 h window together, bps of the NAV at its start.
    keeper_loss_budget_bps: StrictInt = Field(ge=0, le=BPS)
    # BasisVault: the asset's own USD feed (de-peg guard).
    max_asset_oracle_age: StrictInt = Field(gt=0)
    max_depeg_bps: StrictInt = Field(ge=0, le=MAX_DEPEG_CAP_BPS)

    @model_validator(mode="after")
    def _cross_rules(self) -> RulesConfig:
        problems = []
        if self.critical_margin_ratio_bps >= self.min_margin_ratio_bps:
            problems.append(
                f"critical_margin_ratio_bps ({self.critical_margin_ratio_bps}) must be below "
                f"min_margin_ratio_bps ({self.min_margin_ratio_bps})"
            )
        if self.keeper_loss_budget_bps < self.max_nav_loss_bps:
            problems.append(
                f"keeper_loss_budget_bps ({self.keeper_loss_budget_bps}) must be at least "
                f"max_nav_loss_bps ({self.max_nav_loss_bps}): the day's budget must allow one rebalance"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def to_rules(self) -> VaultRules:
        return VaultRules(**self.model_dump())


class RolesConfig(Strict):
    """Who holds what. 'deployer' means the --account that runs the deploy."""

    owner: str = DEPLOYER
    guardian: str | None = DEPLOYER
    keeper: str | None = DEPLOYER
    # FEEDER_ROLE on the price feed and OPERATOR_ROLE on the perp market (reference venue
    # only): the account that runs `ape run market ...`.
    feeder: str = DEPLOYER
    fee_recipient: str | None = DEPLOYER

    @field_validator("owner", "feeder", mode="before")
    @classmethod
    def _required(cls, value: Any) -> str | None:
        return _address_or_keyword(value, allow_none=False)

    @field_validator("guardian", "keeper", "fee_recipient", mode="before")
    @classmethod
    def _optional(cls, value: Any) -> str | None:
        return _address_or_keyword(value, allow_none=True)


class VaultConfig(Strict):
    name: str = Field(default="Basis Vault USDC", min_length=1, max_length=25)
    symbol: str = Field(default="bvUSD", min_length=1, max_length=5)
    management_fee_bps: StrictInt = Field(default=0, ge=0)
    performance_fee_bps: StrictInt = Field(default=0, ge=0)
    # Asset wei (like rules.deposit_cap_ceiling); None leaves the cap at the ceiling.
    deposit_cap: StrictInt | None = Field(default=None, ge=0)


def _contract_address(value: Any) -> str | None:
    if value == DEPLOYER:
        raise ValueError("must be a contract address")
    return _address_or_keyword(value, allow_none=False)


class ExistingVenue(Strict):
    asset: str
    base: str
    price_feed: str
    # The asset's own USD feed (e.g. Chainlink's USDC / USD): the vault's de-peg guard.
    asset_feed: str
    # An ISpotPool for (base, asset): needed unless venue.spot names a Uniswap v3 deployment.
    spot_pool: str | None = None
    perp_market: str

    @field_validator("*", mode="before")
    @classmethod
    def _address(cls, value: Any) -> str | None:
        return None if value is None else _contract_address(value)


class ExistingSpot(Strict):
    """A Uniswap v3 deployment someone else made (a public testnet, a fork)."""

    factory: str
    pool: str  # the factory's pool for (base, asset) at venue.spot.fee
    router: str  # SwapRouter: recorded for operators; the vault trades the pool directly
    quoter: str  # QuoterV2
    position_manager: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _address(cls, value: Any) -> str | None:
        return None if value is None else _contract_address(value)


SpotKind = Literal["reference", "uniswap-v3", "existing"]
# Fee tiers a fresh v3 factory enables (`keeper.ops.uniswap_v3.FEE_TIERS`).
V3_FEE_TIERS = (500, 3000, 10000)


class SpotConfig(Strict):
    """Where the hedge trades spot. `reference`: the reference venue's SpotPool (or
    venue.existing.spot_pool). `uniswap-v3`: the official v3 contracts deployed here, a
    pool at the start price seeded with the reference pool's amounts, full range unless
    `range_bps`. `existing`: a v3 deployment's addresses. Both v3 kinds trade through a
    UniswapV3Spot adapter this deploy creates."""

    kind: SpotKind = "reference"
    fee: StrictInt = 500  # the v3 pool's fee tier, pips (500 = 0.05 %)
    range_bps: StrictInt | None = Field(default=None, gt=0, lt=BPS)  # uniswap-v3: +/- around the price
    existing: ExistingSpot | None = None

    @model_validator(mode="after")
    def _kind(self) -> SpotConfig:
        if self.kind == "existing" and self.existing is None:
            raise ValueError("kind is 'existing' but venue.spot.existing lists no addresses")
        if self.kind != "existing" and self.existing is not None:
            raise ValueError("venue.spot.existing is set but kind is not 'existing'")
        if self.kind == "uniswap-v3" and self.fee not in V3_FEE_TIERS:
            raise ValueError(f"fee {self.fee} is not a tier a fresh v3 factory enables {V3_FEE_TIERS}")
        if self.kind != "reference" and (self.fee <= 0 or self.fee % 100):
            raise ValueError(f"fee {self.fee} must be a positive whole number of bps in pips (500, 3000 ...)")
        if self.range_bps is not None and self.kind != "uniswap-v3":
            raise ValueError("range_bps applies to kind 'uniswap-v3' only")
        return self


_VENUE_FIELDS = {f.name for f in dataclasses.fields(VenueParams)}


class VenueDeployConfig(Strict):
    """Reference venue parameters (`keeper.core.rules.VenueParams`); `price_usd` is the feed's
    starting answer. Keys left out keep VenueParams' defaults."""

    price_usd: Decimal = Field(default=Decimal(VenueParams.price_e8) / PRICE_UNIT, gt=0)
    params: dict[str, StrictInt | str] = Field(default_factory=dict)

    @field_validator("price_usd", mode="before")
    @classmethod
    def _decimal(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"must be a number, got {value!r}")
        return Decimal(str(value))

    @field_validator("params")
    @classmethod
    def _known(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - _VENUE_FIELDS - {"price_e8"})
        if unknown:
            raise ValueError(f"unknown venue parameter(s) {unknown}; known: {sorted(_VENUE_FIELDS)}")
        if "price_e8" in value:
            raise ValueError("set the start price with venue.deploy.price_usd, not params.price_e8")
        for key, item in value.items():
            expected = type(getattr(VenueParams, key))
            if not isinstance(item, expected) or isinstance(item, bool):
                raise ValueError(f"{key} must be {expected.__name__}, got {item!r}")
            if expected is int and item < 0:
                raise ValueError(f"{key} must not be negative, got {item}")
        return value

    def to_params(self) -> VenueParams:
        price_e8 = int(self.price_usd * PRICE_UNIT)
        fields: dict[str, Any] = {**self.params, "price_e8": price_e8}
        return VenueParams(**fields)


class VenueConfig(Strict):
    mode: Literal["deploy", "existing"] = "deploy"
    deploy: VenueDeployConfig = Field(default_factory=VenueDeployConfig)
    existing: ExistingVenue | None = None
    spot: SpotConfig = Field(default_factory=SpotConfig)

    @model_validator(mode="after")
    def _mode(self) -> VenueConfig:
        if self.mode == "existing" and self.existing is None:
            raise ValueError("mode is 'existing' but venue.existing lists no addresses")
        if self.mode == "deploy" and self.existing is not None:
            raise ValueError("venue.existing is set but mode is 'deploy'; set mode: existing to use it")
        kind = self.spot.kind
        if kind == "uniswap-v3" and self.mode != "deploy":
            raise ValueError(
                "spot.kind 'uniswap-v3' seeds its pool with the reference venue's test tokens: use it with "
                "mode: deploy, or name an existing v3 deployment with spot.kind: existing"
            )
        if kind == "existing" and self.mode != "existing":
            raise ValueError(
                "spot.kind 'existing' trades an existing pool of existing tokens: set mode: existing "
                "and name them in venue.existing (or use spot.kind: uniswap-v3 to deploy v3 here)"
            )
        if self.existing is not None:
            if kind == "reference" and self.existing.spot_pool is None:
                raise ValueError("venue.existing.spot_pool: missing (or set venue.spot.kind: existing)")
            if kind != "reference" and self.existing.spot_pool is not None:
                raise ValueError("venue.existing.spot_pool is set, but venue.spot names a v3 pool: drop one")
        return self


class DeployConfig(Strict):
    vault: VaultConfig = Field(default_factory=VaultConfig)
    rules: RulesConfig
    roles: RolesConfig = Field(default_factory=RolesConfig)
    venue: VenueConfig = Field(default_factory=VenueConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> DeployConfig:
        r, v = self.rules, self.vault
        if v.management_fee_bps > r.max_management_fee_bps:
            raise ValueError(
                f"vault.management_fee_bps ({v.management_fee_bps}) is above "
                f"rules.max_management_fee_bps ({r.max_management_fee_bps})"
            )
        if v.performance_fee_bps > r.max_performance_fee_bps:
            raise ValueError(
                f"vault.performance_fee_bps ({v.performance_fee_bps}) is above "
                f"rules.max_performance_fee_bps ({r.max_performance_fee_bps})"
            )
        if v.deposit_cap is not None and v.deposit_cap > r.deposit_cap_ceiling:
            raise ValueError(
                f"vault.deposit_cap ({v.deposit_cap}) is above "
                f"rules.deposit_cap_ceiling ({r.deposit_cap_ceiling})"
            )
        if self.venue.mode == "deploy":
            params = self.venue.deploy.to_params()
            im = params.initial_margin_bps
            if r.min_margin_ratio_bps < im:
                raise ValueError(
                    f"rules.min_margin_ratio_bps ({r.min_margin_ratio_bps}) is below the venue's "
                    f"initial margin ({im} bps)"
                )
            if params.asset_decimals > 18:
                raise ValueError(
                    f"venue.deploy.params.asset_decimals ({params.asset_decimals}) is above 18, "
                    "the most the vault takes"
                )
            gap = abs(params.asset_price_e8 - PRICE_UNIT)
            if gap * BPS > PRICE_UNIT * r.max_depeg_bps:
                raise ValueError(
                    f"venue.deploy.params.asset_price_e8 ({params.asset_price_e8}) is more than "
                    f"rules.max_depeg_bps ({r.max_depeg_bps}) from 1 USD: the vault would refuse every "
                    "deposit"
                )
        return self

    @property
    def needs_owner_calls(self) -> bool:
        """Whether the deployer must act as owner after the vault exists."""
        v = self.vault
        return bool(v.management_fee_bps or v.performance_fee_bps or v.deposit_cap is not None)


def _describe(error: ValidationError) -> str:
    parts = []
    for err in error.errors():
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"{loc}: unknown key")
        elif err["type"] == "missing":
            parts.append(f"{loc}: missing")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def parse_deploy_config(data: Any, source: str = "deploy config") -> DeployConfig:
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of vault/rules/roles/venue, got {type(data).__name__}")
    try:
        return DeployConfig.model_validate(data)
    except ValidationError as err:
        raise UserError(f"{source}: {_describe(err)}") from None


def config_path(network_name: str, directory: Path = CONFIG_DIR) -> Path:
    """`deploy/<network>.yaml` for an ape network name ('local', 'sepolia'; a fork uses
    its parent network's file)."""
    return directory / f"{network_name.removesuffix('-fork')}.yaml"


def load_deploy_config(path: Path) -> DeployConfig:
    if not path.is_file():
        raise UserError(f"no deploy config at {path}: copy deploy/local.yaml and edit it, or pass --config")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}:{where} is not valid YAML ({getattr(err, 'problem', err)})") from None
    return parse_deploy_config(data, str(path))


def with_spot(config: DeployConfig, kind: str, source: str = "deploy config") -> DeployConfig:
    """`config` with `venue.spot.kind` set to `kind` (`ape run deploy --spot`), validated
    again as a whole: `uniswap-v3` with an existing venue is refused like in the file."""
    data = config.model_dump(mode="json")
    data["venue"]["spot"]["kind"] = kind
    if kind == "reference":
        data["venue"]["spot"].update(range_bps=None, existing=None)
    return parse_deploy_config(data, f"{source} with --spot {kind}")
