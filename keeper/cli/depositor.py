"""`ape run deposit`, `ape run withdraw` and `ape run status`."""

from __future__ import annotations

import json
from typing import Any

import click

from keeper.cli.common import Session, operator_command
from keeper.core.errors import UserError
from keeper.core.units import fmt_units, parse_amount
from keeper.ops import actions
from keeper.ops.actions import DEFAULT_SLIPPAGE_BPS


def _address(value: str | None, what: str) -> str | None:
    from eth_utils.address import is_address, to_checksum_address

    if value is None:
        return None
    if not is_address(value):
        raise UserError(f"{what} '{value}' is not an address")
    return str(to_checksum_address(value))


_max_slippage = click.option(
    "--max-slippage-bps",
    type=int,
    default=DEFAULT_SLIPPAGE_BPS,
    show_default=True,
    help="how far the share price may move against you between the quote and the block",
)


@click.option("--amount", required=True, help="asset to deposit, in whole units (e.g. 1000 or 12.5)")
@click.option("--receiver", help="who gets the shares (default: the signing account)")
@click.option(
    "--min-shares",
    help="fewest shares to accept, in whole shares (e.g. 999.5), enforced on chain "
    "(default: the quote less --max-slippage-bps)",
)
@_max_slippage
@click.option(
    "--faucet", "use_faucet", is_flag=True, help="mint missing test asset first (reference venue only)"
)
@click.option("--no-approve", is_flag=True, help="use an existing allowance; never send an approval")
def _deposit(
    session: Session,
    account: Any,
    amount: str,
    receiver: str | None,
    min_shares: str | None,
    max_slippage_bps: int,
    use_faucet: bool,
    no_approve: bool,
) -> None:
    dep = session.deployment()
    dec, sym = int(dep.asset.decimals()), str(dep.asset.symbol())
    assets = parse_amount(amount, dec)
    share_dec = int(dep.vault.decimals())
    floor = None if min_shares is None else parse_amount(min_shares, share_dec, "--min-shares")
    result = actions.deposit(
        dep,
        session.chain,
        account,
        assets,
        receiver=_address(receiver, "--receiver"),
        min_shares=floor,
        use_faucet=use_faucet,
        approve=not no_approve,
        max_slippage_bps=max_slippage_bps,
    )
    if result.minted:
        click.echo(f"faucet: minted {fmt_units(result.minted, dec)} {sym} to {account.address}")
    if result.approved:
        click.echo(f"approved the vault for exactly {fmt_units(result.approved, dec)} {sym}")
    click.echo(
        f"deposited {fmt_units(result.assets, dec)} {sym}; {result.receiver} received "
        f"{fmt_units(result.shares, share_dec, 6)} {dep.vault.symbol()} ({result.shares} share wei)"
    )


deposit_cli = operator_command(name="deposit", help="Deposit asset into the vault for shares.")(_deposit)


@click.option(
    "--amount", help="asset to receive exactly, in whole units (uses withdraw with a max-shares bound)"
)
@click.option("--shares", help="shares to redeem, in whole shares (uses redeem with a min-out bound)")
@click.option("--all", "everything", is_flag=True, help="redeem every share the owner holds")
@click.option(
    "--min-out",
    help="least asset to accept for --shares/--all, whole units (default: the quote less --max-slippage-bps)",
)
@click.option(
    "--max-shares",
    help="most shares --amount may burn, in whole shares (default: the quote plus --max-slippage-bps)",
)
@_max_slippage
@click.option("--receiver", help="who gets the asset (default: the signing account)")
@click.option("--owner", help="whose shares (default: the signing account; needs its share approval)")
def _withdraw(
    session: Session,
    account: Any,
    amount: str | None,
    shares: str | None,
    everything: bool,
    min_out: str | None,
    max_shares: str | None,
    max_slippage_bps: int,
    receiver: str | None,
    owner: str | None,
) -> None:
    dep = session.deployment()
    dec, sym = int(dep.asset.decimals()), str(dep.asset.symbol())
    share_dec = int(dep.vault.decimals())
    result = actions.withdraw(
        dep,
        session.chain,
        account,
        assets=None if amount is None else parse_amount(amount, dec),
        shares=None if shares is None else parse_amount(shares, share_dec, "shares"),
        everything=everything,
        min_out=None if min_out is None else parse_amount(min_out, dec, "--min-out"),
        max_shares=None if max_shares is None else parse_amount(max_shares, share_dec, "--max-shares"),
        receiver=_address(receiver, "--receiver"),
        owner=_address(owner, "--owner"),
        max_slippage_bps=max_slippage_bps,
    )
    click.echo(
        f"withdrew {fmt_units(result.assets, dec)} {sym} to {result.receiver}, burning "
        f"{fmt_units(result.shares, share_dec, 6)} shares of {result.owner}"
    )
    if result.hedged:
        click.echo(
            "the exit unwound its pro-rata slice of the hedge (spot sold, short bought back, margin freed) "
            "and was priced at the rules' worst-case unwind cost; any better fill stayed in the vault"
        )


withdraw_cli = operator_command(name="withdraw", help="Withdraw from the vault (slippage-protected).")(
    _withdraw
)


@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--holder", help="also show this address's position")
def _status(session: Session, as_json: bool, holder: str | None) -> None:
    dep = session.deployment()
    result = actions.status(dep, session.chain, holder=_address(holder, "--holder"))
    click.echo(json.dumps(result, indent=2) if as_json else actions.format_status(result))


status_cli = operator_command(signs=False, name="status", help="Show the vault's state, rules and roles.")(
    _status
)
