"""The keeper process's settings: environment variables with the `BASIS_KEEPER_` prefix
(strategy knobs nested with `__`, e.g. `BASIS_KEEPER_STRATEGY__TARGET_LEVERAGE=2`), or the
same names as command-line options. Validated at start; a bad value stops the keeper
with the variable's name and what is wrong. docs/keeper.md lists them all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from keeper.bot.strategy import Settings as StrategySettings


def _default_rpc() -> str:
    return os.environ.get("BASIS_RPC_URL") or "http://127.0.0.1:8545"


class KeeperSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BASIS_KEEPER_", env_nested_delimiter="__", extra="forbid")

    # where and who
    rpc_url: str = Field(default_factory=_default_rpc, description="JSON-RPC URL (default: BASIS_RPC_URL)")
    account: str | None = Field(
        None,
        description="ape keystore alias (passphrase: BASIS_KEEPER_PASSPHRASE), or TEST::<n> on a local chain",
    )
    passphrase_file: Path | None = Field(None, description="a file holding the keystore's passphrase")
    deployments_dir: Path | None = Field(None, description="where deployments/<chain_id>.json lives")
    dry_run: bool = Field(False, description="decide and log, never send")
    # pace and patience
    interval_seconds: float = Field(12.0, gt=0, description="seconds between ticks")
    rpc_timeout_seconds: float = Field(10.0, gt=0)
    rpc_retries: int = Field(2, ge=0)
    receipt_timeout_seconds: float = Field(
        120.0, gt=0, description="wait this long for a receipt, then leave it in flight"
    )
    receipt_poll_seconds: float = Field(1.0, gt=0, description="between receipt polls while waiting")
    deadline_seconds: int = Field(
        600, gt=0, description="rebalance deadline after the block it was decided at"
    )
    max_failures: int = Field(5, gt=0, description="failed ticks in a row that open the circuit breaker")
    cooldown_seconds: float = Field(300.0, gt=0, description="while open, probe this often")
    urgent_cooldown_seconds: float = Field(
        30.0, gt=0, description="while open and the last margin ratio was below the band, probe this often"
    )
    stuck_tx_seconds: float = Field(
        180.0, gt=0, description="a keeper transaction pending longer: alert and replace it (higher fee)"
    )
    # observability
    metrics_port: int = Field(9464, ge=0, le=65_535, description="Prometheus port, 0 = off")
    metrics_host: str = "127.0.0.1"
    log_format: Literal["text", "json"] = "text"
    # funding sources besides the vault's own market
    venues: list[Literal["hyperliquid", "dydx"]] = Field(default_factory=list)
    coin: str = Field("ETH", min_length=1, description="the coin on the other venues (ETH -> ETH / ETH-USD)")
    strategy: StrategySettings = StrategySettings()

    @field_validator("rpc_url")
    @classmethod
    def _rpc_url(cls, url: str) -> str:
        from keeper.net.rpc import redact

        if not url.strip():
            raise ValueError(
                "is empty: unset it (the keeper then uses BASIS_RPC_URL or http://127.0.0.1:8545) "
                "or set it to your node's http(s) URL"
            )
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"'{redact(url)}' must start with http:// or https://")
        return url
