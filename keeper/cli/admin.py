"""`ape run admin ...`: every owner and guardian call on the vault, plus the permissionless
hedge upkeep (`unwind` steps after a shutdown, `sync` after a liquidation).

Same conventions as the other tools: `--network` (default `ethereum:local:node`),
`--account`; the role and the state the contract checks are read first, so a call the chain
would refuse ends with one `error:` line and exit status 1 before anything is sent (any
other revert is caught by ape's gas estimate, a simulated call, and explained the same way).
The logic is in `keeper/ops/actions.py` (admin section).
"""

from __future__ import annotations

from typing import Any

import click

from keeper.cli.common import Session, operator_command
from keeper.core.errors import UserError
from keeper.core.units import fmt_units, parse_amount, parse_decimal, to_wei
from keeper.ops import actions

NONE_WORDS = ("none", "0x0", "zero")


def _address(value: str, what: str, allow_none: bool = False) -> str:
    from eth_utils.address import is_address, to_checksum_address

    if allow_none and value.lower() in NONE_WORDS:
        return actions.ZERO_ADDRESS
    if not is_address(value):
        hint = " (or 'none')" if allow_none else ""
        raise UserError(f"{what} '{value}' is not an address{hint}")
    return str(to_checksum_address(value))


def _sent(receipt: Any, what: str) -> None:
    if receipt is None:
        click.echo(f"{what}; nothing sent")
    else:
        click.echo(f"{what} (tx {receipt.txn_hash}, gas {int(receipt.gas_used):,})")


def _pause(session: Session, account: Any) -> None:
    dep = session.deployment()
    _sent(actions.pause(dep, account), "deposits paused (exits still work)")


def _unpause(session: Session, account: Any) -> None:
    dep = session.deployment()
    _sent(actions.unpause(dep, account), "deposits reopened")


def _shutdown(session: Session, account: Any) -> None:
    dep = session.deployment()
    receipt = actions.shutdown(dep, account)
    _sent(receipt, "the vault is shut down for good: deposits and rebalances stop, exits keep working")
    if dep.hedge.active():
        click.echo("next: `ape run admin unwind` (anyone may call it) until the hedge is flat")


@click.option(
    "--step",
    default="auto",
    show_default=True,
    help="most short to close and base to sell per call, whole base units (e.g. 25), or 'auto': "
    "the largest step whose fills stay within the slippage rule on the current pool",
)
@click.option("--max-steps", type=click.IntRange(min=1), help="stop after this many calls")
@click.option(
    "--arb",
    "arb_between",
    is_flag=True,
    help="reference venue: arbitrage the spot pool to the oracle before each step",
)
def _unwind(session: Session, account: Any, step: str, max_steps: int | None, arb_between: bool) -> None:
    dep = session.deployment()
    base_dec, base_sym = int(dep.base.decimals()), str(dep.base.symbol())
    dec, sym = int(dep.asset.decimals()), str(dep.asset.symbol())
    size = None if step.strip().lower() == "auto" else parse_amount(step, 18, "--step")

    def show(item: actions.UnwindStep) -> None:
        click.echo(
            f"  step {item.number}: max {fmt_units(item.max_size, 18, 4)} {base_sym}; sold "
            f"{fmt_units(item.spot_sold, base_dec, 4)} {base_sym} spot, closed "
            f"{fmt_units(item.short_closed, 18, 4)} short, freed "
            f"{fmt_units(item.margin_withdrawn, dec)} {sym} margin -> {fmt_units(item.proceeds, dec)} {sym} "
            "to idle; "
            f"left: {fmt_units(item.spot_left, base_dec, 4)} spot, {fmt_units(item.short_left, 18, 4)} short "
            f"(gas {item.gas_used:,})"
        )

    steps = actions.unwind(
        dep, session.chain, account, step=size, max_steps=max_steps, arb_between=arb_between, on_step=show
    )
    if not steps and not dep.hedge.active():
        click.echo("nothing to unwind: the hedge is flat (no spot, short or margin); nothing sent")
        return
    total = sum(s.proceeds for s in steps)
    if dep.hedge.active():
        click.echo(
            f"stopped after {len(steps)} steps ({fmt_units(total, dec)} {sym} to idle); the hedge is not "
            "flat yet: run `ape run admin unwind` again"
        )
    else:
        click.echo(
            f"the hedge is flat after {len(steps)} steps: {fmt_units(total, dec)} {sym} back in the "
            "vault's idle"
        )


@click.argument("address")
@click.option("--revoke", is_flag=True, help="take the keeper role away instead of granting it")
def _set_keeper(session: Session, account: Any, address: str, revoke: bool) -> None:
    keeper = _address(address, "keeper")
    receipt = actions.set_keeper(session.deployment(), account, keeper, not revoke)
    if receipt is None:
        _sent(None, f"{keeper} {'is not' if revoke else 'is already'} a keeper")
    else:
        _sent(receipt, f"{keeper} {'is no longer' if revoke else 'is now'} a keeper")


