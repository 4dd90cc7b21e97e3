"""`ape run deploy --network <choice> --account <alias> [--config FILE] [--force]`."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import click

from keeper.chain.manifest import ADDRESS_KEYS, check_can_write, manifest_path, write_manifest
from keeper.cli.common import Session, operator_command
from keeper.core.errors import UserError
from keeper.ops.config import config_path, load_deploy_config, with_spot
from keeper.ops.deploy import deploy

# Chains the reference venue (an open faucet, an oracle its feeder sets) may go to without
# --force-mainnet: local anvils and public testnets.
TEST_CHAIN_IDS = frozenset({31337, 1337, 11155111, 17000, 560048, 84532, 421614, 11155420, 80002})
TEST_NETWORK_NAMES = frozenset({"local", "sepolia", "holesky", "hoodi"})


def refuse_mainnet(network: str, options: dict[str, Any]) -> None:
    """Before connecting: a network that is not local or a known testnet needs --force-mainnet."""
    name = network.split(":")[1] if network.count(":") >= 1 else network
    if options.get("force_mainnet") or name in TEST_NETWORK_NAMES or name.endswith("-fork"):
        return
    raise UserError(
        f"{network} is not a local chain or a testnet: the reference venue has an open faucet and an "
        "oracle its feeder sets; pass --force-mainnet only if you mean to deploy there"
    )


@click.option(
    "--force-mainnet",
    is_flag=True,
    help="allow a deploy to a network that is not local or a known testnet (refused otherwise)",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="deploy config (default: deploy/<network>.yaml, e.g. deploy/local.yaml)",
)
@click.option(
    "--spot",
    type=click.Choice(["reference", "uniswap-v3"]),
    help="override the config's venue.spot.kind (uniswap-v3: the official v3 contracts, full range, "
    "unless the config sets range_bps)",
)
@click.option("--force", is_flag=True, help="replace an existing deployments/<chain_id>.json")
def _deploy(
    session: Session,
    account: Any,
    config_file: Path | None,
    force: bool,
    force_mainnet: bool,
    spot: str | None = None,
) -> None:
    if session.chain_id not in TEST_CHAIN_IDS and not session.is_local and not force_mainnet:
        raise UserError(
            f"chain {session.chain_id} is not a local chain or a known testnet; pass --force-mainnet only "
            "if you mean to deploy the reference venue (open faucet) there"
        )
    network = session.provider.network
    path = config_file or config_path(network.name)
    config = load_deploy_config(path)
    if spot is not None:
        config = with_spot(config, spot, str(path))
    if not session.ephemeral:
        check_can_write(session.chain_id, force=force)
    click.echo(
        f"deploying to {session.choice} (chain {session.chain_id}) from {account.address}, config {path}"
    )
    manifest, stats = deploy(
        session.project,
        session.chain,
        account,
        config,
        network=session.choice,
        progress=click.echo,
        record=None if session.ephemeral else functools.partial(_record_partial, session.chain_id),
    )
    click.echo("")
    for key in ADDRESS_KEYS:
        click.echo(f"  {key:<15} {getattr(manifest, key)}")
    for key, address in manifest.v3_addresses().items():
        click.echo(f"  {'v3 ' + key:<15} {address}")
    if manifest.uniswap_v3 is not None:
        click.echo(f"  {'v3 fee':<15} {manifest.uniswap_v3['fee']} (spot_pool is the UniswapV3Spot adapter)")
    click.echo(
        f"  {'owner':<15} {manifest.owner}"
        + (f" (offered to {manifest.pending_owner})" if manifest.pending_owner else "")
    )
    click.echo(f"  {'keeper':<15} {manifest.keeper}")
    click.echo(f"  {'guardian':<15} {manifest.guardian}")
    click.echo(
        f"\n{stats.transactions} transactions, {stats.gas_used:,} gas, {stats.seconds:.1f} s "
        f"(blocks {manifest.deploy_block}..{session.chain.blocks.head.number})"
    )
    if session.ephemeral:
        click.echo(
            f"note: {session.choice} is a throwaway chain that stops with this command, so no manifest was "
            "written; deploy with --network ethereum:local:node (after `make node`) to keep one"
        )
        return
    written = write_manifest(manifest, force=force)
    assert written == manifest_path(session.chain_id)
    click.echo(f"manifest written: {written}")
    if manifest.pending_owner:
        click.echo(
            f"ownership is offered to {manifest.pending_owner}: it takes effect when that account "
            "calls accept_ownership()"
        )


def _record_partial(chain_id: int, record: dict[str, Any]) -> str:
    """deployments/<chain_id>.partial.json: what a failed or interrupted deploy left on chain."""
    path = manifest_path(chain_id).with_suffix(".partial.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"chain_id": chain_id, **record}, indent=2) + "\n", encoding="utf-8")
    return str(path)


cli = operator_command(
    name="deploy",
    before_connect=refuse_mainnet,
    short_help="Deploy the venue and a BasisVault with its hedge; write the manifest.",
    help="Deploy the reference venue (unless configured), the BasisHedge blueprint and a BasisVault (which "
    "creates its hedge); write the manifest.",
)(_deploy)
