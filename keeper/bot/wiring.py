"""Building the keeper as `basis-keeper run` does: settings, the node, the manifest, the
account, the venues; checked before the first tick. The chain replay builds its keeper
with the same `Stack`."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from eth_account.signers.local import LocalAccount
from pydantic import ValidationError

from keeper.bot.metrics import Metrics
from keeper.bot.reference import ReferenceHistory
from keeper.bot.runtime import Keeper
from keeper.bot.settings import KeeperSettings
from keeper.chain.executor import Executor
from keeper.chain.manifest import Manifest, load_manifest
from keeper.chain.reader import Addresses, read_links, read_static
from keeper.chain.signer import is_test_alias, load_keystore_account, test_account
from keeper.core.errors import UserError
from keeper.core.rules import VaultRules
from keeper.data.dydx import DydxSource
from keeper.data.hyperliquid import HyperliquidSource
from keeper.data.records import FundingView
from keeper.net.rpc import Rpc, RpcError


def load_settings(overrides: dict[str, Any]) -> KeeperSettings:
    try:
        return KeeperSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        first = err.errors()[0]
        where = "BASIS_KEEPER_" + "__".join(str(x) for x in first["loc"]).upper()
        raise UserError(f"setting {where}: {str(first['msg']).removeprefix('Value error, ')}") from None


class Stack:
    """Everything a tick needs, connected and checked."""

    def __init__(
        self, settings: KeeperSettings, *, need_account: bool, account: LocalAccount | None = None
    ) -> None:
        self.settings = settings
        self.rpc = Rpc(settings.rpc_url, timeout=settings.rpc_timeout_seconds, retries=settings.rpc_retries)
        chain_id, genesis = self.rpc.batch([("eth_chainId", []), ("eth_getBlockByNumber", ["0x0", False])])
        if isinstance(chain_id, RpcError) or isinstance(genesis, RpcError) or not isinstance(genesis, dict):
            raise UserError("the node did not answer eth_chainId / block 0: is BASIS_KEEPER_RPC_URL a node?")
        self.chain_id = int(chain_id, 16)
        self.manifest = load_manifest(self.chain_id, settings.deployments_dir)
        if genesis.get("hash") != self.manifest.genesis_hash:
            raise UserError(
                f"the node's chain {self.chain_id} is not the one deployed to (genesis differs): "
                "was the local node restarted? redeploy"
            )
        self.account = account  # given: the chain replay's keeper, a local test key
        if self.account is None and settings.account and is_test_alias(settings.account):
            self.account = test_account(settings.account, self.chain_id)
        elif self.account is None and settings.account:
            self.account = load_keystore_account(settings.account, passphrase_file=settings.passphrase_file)
        elif self.account is None and need_account and not settings.dry_run:
            raise UserError(
                "no keeper account: set BASIS_KEEPER_ACCOUNT (ape keystore alias) or use --dry-run"
            )
        keeper_address = (
            self.account.address if self.account else (self.manifest.keeper or self.manifest.deployer)
        )
        self.addresses = addresses_of(self.rpc, self.manifest, keeper_address)
        self.static = read_static(self.rpc, self.addresses)
        if self.account is not None and not self.static.is_keeper:
            me, vault = self.account.address, self.manifest.vault
            raise UserError(
                f"account {me} is not a keeper of vault {vault}: the owner ({self.manifest.owner}) grants "
                f"the role with `ape run roles keeper {me} --account <owner>` (the vault's set_keeper)"
            )
        problems = settings.strategy.problems(VaultRules(**self.static.rules))
        if problems:
            raise UserError("strategy settings do not fit the vault's rules: " + "; ".join(problems))

    def keeper(self, metrics: Metrics | None = None) -> Keeper:
        s = self.settings
        executor = None
        if self.account is not None and not s.dry_run:
            executor = Executor(
                self.rpc,
                self.account,
                self.chain_id,
                self.addresses.hedge,  # every keeper call goes to the hedge
                receipt_timeout=s.receipt_timeout_seconds,
                poll_interval=s.receipt_poll_seconds,
            )
        reference = ReferenceHistory.backfill(
            self.rpc, self.addresses.perp_market, self.manifest.deploy_block
        )
        return Keeper(
            self.rpc, self.addresses, self.static, reference, s.strategy,
            executor=executor, other_venues=venue_fetchers(s), metrics=metrics,
            deadline_seconds=s.deadline_seconds, stuck_tx_seconds=s.stuck_tx_seconds,
            max_failures=s.max_failures,
            cooldown=s.cooldown_seconds, urgent_cooldown=s.urgent_cooldown_seconds,
        )  # fmt: skip


def addresses_of(rpc: Rpc, manifest: Manifest, keeper: str) -> Addresses:
    """The manifest's addresses plus the vault's hedge and asset feed. A manifest written
    before v2 may lack them: then they are read from the vault (`hedge()`,
    `asset_oracle()`, immutable); where the manifest names them they must match it."""
    named = manifest.addresses()
    links = read_links(rpc, named["vault"])
    for key, address in links.items():
        given = named.get(key) or getattr(manifest, key, None)
        if given and str(given).lower() != address.lower():
            raise UserError(f"manifest {key} {given} is not vault {named['vault']}'s {key} {address}")
    fields = {f.name for f in dataclasses.fields(Addresses)} - {"keeper"}
    return Addresses(keeper=keeper, **{k: v for k, v in {**named, **links}.items() if k in fields})


def venue_fetchers(s: KeeperSettings) -> list[Any]:
    window = timedelta(hours=s.strategy.history_hours)  # the parking spans read further back
    fetchers = []
    if "hyperliquid" in s.venues:
        hyperliquid = HyperliquidSource()

        def hl() -> FundingView:
            return hyperliquid.view(s.coin, window)

        fetchers.append(hl)
    if "dydx" in s.venues:
        dydx = DydxSource()

        def dy() -> FundingView:
            return dydx.view(f"{s.coin}-USD", window)

        fetchers.append(dy)
    return fetchers