@click.argument("address")
def _set_guardian(session: Session, account: Any, address: str) -> None:
    dep = session.deployment()
    guardian = _address(address, "guardian", allow_none=True)
    receipt = actions.set_guardian(dep, account, guardian)
    who = "nobody" if guardian == actions.ZERO_ADDRESS else guardian
    _sent(receipt, f"guardian {'is already' if receipt is None else 'set to'} {who}")


@click.option("--management-bps", type=int, required=True, help="annual management fee, bps of NAV")
@click.option(
    "--performance-bps", type=int, required=True, help="fee on gains above the high-water mark, bps"
)
def _set_fees(session: Session, account: Any, management_bps: int, performance_bps: int) -> None:
    dep = session.deployment()
    receipt = actions.set_fees(dep, session.chain, account, management_bps, performance_bps)
    fees = f"management {management_bps} bps/yr, performance {performance_bps} bps"
    _sent(receipt, f"fees {'are already' if receipt is None else 'set to'} {fees}")
    if int(str(dep.vault.fee_recipient()), 16) == 0:
        click.echo("note: no fee recipient is set, so no fees accrue (`ape run admin set-fee-recipient`)")


@click.argument("address")
def _set_fee_recipient(session: Session, account: Any, address: str) -> None:
    dep = session.deployment()
    recipient = _address(address, "fee recipient", allow_none=True)
    receipt = actions.set_fee_recipient(dep, session.chain, account, recipient)
    who = "nobody (no fees accrue)" if recipient == actions.ZERO_ADDRESS else recipient
    _sent(receipt, f"fee recipient {'is already' if receipt is None else 'set to'} {who}")


@click.argument("units")
def _set_deposit_cap(session: Session, account: Any, units: str) -> None:
    dep = session.deployment()
    dec, sym = int(dep.asset.decimals()), str(dep.asset.symbol())
    value = parse_decimal(units, "deposit cap")
    if value < 0:
        raise UserError(f"the deposit cap must not be negative, got {units}")
    cap = to_wei(value, dec, "deposit cap")
    receipt = actions.set_deposit_cap(dep, account, cap)
    _sent(receipt, f"deposit cap {'is already' if receipt is None else 'set to'} {fmt_units(cap, dec)} {sym}")


@click.argument("address")
def _transfer_ownership(session: Session, account: Any, address: str) -> None:
    new_owner = _address(address, "new owner", allow_none=True)
    receipt = actions.transfer_ownership(session.deployment(), account, new_owner)
    if new_owner == actions.ZERO_ADDRESS:
        _sent(receipt, "the pending ownership offer is cancelled")
    else:
        _sent(receipt, f"ownership offered to {new_owner}")
        click.echo(f"it takes effect when {new_owner} runs `ape run admin accept-ownership`")


def _accept_ownership(session: Session, account: Any) -> None:
    dep = session.deployment()
    _sent(actions.accept_ownership(dep, account), f"{account.address} now owns the vault")


def _sync(session: Session, account: Any) -> None:
    dep = session.deployment()
    dec, sym = int(dep.asset.decimals()), str(dep.asset.symbol())
    result = actions.sync(dep, account)
    if result.receipt is None:
        click.echo(
            f"the hedge's books match the venue (short {fmt_units(result.short_after, 18, 6)}); nothing sent"
        )
        return
    _sent(
        result.receipt,
        f"liquidation booked: short {fmt_units(result.short_before, 18, 6)} -> "
        f"{fmt_units(result.short_after, 18, 6)}, "
        f"equity {fmt_units(result.equity_before, dec)} -> {fmt_units(result.equity_after, dec)} {sym}",
    )


@click.group(
    name="admin",
    help="Owner and guardian calls on the vault, and the hedge's unwind and sync.",
    short_help="Owner and guardian calls; the hedge's unwind and sync.",
)
def cli() -> None:
    pass


_COMMANDS: tuple[tuple[str, str, Any], ...] = (
    ("pause", "Pause deposits (owner or guardian; exits keep working).", _pause),
    ("unpause", "Reopen deposits (owner or guardian).", _unpause),
    ("shutdown", "Shut the vault down for good (owner or guardian); then `unwind`.", _shutdown),
    ("unwind", "After a shutdown: unwind the hedge in bounded steps until it is flat (anyone).", _unwind),
    ("set-keeper", "Grant (or --revoke) the keeper role (owner).", _set_keeper),
    ("set-guardian", "Set the guardian, or 'none' (owner).", _set_guardian),
    ("set-fees", "Set the management and performance fees within the vault's caps (owner).", _set_fees),
    ("set-fee-recipient", "Set who receives fee shares, or 'none' (owner).", _set_fee_recipient),
    (
        "set-deposit-cap",
        "Set the deposit cap in whole asset units, up to the ceiling (owner).",
        _set_deposit_cap,
    ),
    (
        "transfer-ownership",
        "Offer ownership to ADDRESS (two-step), or 'none' to cancel (owner).",
        _transfer_ownership,
    ),
    ("accept-ownership", "Accept a pending ownership offer (the pending owner).", _accept_ownership),
    ("sync", "Book a liquidation the venue made on the hedge's short (anyone).", _sync),
)
for _name, _help, _body in _COMMANDS:
    cli.add_command(operator_command(name=_name, help=_help)(_body))
