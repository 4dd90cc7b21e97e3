"""`ape run deploy --network <choice> --account <alias> [--config FILE] [--force]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from keeper.cli.common import Session, operator_command
from keeper.config import config_path, load_deploy_config
from keeper.deploy import deploy
from keeper.manifest import ADDRESS_KEYS, check_can_write, manifest_path, write_manifest


@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="deploy config (default: deploy/<network>.yaml, e.g. deploy/local.yaml)",
)
@click.option("--force", is_flag=True, help="replace an existing deployments/<chain_id>.json")
def _deploy(session: Session, account: Any, config_file: Path | None, force: bool) -> None:
    network = session.provider.network
    path = config_file or config_path(network.name)
    config = load_deploy_config(path)
    if not session.ephemeral:
        check_can_write(session.chain_id, force=force)
    click.echo(
        f"deploying to {session.choice} (chain {session.chain_id}) from {account.address}, config {path}"
    )
    manifest, stats = deploy(
        session.project, session.chain, account, config, network=session.choice, progress=click.echo
    )
    click.echo("")
    for key in ADDRESS_KEYS:
        click.echo(f"  {key:<15} {getattr(manifest, key)}")
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


cli = operator_command(
    name="deploy",
    help="Deploy the reference venue (unless configured), the BasisHedge blueprint and a BasisVault (which "
    "creates its hedge); write the manifest.",
)(_deploy)
