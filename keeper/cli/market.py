"""`ape run market price|asset-price|funding|premium|arb|replay|warmup|mirror`: the market
feeder for the reference venue."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from keeper.cli.common import Session, operator_command
from keeper.core.errors import UserError
from keeper.core.units import FUNDING_INTERVALS, parse_decimal, parse_rate
from keeper.ops import feeder

PER = click.Choice(sorted(FUNDING_INTERVALS))


def _at_least(
    name: str, minimum: int, default: int, help: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An integer option of at least `minimum`, its default shown."""
    return click.option(name, type=click.IntRange(min=minimum), default=default, show_default=True, help=help)


@click.argument("usd")
def _price(session: Session, account: Any, usd: str) -> None:
    dep = session.deployment()
    push = feeder.push_price(dep, account, parse_decimal(usd, "price"))
    click.echo(
        f"oracle {feeder.describe_price(push.old_e8)} -> {feeder.describe_price(push.new_e8)} "
        f"({push.move_bps:+.1f} bps); funding accrued first"
    )
    _asset_feed_note(session, dep)


def _asset_feed_note(session: Session, dep: Any) -> None:
    """A reminder when the asset's USD feed nears the vault's `max_asset_oracle_age`."""
    age = feeder.asset_feed_age(dep, session.chain)
    if age >= feeder.ASSET_HEARTBEAT_SECONDS:
        limit = int(dep.vault.max_asset_oracle_age())
        click.echo(
            f"note: the asset's USD feed is {age // 3_600} h old (the vault refuses entries and exits after "
            f"{limit // 3_600} h): `ape run market asset-price 1`, or keep `market mirror` running"
        )


@click.argument("usd")
def _asset_price(session: Session, account: Any, usd: str) -> None:
    dep = session.deployment()
    push = feeder.push_asset_price(dep, account, parse_decimal(usd, "asset price"))
    bound = int(dep.vault.max_depeg_bps())
    off = abs(push.new_e8 - 10**8) * 10_000 > 10**8 * bound
    click.echo(
        f"asset feed {feeder.describe_asset_price(push.old_e8)} -> {feeder.describe_asset_price(push.new_e8)}"
        + (
            f": beyond the vault's {bound} bps de-peg bound, entries and exits are closed until it is back"
            if off
            else f" (within the vault's {bound} bps de-peg bound)"
        )
    )


@click.argument("rate")
@click.option("--per", type=PER, default="1h", show_default=True, help="the interval RATE is quoted for")
def _funding(session: Session, account: Any, rate: str, per: str) -> None:
    dep = session.deployment()
    old, new = feeder.set_funding(dep, account, parse_rate(rate), per)
    click.echo(f"funding {feeder.describe_rate(old)} -> {feeder.describe_rate(new)}")


@click.argument("premium")
def _premium(session: Session, account: Any, premium: str) -> None:
    dep = session.deployment()
    old, new = feeder.set_premium(dep, account, parse_rate(premium, "premium"))
    index = int(dep.perp_market.index_price())
    mark = int(dep.perp_market.mark_price())
    click.echo(
        f"premium {feeder.describe_premium(old)} -> {feeder.describe_premium(new)}: mark "
        f"{feeder.describe_price(mark)} over the index {feeder.describe_price(index)} (funding unchanged)"
    )


def _arb(session: Session, account: Any) -> None:
    dep = session.deployment()
    before, after = feeder.arb(dep, account)
    oracle = int(dep.price_feed.latestAnswer())
    click.echo(
        f"spot pool {feeder.describe_price(before)} -> {feeder.describe_price(after)} "
        f"(oracle {feeder.describe_price(oracle)})"
    )


@click.argument("file", type=click.Path(path_type=Path))
@click.option("--per", type=PER, default="1h", show_default=True, help="interval of the file's funding rates")
@click.option("--price-column", help="price column name (default: price, price_usd or close)")
@click.option("--funding-column", help="funding column name (default: funding_rate, funding rate or rate)")
@click.option("--limit", type=click.IntRange(min=1), help="replay at most this many rows")
@click.option("--speed", default="1", show_default=True, help="live networks: wait gap / SPEED between rows")
@click.option(
    "--arb/--no-arb", "do_arb", default=True, show_default=True, help="arbitrage the pool after each step"
)
def _replay(
    session: Session,
    account: Any,
    file: Path,
    per: str,
    price_column: str | None,
    funding_column: str | None,
    limit: int | None,
    speed: str,
    do_arb: bool,
) -> None:
    dep = session.deployment()
    factor = parse_decimal(speed, "--speed")
    if factor <= 0:
        raise UserError(f"--speed must be positive, got {speed}")
    rows = feeder.load_replay(file, price_column=price_column, funding_column=funding_column, limit=limit)
    mode = "warping the chain's clock" if feeder.is_local(session.chain) else f"waiting gap/{factor} per step"
    click.echo(f"replaying {len(rows)} rows of {file} ({mode})")

    def show(step: feeder.ReplayStep) -> None:
        rate = "" if step.funding_e18 is None else f", funding {feeder.describe_rate(step.funding_e18)}"
        asset = ", asset feed 1 USD re-pushed" if step.asset_pushed else ""
        click.echo(f"  +{step.waited_seconds:>6}s  {feeder.describe_price(step.price_e8)}{rate}{asset}")

    feeder.replay(dep, session.chain, account, rows, interval=per, do_arb=do_arb, speed=factor, on_step=show)


