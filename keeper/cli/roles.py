"""`ape run roles keeper <address> [--revoke] --account <owner>`: the vault's keeper role."""

from __future__ import annotations

from typing import Any

import click

from keeper.cli.common import Session, operator_command
from keeper.core.errors import UserError


@click.argument("address")
@click.option("--revoke", is_flag=True, help="take the role away instead")
def _keeper(session: Session, account: Any, address: str, revoke: bool) -> None:
    from eth_utils.address import is_address, to_checksum_address

    if not is_address(address):
        raise UserError(f"'{address}' is not an address")
    who = str(to_checksum_address(address))
    dep = session.deployment()
    owner = str(dep.vault.owner())
    if account.address != owner:
        raise UserError(
            f"only the vault's owner ({owner}) grants the keeper role; sign with --account <owner>"
        )
    dep.vault.set_keeper(who, not revoke, sender=account)
    state = "is a keeper" if dep.vault.is_keeper(who) else "is not a keeper"
    click.echo(f"{who} {state} of vault {dep.vault.address} now")


@click.group(name="roles", help="Grant or revoke the vault's keeper role (the owner signs).")
def cli() -> None:
    pass


cli.add_command(
    operator_command(name="keeper", help="Give ADDRESS the keeper role (or --revoke it).")(_keeper)
)