@click.option(
    "--hours", type=int, default=24, show_default=True, help="chain hours to add (the keeper's window: 24)"
)
def _warmup(session: Session, account: Any, hours: int) -> None:
    dep = session.deployment()
    rate = int(dep.perp_market.funding_rate())
    if rate == 0:
        click.echo("note: the funding rate is 0: set one first (`ape run market funding 0.01% --per 8h`)")
    steps = feeder.warmup(dep, session.chain, account, hours)
    click.echo(
        f"warped {hours} h ahead at funding {feeder.describe_rate(rate)}: {len(steps)} price pushes; "
        "the keeper now has the funding history it acts on"
    )


@click.option("--venue", type=click.Choice(["hyperliquid"]), default="hyperliquid", show_default=True)
@click.option("--coin", default="ETH", show_default=True, help="the venue's coin to mirror")
@click.option(
    "--interval", type=click.FloatRange(min=1), default=60, show_default=True, help="seconds between polls"
)
@click.option(
    "--polls", type=click.IntRange(min=1), help="stop after this many polls (default: run until Ctrl-C)"
)
@click.option("--once", is_flag=True, help="poll once and stop (same as --polls 1)")
@_at_least("--deviation-bps", 0, 10, "push the price when it moved this much")
@_at_least("--heartbeat", 1, 3_600, "push the price at least this often (seconds)")
@click.option(
    "--arb/--no-arb", "do_arb", default=True, show_default=True, help="arbitrage the pool after a push"
)
@click.option(
    "--from-file",
    type=click.Path(path_type=Path),
    help="answer every poll with this recorded metaAndAssetCtxs body (offline runs)",
)
def _mirror(
    session: Session,
    account: Any,
    venue: str,
    coin: str,
    interval: float,
    polls: int | None,
    once: bool,
    deviation_bps: int,
    heartbeat: int,
    do_arb: bool,
    from_file: Path | None,
) -> None:
    dep = session.deployment()
    if from_file:
        read = feeder.recorded_reading(from_file, coin)
    else:
        read = feeder.hyperliquid_reading(coin, os.environ.get("HYPERLIQUID_INFO_URL") or None)
    source = str(from_file) if from_file else venue
    click.echo(f"mirroring {coin} from {source} every {interval:g}s onto {dep.manifest.perp_market}")

    def show(poll: feeder.MirrorPoll) -> None:
        did = [
            x
            for x, yes in (
                ("price pushed", poll.pushed_price),
                ("funding set", poll.set_funding),
                ("asset feed 1 USD re-pushed", poll.pushed_asset),
            )
            if yes
        ]
        click.echo(
            f"  {coin} {poll.price_usd} USD, funding {poll.funding_rate_per_hour * 100:.6f} %/h: "
            f"{', '.join(did) or 'no change'}"
        )

    feeder.mirror(
        dep,
        session.chain,
        account,
        read,
        polls=1 if once else polls,
        interval_seconds=interval,
        deviation_bps=deviation_bps,
        heartbeat_seconds=heartbeat,
        do_arb=do_arb,
        on_poll=show,
    )


@click.group(
    name="market",
    help="Feed the reference venue: push prices (base and asset), funding and the perp's premium, arbitrage, "
    "replay, warm up, mirror.",
    short_help="Feed the reference venue: price, asset-price, funding, premium, arb, replay, warmup, mirror.",
)
def cli() -> None:
    pass


cli.add_command(
    operator_command(name="price", help="Push a new oracle price (USD); funding accrues first.")(_price)
)
cli.add_command(
    operator_command(
        name="asset-price",
        help="Push the asset's own USD price (the vault's de-peg guard), e.g. 1 or 0.88 for a de-peg drill.",
    )(_asset_price)
)
cli.add_command(
    operator_command(
        name="funding",
        short_help="Set the perp funding rate (+ = longs pay shorts).",
        help="Set the perp funding rate, e.g. 0.0001 --per 8h or 0.01% --per 8h (+ = longs pay shorts).",
        context_settings={"ignore_unknown_options": True},  # so a negative RATE is a value, not an option
    )(_funding)
)
cli.add_command(
    operator_command(
        name="premium",
        short_help="Set the perp's premium over the index (mark = index x (1 + premium)).",
        help="Set the perp's premium over the index, e.g. 0.2%, 20bps or 0.002 (negative: a discount); "
        "the mark, where the perp fills and positions are valued, is index x (1 + premium), within +-10 %. "
        "Funding is not derived from it: set it with `market funding`.",
        context_settings={"ignore_unknown_options": True},  # so a negative PREMIUM is a value, not an option
    )(_premium)
)
cli.add_command(operator_command(name="arb", help="Trade the spot pool back to the oracle price.")(_arb))
cli.add_command(
    operator_command(name="replay", help="Push a recorded price[/funding] history step by step.")(_replay)
)
cli.add_command(
    operator_command(
        name="warmup",
        help="Local chains: warp HOURS ahead at the current funding, pushing the price, so the keeper has "
        "the funding history it acts on.",
    )(_warmup)
)
cli.add_command(
    operator_command(name="mirror", help="Mirror a live venue's oracle price and funding.")(_mirror)
)
