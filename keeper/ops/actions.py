"""Depositor and keeper operations on a deployment: deposit, withdraw, status, rebalance.

Each operation checks its preconditions against the chain before it sends anything (so a
bad request costs no gas and leaves nothing half-done), approves exactly what it spends,
and raises `UserError` with one line a depositor can act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from keeper.core.errors import UserError
from keeper.core.rules import VaultRules
from keeper.core.units import apr, fmt_units, from_wei, price_from_e8, rate_per_hour
from keeper.ops.deployment import Deployment

BPS = 10_000
SIZE_UNIT = 10**18
PRICE_UNIT = 10**8
VIRTUAL_SHARES = 10**6  # BasisVault's virtual shares (exits slice by supply + these)
MAX_UINT256 = 2**256 - 1

# Revert reasons an operator or depositor can act on, as one line each. Matched by prefix.
_REVERTS = {
    "vault: stale oracle": "the vault refused: the oracle price is stale (the feeder must push one: "
    "`ape run market price <usd>`)",
    "vault: oracle answer invalid": "the vault refused: the oracle answer is invalid",
    "vault: stale asset oracle": "the vault refused: the asset's USD feed is stale (the feeder must push "
    "one: `ape run market asset-price 1`)",
    "vault: asset oracle answer invalid": "the vault refused: the asset's USD feed answer is invalid",
    "vault: asset de-pegged": "the vault refused: the asset is off its 1 USD peg by more than the "
    "vault's max_depeg_bps; entries and exits reopen when it is back within the bound",
    "vault: deposits paused": "deposits are paused by the guardian (exits still work)",
    "vault: shut down": "the vault is shut down: deposits and rebalances are closed for good (exits work)",
    "vault: deposit above maximum": "the deposit is above the vault's deposit cap",
    "vault: shares above maximum": "the share price moved against you beyond the bound since the quote "
    "(--max-shares / --max-slippage-bps); nothing was withdrawn: retry, or allow more",
    "vault: assets below minimum": "the exit would pay less than the minimum (--min-out / "
    "--max-slippage-bps); nothing was withdrawn",
    "vault: exit cost above bound": "unwinding this exit's slice of the hedge costs more than the rules' "
    "bound right now; try a smaller amount, or --shares/--all, or after `ape run market arb`",
    "vault: nothing to withdraw": "the hedge's worst-case unwind cost is above the NAV: nothing can be "
    "withdrawn by --amount now; use --shares or --all",
    "hedge: spot slippage": "the spot pool is too far from the oracle for the hedge's slippage rule: "
    "run `ape run market arb` (or wait for arbitrage) and retry",
    "pool: output below minimum": "the spot pool is too far from the oracle for the hedge's slippage "
    "rule: run `ape run market arb` (or wait for arbitrage) and retry",
    "hedge: stale oracle": "the hedge refused: the oracle price is stale (push one: "
    "`ape run market price <usd>`)",
    "hedge: exit slice insolvent": "the perp account cannot pay this exit's margin slice (equity below what "
    "the stayers keep); run `ape run admin sync` and check `ape run status`",
    "hedge: not shut down": "the vault is not shut down: unwind steps open only after "
    "`ape run admin shutdown`",
    "hedge: keeper loss budget spent": "the keeper's daily loss budget is spent; rebalances that lose NAV "
    "wait for the next window",
    "hedge: not keeper": "this account is not a keeper of the vault",
    "perp: stale oracle": "the perp market refused: the oracle price is stale (push one: "
    "`ape run market price <usd>`)",
    "perp: price above acceptable": "the perp fill is beyond the hedge's slippage rule (the trade is too "
    "large for the market's depth); use a smaller step",
    "perp: price below acceptable": "the perp fill is beyond the hedge's slippage rule (the trade is too "
    "large for the market's depth); use a smaller step",
    "vault: not owner or guardian": "this account is neither the vault's owner nor its guardian",
    "ownable: caller is not the owner": "this account is not the vault's owner",
    "ownable_2step: caller is not the new owner": "this account is not the vault's pending owner",
    "vault: paused": "deposits are already paused",
    "vault: not paused": "deposits are not paused",
    "vault: cap above ceiling": "the deposit cap is above the vault's deposit_cap_ceiling",
    "vault: management fee above cap": "the management fee is above the vault's max_management_fee_bps",
    "vault: performance fee above cap": "the performance fee is above the vault's max_performance_fee_bps",
    "access_control: account is missing role": "this account lacks the role for that call",
}


def revert_message(err: Exception) -> str | None:
    """A one-line explanation for a contract revert, or None when `err` is not one."""
    from ape.exceptions import ContractLogicError

    if not isinstance(err, ContractLogicError):
        return None
    reason = str(err.message if hasattr(err, "message") else err).strip()
    for prefix, text in _REVERTS.items():
        if reason.startswith(prefix):
            return text
    return f"the transaction would revert: {reason or 'no reason given'}"


@contextmanager
def explain_reverts(action: str) -> Iterator[None]:
    """Turns a revert (raised by ape's gas estimate, before anything is sent) into a UserError."""
    try:
        yield
    except UserError:
        raise
    except Exception as err:
        message = revert_message(err)
        if message is None:
            raise
        raise UserError(f"{action}: {message}") from err


# ----------------------------------------------------------------------------- checks


def _duration(seconds: int) -> str:
    seconds = max(seconds, 0)
    hours, rest = divmod(seconds, 3_600)
    if hours >= 48:
        return f"{hours // 24}d {hours % 24}h"
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def oracle_age(dep: Deployment, now: int) -> int:
    _, _, _, updated_at, _ = dep.price_feed.latestRoundData()
    return now - int(updated_at)


def check_oracle_fresh(dep: Deployment, now: int) -> None:
    """What every entry and exit needs (and `set_fees`/`set_fee_recipient`): a fresh base
    oracle, a fresh asset/USD feed and the asset within `max_depeg_bps` of 1 USD."""
    _check_base_oracle(dep, now, int(dep.vault.max_oracle_age()), "vault")
    check_asset_feed(dep, now)


def _check_base_oracle(dep: Deployment, now: int, limit: int, who: str) -> None:
    age = oracle_age(dep, now)
    if age > limit:
        raise UserError(
            f"the oracle price is stale: last update {_duration(age)} ago, the {who} accepts "
            f"{_duration(limit)}; the feeder must push one (`ape run market price <usd>` or `market mirror`)"
        )


def check_asset_feed(dep: Deployment, now: int) -> None:
    """The vault's de-peg guard, read first: its asset feed fresh and near 1 USD."""
    _, answer, _, updated_at, _ = dep.asset_feed.latestRoundData()
    age = now - int(updated_at)
    limit = int(dep.vault.max_asset_oracle_age())
    if age > limit:
        raise UserError(
            f"the asset's USD feed is stale: last update {_duration(age)} ago, the vault accepts "
            f"{_duration(limit)}; the feeder must push one (`ape run market asset-price 1`, or keep "
            "`market mirror` running)"
        )
    price = int(answer)
    bound = int(dep.vault.max_depeg_bps())
    if price <= 0 or abs(price - PRICE_UNIT) * BPS > PRICE_UNIT * bound:
        gap = Decimal(abs(price - PRICE_UNIT) * BPS) / PRICE_UNIT
        raise UserError(
            f"the asset is de-pegged: its USD feed reads {price_from_e8(price):.4f}, {gap:,.0f} bps from 1, "
            f"beyond the vault's max_depeg_bps {bound}; entries and exits stay closed until it is back "
            "within the bound"
        )


def now_of(chain: Any) -> int:
    """The timestamp the next transaction will run at (anvil: the pending block's)."""
    return int(chain.pending_timestamp)


def _decimals(token: Any) -> int:
    return int(token.decimals())


def _symbol(token: Any) -> str:
    return str(token.symbol())


def is_test_token(token: Any) -> bool:
    try:
        token.mint_cap()
    except Exception:
        return False
    return True


# ----------------------------------------------------------------------------- deposit


@dataclass
class DepositResult:
    assets: int
    shares: int
    receiver: str
    approved: int  # the allowance this call set (0: an existing one covered it)
    minted: int  # test asset minted from the faucet first


# Default slippage tolerance of deposits and exits: the share price moves between the quote
# and the block by the funding accrued meanwhile (down under negative funding), so a bound at
# the exact quote fails whenever funding is negative. --max-slippage-bps changes it.
DEFAULT_SLIPPAGE_BPS = 10
MAX_SLIPPAGE_BPS = 1_000
DEPOSIT_TOLERANCE_BPS = DEFAULT_SLIPPAGE_BPS


def check_slippage(bps: int) -> int:
    if not 0 <= bps <= MAX_SLIPPAGE_BPS:
        raise UserError(f"--max-slippage-bps must be 0..{MAX_SLIPPAGE_BPS}, got {bps}")
    return bps


def deposit(
    dep: Deployment, chain: Any, account: Any, assets: int,
    *, receiver: str | None = None, min_shares: int | None = None,
    max_slippage_bps: int = DEFAULT_SLIPPAGE_BPS, use_faucet: bool = False, approve: bool = True,
) -> DepositResult:  # fmt: skip
    """Deposits exactly `assets` wei for at least `min_shares`, enforced by the vault in the
    same transaction (default: the quote less `max_slippage_bps`, room for the share price
    to move by a few seconds of funding between the quote and the block)."""
    check_slippage(max_slippage_bps)
    from keeper.ops.contracts import faucet

    vault, asset = dep.vault, dep.asset
    dec, sym = _decimals(asset), _symbol(asset)
    receiver = receiver or account.address
    if assets <= 0:
        raise UserError(f"amount must be positive, got {assets}")
    if vault.is_shutdown():
        raise UserError("the vault is shut down: deposits are closed for good (exits still work)")
    if vault.paused():
        raise UserError("deposits are paused by the guardian (exits still work)")
    check_oracle_fresh(dep, now_of(chain))
    room = int(vault.maxDeposit(receiver))
    if assets > room:
        raise UserError(
            f"the vault takes at most {fmt_units(room, dec)} {sym} more (deposit cap); "
            f"asked for {fmt_units(assets, dec)}"
        )
    quote = int(vault.previewDeposit(assets))
    if quote == 0:
        raise UserError(f"{fmt_units(assets, dec, dec)} {sym} is too small: it buys 0 shares")
    share_dec = _decimals(vault)
    if min_shares is not None and quote < min_shares:
        raise UserError(
            f"the deposit buys {fmt_units(quote, share_dec, share_dec)} shares now, below --min-shares "
            f"{fmt_units(min_shares, share_dec, share_dec)}"
        )
    floor = quote * (BPS - max_slippage_bps) // BPS if min_shares is None else min_shares

    minted = 0
    balance = int(asset.balanceOf(account.address))
    if balance < assets:
        if not use_faucet:
            hint = " (--faucet mints test tokens)" if is_test_token(asset) else ""
            raise UserError(
                f"{account.address} holds {fmt_units(balance, dec)} {sym}, less than the "
                f"{fmt_units(assets, dec)} {sym} to deposit{hint}"
            )
        if not is_test_token(asset):
            raise UserError(f"--faucet works only on the reference venue's test tokens; {sym} is not one")
        minted = assets - balance
        faucet(asset, account, minted)

    allowance = int(asset.allowance(account.address, vault.address))
    approved = 0
    if allowance < assets:
        if not approve:
            raise UserError(
                f"missing approval: the vault may spend {fmt_units(allowance, dec)} {sym} of "
                f"{account.address}, the deposit needs {fmt_units(assets, dec)}; approve it or drop "
                "--no-approve"
            )
        asset.approve(vault.address, assets, sender=account)
        approved = assets

    before = int(vault.balanceOf(receiver))
    try:
        with explain_reverts("deposit refused"):
            vault.deposit(assets, receiver, floor, sender=account)
    except BaseException:
        if approved:  # leave no allowance behind for a deposit that did not happen
            asset.approve(vault.address, allowance, sender=account)
        raise
    shares = int(vault.balanceOf(receiver)) - before
    return DepositResult(assets=assets, shares=shares, receiver=receiver, approved=approved, minted=minted)


# ----------------------------------------------------------------------------- withdraw


@dataclass
class WithdrawResult:
    assets: int
    shares: int
    receiver: str
    owner: str
    hedged: bool = False  # the exit unwound its slice of the hedge (priced at the rules' bound)


def withdraw(
    dep: Deployment, chain: Any, account: Any,
    *, assets: int | None = None, shares: int | None = None, everything: bool = False,
    min_out: int | None = None, max_shares: int | None = None, max_slippage_bps: int = DEFAULT_SLIPPAGE_BPS,
    receiver: str | None = None, owner: str | None = None,
) -> WithdrawResult:  # fmt: skip
    """Exits through the slippage-protected calls: `withdraw(assets, .., max_shares)` for an
    exact amount (bound: `max_shares`, else the quote plus `max_slippage_bps`, at most the
    balance), `redeem(shares, .., min_assets)` for shares or everything (bound: `min_out`,
    else the quote less `max_slippage_bps`)."""
    check_slippage(max_slippage_bps)
    vault, asset = dep.vault, dep.asset
    dec, sym = _decimals(asset), _symbol(asset)
    if sum((assets is not None, shares is not None, everything)) != 1:
        raise UserError("give exactly one of --amount, --shares or --all")
    if assets is not None and assets <= 0:
        raise UserError(f"amount must be positive, got {assets}")
    if shares is not None and shares <= 0:
        raise UserError(f"shares must be positive, got {shares}")
    if min_out is not None and assets is not None:
        raise UserError("--min-out goes with --shares or --all; --amount withdraws exactly that amount")
    if max_shares is not None and assets is None:
        raise UserError("--max-shares goes with --amount; bound --shares/--all with --min-out")
    receiver = receiver or account.address
    owner = owner or account.address
    held = int(vault.balanceOf(owner))
    if held == 0:
        raise UserError(f"{owner} holds no shares of this vault")
    check_oracle_fresh(dep, now_of(chain))
    value = int(vault.previewRedeem(held))

    if assets is not None:
        with explain_reverts("withdraw refused"):  # hedged: reverts when the cost bound is above NAV
            needed = int(vault.previewWithdraw(assets))
        if needed > held:
            raise UserError(
                f"more than the balance: {owner} holds {held} shares, worth {fmt_units(value, dec)} {sym} "
                f"on exit; asked for {fmt_units(assets, dec)}"
            )
        share_dec = _decimals(vault)
        if max_shares is not None and needed > max_shares:
            raise UserError(
                f"{fmt_units(assets, dec)} {sym} costs {fmt_units(needed, share_dec, 6)} shares now, above "
                f"--max-shares {fmt_units(max_shares, share_dec, 6)}; nothing was withdrawn"
            )
        bound = max_shares if max_shares is not None else min(held, needed * (BPS + max_slippage_bps) // BPS)
    else:
        needed = held if everything else int(shares or 0)
        if needed > held:
            raise UserError(f"more than the balance: {owner} holds {held} shares; asked to redeem {needed}")
        quote = int(vault.previewRedeem(needed))
        if quote == 0:
            raise UserError(f"{needed} shares are worth 0 {sym} on exit; nothing to withdraw")
        if min_out is not None and min_out > quote:
            raise UserError(
                f"--min-out {fmt_units(min_out, dec)} {sym} is above what the shares fetch now "
                f"({fmt_units(quote, dec)} {sym}); nothing was withdrawn"
            )
    _check_unwind_fill(dep, needed)
    if owner != account.address:
        allowance = int(vault.allowance(owner, account.address))
        if allowance < needed:
            raise UserError(
                f"missing approval: {owner} lets {account.address} spend {allowance} of its shares, "
                f"this exit needs {needed}"
            )

    hedged = bool(dep.hedge.active())
    paid_before = int(asset.balanceOf(receiver))
    shares_before = int(vault.balanceOf(owner))
    with explain_reverts("withdraw refused"):
        if assets is not None:
            vault.withdraw(assets, receiver, owner, bound, sender=account)
        else:
            quoted = int(vault.previewRedeem(needed))
            floor = min_out if min_out is not None else quoted * (BPS - max_slippage_bps) // BPS
            vault.redeem(needed, receiver, owner, floor, sender=account)
    return WithdrawResult(
        assets=int(asset.balanceOf(receiver)) - paid_before,
        shares=shares_before - int(vault.balanceOf(owner)),
        receiver=receiver,
        owner=owner,
        hedged=hedged,
    )


def _check_unwind_fill(dep: Deployment, shares: int) -> None:
    """While the hedge holds anything every exit unwinds its slice of it: the spot sale with
    `min_out` at the oracle value less the slippage rule, the short's buy-back within the
    same rule of the market's mark. When the pool or the perp market would fill worse, say
    so before sending."""
    vault, hedge = dep.vault, dep.hedge
    if not hedge.active():
        return
    denominator = int(vault.totalSupply()) + VIRTUAL_SHARES
    price = int(dep.price_feed.latestAnswer())
    slippage = int(hedge.max_slippage_bps())
    base_part = int(hedge.spot_base()) * shares // denominator
    if base_part and int(dep.spot_pool.get_amount_out(dep.base.address, base_part)):
        value = base_part * price * 10 ** _decimals(dep.asset) // (10 ** _decimals(dep.base) * PRICE_UNIT)
        floor = -(-value * (BPS - slippage) // BPS)
        out = int(dep.spot_pool.get_amount_out(dep.base.address, base_part))
        if out < floor:
            pool = int(dep.spot_pool.price_e8())
            gap = Decimal((pool - price) * BPS) / price
            raise UserError(
                f"the spot pool ({gap:+.0f} bps from the oracle) would fill this exit's spot sale beyond the "
                f"vault's {slippage} bps slippage rule: run `ape run market arb` (or wait for "
                "arbitrage) and retry"
            )
    short_part = int(hedge.short_size()) * shares // denominator
    if short_part:
        fill = int(dep.perp_market.quote_fill_price(short_part))
        mark = int(dep.perp_market.mark_price())
        if fill * BPS > mark * (BPS + slippage):
            gap = Decimal((fill - mark) * BPS) / mark
            raise UserError(
                f"buying back this exit's slice of the short ({fmt_units(short_part, 18, 6)} base) would "
                "fill "
                f"{gap:.0f} bps above the perp's mark, beyond the hedge's {slippage} bps slippage rule: exit "
                "in smaller parts"
            )


# ----------------------------------------------------------------------------- status


def _ratio_bps(numerator: int, denominator: int) -> Decimal | None:
    return None if denominator == 0 else Decimal(numerator * BPS) / denominator


def _events(event: Any, start: int, stop: int) -> list[Any] | None:
    """The event's logs in blocks [start, stop]; None when the node cannot serve the range
    (a public RPC may cap `eth_getLogs`): status then says so and shows the rest."""
    try:
        return list(event.range(start, stop + 1))
    except Exception:
        return None


def budget_status(hedge: Any, now: int) -> dict[str, Any]:
    """The keeper's loss budget in the current 24 h window (BasisHedge._charge_budget): a
    window starts at the first charged rebalance, its budget is `keeper_loss_budget_bps` of
    the NAV then; after the window a new one starts with nothing spent."""
    start = int(hedge.budget_window_start())
    window = int(hedge.KEEPER_BUDGET_WINDOW())
    bps = int(hedge.keeper_loss_budget_bps())
    open_ = start != 0 and now < start + window
    nav = int(hedge.budget_nav()) if open_ else 0
    spent = int(hedge.budget_spent()) if open_ else 0
    budget = nav * bps // BPS
    return {
        "keeper_loss_budget_bps": bps,
        "window_open": open_,
        "window_start": start if open_ else None,
        "window_ends_in_seconds": start + window - now if open_ else None,
        "budget_wei": budget if open_ else None,
        "spent_wei": spent,
        "used_pct": None if not open_ or budget == 0 else f"{Decimal(spent * 100) / budget:.1f}",
    }


def status(dep: Deployment, chain: Any, holder: str | None = None) -> dict[str, Any]:
    """Everything an operator looks at, as JSON-ready values (decimals as strings, with
    units in the key names; raw contract integers under `*_wei`, `*_e8`, `*_e18`)."""
    vault, hedge, asset, perp, feed, pool = (
        dep.vault,
        dep.hedge,
        dep.asset,
        dep.perp_market,
        dep.price_feed,
        dep.spot_pool,
    )
    m = dep.manifest
    dec, sym = _decimals(asset), _symbol(asset)
    share_dec = int(vault.decimals())
    head = chain.blocks.head
    now = int(head.timestamp)

    nav = int(vault.totalAssets())
    supply = int(vault.totalSupply())
    share_price = from_wei(int(vault.convertToAssets(10**share_dec)), dec)
    idle = int(vault.idle())
    spot_base = int(hedge.spot_base())
    short = int(hedge.short_size())  # the venue's short now
    booked = int(hedge.booked_short())
    _, answer, _, updated_at, _ = feed.latestRoundData()
    price_e8 = int(answer)
    _, asset_answer, _, asset_updated_at, _ = dep.asset_feed.latestRoundData()
    base_dec = _decimals(dep.base)
    spot_value = spot_base * price_e8 * 10**dec // (10**base_dec * PRICE_UNIT)
    short_value = short * price_e8 * 10**dec // (SIZE_UNIT * PRICE_UNIT)
    pos = perp.position(hedge.address)
    mark_e8 = int(perp.mark_price())
    premium_e18 = int(perp.premium())
    margin = int(pos.margin) + int(pos.accrued_funding)
    equity = int(pos.equity)
    rate_e18 = int(perp.funding_rate())
    per_hour = rate_per_hour(rate_e18)
    pool_price_e8 = int(pool.price_e8())
    delta = _ratio_bps(spot_value - short_value, nav)
    last_rebalance = int(hedge.last_rebalance_time())
    pending_owner = str(vault.pending_owner())
    shutdown = bool(vault.is_shutdown())
    active = bool(hedge.active())
    booked_logs = _events(hedge.LiquidationBooked, m.deploy_block, int(head.number))
    liquidations = (
        None
        if booked_logs is None
        else [
            {
                "block": int(log.block_number),
                "transaction": str(log.transaction_hash),
                "short_before_e18": int(log.short_before),
                "short_after_e18": int(log.short_after),
                "equity_before_wei": int(log.equity_before),
                "equity_after_wei": int(log.equity_after),
            }
            for log in booked_logs or []
        ]
    )
    unwinds = (_events(hedge.Unwound, m.deploy_block, int(head.number)) if shutdown else None) or []

    def d(x: Decimal | None, places: int = 2) -> str | None:
        # quantize, then + 0: a tiny negative reads "0.0", not "-0.0"
        return None if x is None else f"{x.quantize(Decimal(1).scaleb(-places)) + 0:.{places}f}"

    rules = {key: int(getattr(vault, key)()) for key in VaultRules.VAULT_FIELDS}
    rules |= {key: int(getattr(hedge, key)()) for key in VaultRules.HEDGE_FIELDS if key not in rules}
    result: dict[str, Any] = {
        "network": m.network,
        "chain_id": m.chain_id,
        "block": int(head.number),
        "timestamp": now,
        "vault": m.vault,
        "hedge": m.hedge,
        "name": str(vault.name()),
        "symbol": str(vault.symbol()),
        "asset_symbol": sym,
        "asset_decimals": dec,
        "base_symbol": _symbol(dep.base),
        "nav_wei": nav,
        "nav": d(from_wei(nav, dec)),
        "supply_shares_wei": supply,
        "share_decimals": share_dec,
        "share_price": d(share_price, 6),
        "idle_wei": idle,
        "spot_base_wei": spot_base,
        "spot_value_wei": spot_value,
        "short_size_e18": short,
        "booked_short_e18": booked,
        "liquidated": short < booked,
        "short_value_wei": short_value,
        "perp_margin_wei": margin,
        "perp_equity_wei": equity,
        "perp_unrealized_pnl_wei": int(pos.unrealized_pnl),
        "perp_accrued_funding_wei": int(pos.accrued_funding),
        "delta_bps": d(delta, 1),
        "margin_ratio_bps": None if short == 0 else int(pos.margin_ratio_bps),
        "leverage": None if short == 0 or equity <= 0 else d(Decimal(short_value) / equity, 3),
        "hedge_active": active,
        "liquidations": liquidations,
        "keeper_budget": budget_status(hedge, now),
        "oracle_price_e8": price_e8,
        "oracle_price": d(price_from_e8(price_e8)),
        "oracle_age_seconds": now - int(updated_at),
        "asset_price_e8": int(asset_answer),
        "asset_price": d(price_from_e8(int(asset_answer)), 4),
        "asset_oracle_age_seconds": now - int(asset_updated_at),
        "pool_price_e8": pool_price_e8,
        "pool_vs_oracle_bps": d(_ratio_bps(pool_price_e8 - price_e8, price_e8), 1),
        "perp_mark_price_e8": mark_e8,
        "perp_mark_price": d(price_from_e8(mark_e8)),
        "perp_premium_e18": premium_e18,
        "perp_premium_bps": d(Decimal(premium_e18 * BPS) / 10**18, 1),
        "funding_rate_e18_per_second": rate_e18,
        "funding_rate_per_hour": f"{per_hour:.10f}",
        "funding_apr": f"{apr(per_hour):.6f}",
        "rules": rules,
        "roles": {
            "owner": str(vault.owner()),
            "pending_owner": None if int(pending_owner, 16) == 0 else pending_owner,
            "guardian": str(vault.guardian()),
            "keeper": m.keeper,
            "keeper_active": bool(m.keeper and vault.is_keeper(m.keeper)),
            "fee_recipient": str(vault.fee_recipient()),
            "feeder": m.feeder,
        },
        "management_fee_bps": int(vault.management_fee_bps()),
        "performance_fee_bps": int(vault.performance_fee_bps()),
        "deposit_cap_wei": int(vault.deposit_cap()),
        "last_rebalance_time": last_rebalance,
        "seconds_since_rebalance": now - last_rebalance,
        "paused": bool(vault.paused()),
        "shutdown": shutdown,
        "unwind": None
        if not shutdown
        else {
            "done": not active,
            "steps": len(unwinds),
            "proceeds_wei": sum(int(log.proceeds) for log in unwinds),
            "spot_left_wei": spot_base,
            "short_left_e18": short,
        },
    }
    if holder is not None:
        held = int(vault.balanceOf(holder))
        result["holder"] = {
            "address": holder,
            "shares_wei": held,
            "value_wei": int(vault.convertToAssets(held)),
            "exit_value_wei": int(vault.previewRedeem(held)) if held else 0,
            "asset_balance_wei": int(asset.balanceOf(holder)),
        }
    return result


def _funding_side(rate: Decimal) -> str:
    if rate > 0:
        return "longs pay shorts: the vault earns"
    return "shorts pay longs: the vault pays" if rate < 0 else "zero"


def format_status(s: dict[str, Any]) -> str:
    """The human table for `ape run status`."""
    dec, sym, base = s["asset_decimals"], s["asset_symbol"], s["base_symbol"]

    def money(key: str) -> str:
        return f"{fmt_units(s[key], dec)} {sym}"

    def size(wei: int) -> str:
        return f"{fmt_units(wei, 18, 6)} {base}"

    rate = Decimal(s["funding_rate_per_hour"])
    state = "SHUT DOWN" if s["shutdown"] else ("deposits PAUSED" if s["paused"] else "open")
    r = s["roles"]
    b = s["keeper_budget"]
    lines = [
        f"{s['name']} ({s['symbol']})  {s['vault']}  on {s['network']} (chain {s['chain_id']}, "
        f"block {s['block']})",
        f"  state           {state}",
        f"  NAV             {money('nav_wei')}   share price {s['share_price']} {sym}   "
        f"supply {fmt_units(s['supply_shares_wei'], s['share_decimals'])}",
        f"  idle            {money('idle_wei')}",
        f"  hedge           {s['hedge']}" + ("" if s["hedge_active"] else " (flat)"),
        f"  spot            {size(s['spot_base_wei'])} = {money('spot_value_wei')}",
        f"  short (venue)   {size(s['short_size_e18'])} = {money('short_value_wei')}   "
        f"booked {size(s['booked_short_e18'])}",
        f"  perp margin     {money('perp_margin_wei')}   equity {money('perp_equity_wei')}",
        f"  delta           {s['delta_bps'] or '-'} bps of NAV   margin ratio "
        f"{s['margin_ratio_bps'] if s['margin_ratio_bps'] is not None else '-'} bps   "
        f"leverage {s['leverage'] or '-'}x",
    ]
    if s["liquidated"]:
        lines.append(
            f"  LIQUIDATED: venue short {size(s['short_size_e18'])} < booked {size(s['booked_short_e18'])}, "
            "run `ape run admin sync`"
        )
    if s["liquidations"] is None:
        lines.append("  liquidation     the node would not serve the hedge's LiquidationBooked logs")
    for event in s["liquidations"] or []:
        lines.append(
            f"  liquidation     booked in block {event['block']}: short {size(event['short_before_e18'])} -> "
            f"{size(event['short_after_e18'])}, equity {fmt_units(event['equity_before_wei'], dec)} -> "
            f"{fmt_units(event['equity_after_wei'], dec)} {sym}"
        )
    if b["window_open"]:
        lines.append(
            f"  keeper budget   {fmt_units(b['spent_wei'], dec)} of {fmt_units(b['budget_wei'], dec)} {sym} "
            f"used ({b['used_pct'] or '0.0'} %; {b['keeper_loss_budget_bps']} bps of NAV per 24 h), window "
            f"ends in {_duration(b['window_ends_in_seconds'])}"
        )
    else:
        lines.append(
            f"  keeper budget   nothing used ({b['keeper_loss_budget_bps']} bps of NAV per 24 h from the "
            "next rebalance that loses NAV)"
        )
    if s["unwind"] is not None:
        u = s["unwind"]
        if u["done"]:
            lines.append(
                f"  unwind          done: the hedge is flat ({u['steps']} steps, "
                f"{fmt_units(u['proceeds_wei'], dec)} {sym} back to idle)"
            )
        else:
            lines.append(
                f"  unwind          in progress: {size(u['spot_left_wei'])} spot and "
                f"{size(u['short_left_e18'])} short left after {u['steps']} steps "
                f"({fmt_units(u['proceeds_wei'], dec)} {sym} back so far); `ape run admin unwind`"
            )
    lines += [
        f"  oracle          {s['oracle_price']} USD, {_duration(s['oracle_age_seconds'])} old   "
        f"pool {s['pool_vs_oracle_bps']} bps from it",
        f"  perp mark       {s['perp_mark_price']} USD, premium "
        f"{Decimal(s['perp_premium_bps']):+.1f} bps over the oracle (the index); the short is valued at it",
        f"  asset feed      {s['asset_price']} USD per {sym}, {_duration(s['asset_oracle_age_seconds'])} old",
        f"  funding now     {rate * 100:.6f} %/h = {Decimal(s['funding_apr']) * 100:.2f} % APR "
        f"({_funding_side(rate)})",
        f"  last rebalance  {_duration(s['seconds_since_rebalance'])} ago",
        f"  fees            management {s['management_fee_bps']} bps/yr, performance "
        f"{s['performance_fee_bps']} bps   deposit cap {money('deposit_cap_wei')}",
        f"  roles           owner {r['owner']}"
        + (f" (offered to {r['pending_owner']})" if r["pending_owner"] else ""),
        f"                  guardian {r['guardian']}   keeper {r['keeper']}"
        + ("" if r["keeper_active"] else " (not active)"),
        f"                  fee recipient {r['fee_recipient']}   feeder {r['feeder']}",
        "  rules           " + ", ".join(f"{k} {v}" for k, v in s["rules"].items()),
    ]
    if "holder" in s:
        h = s["holder"]
        lines.append(
            f"  holder          {h['address']}: {fmt_units(h['shares_wei'], s['share_decimals'])} shares = "
            f"{fmt_units(h['value_wei'], dec)} {sym} (exit now {fmt_units(h['exit_value_wei'], dec)}); "
            f"wallet {fmt_units(h['asset_balance_wei'], dec)} {sym}"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- keeper


def hedge_targets(dep: Deployment, leverage: Decimal = Decimal(2)) -> tuple[int, int]:
    """The design's split at short leverage L: spot = NAV x L/(L+1), margin = NAV/(L+1).
    Returns (target_short_size_1e18, target_margin_wei) at the oracle price, leaving 20 bps
    of the spot budget for the pool fee and impact."""
    nav = int(dep.vault.totalAssets())
    price = int(dep.perp_market.index_price())
    unit = 10 ** _decimals(dep.asset)
    spot_value = int(Decimal(nav) * leverage / (leverage + 1))
    size = spot_value * 9_980 // BPS * SIZE_UNIT * PRICE_UNIT // (price * unit)
    return size, nav - spot_value


def rebalance(
    dep: Deployment, chain: Any, keeper: Any, target_short: int, target_margin: int,
    *, max_slippage_bps: int | None = None, deadline_seconds: int = 600,
) -> Any:  # fmt: skip
    """One keeper rebalance to the targets, checked first (role, shutdown, oracle)."""
    vault, hedge = dep.vault, dep.hedge
    if not vault.is_keeper(keeper.address):
        raise UserError(f"{keeper.address} is not a keeper of the vault")
    if vault.is_shutdown():
        raise UserError("the vault is shut down: no more rebalances")
    _check_base_oracle(dep, now_of(chain), int(hedge.max_oracle_age()), "hedge")
    slippage = int(hedge.max_slippage_bps()) if max_slippage_bps is None else max_slippage_bps
    with explain_reverts("rebalance refused"):
        return hedge.rebalance(
            target_short, target_margin, slippage, now_of(chain) + deadline_seconds, sender=keeper
        )


# ----------------------------------------------------------------------------- admin
# Owner and guardian calls (`ape run admin ...`). Each reads the role and the state the
# contract checks first and explains a refusal in one line; any other revert is caught by
# ape's gas estimate (a simulated call) before anything is sent.

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def require_owner(dep: Deployment, account: Any, what: str) -> None:
    owner = str(dep.vault.owner())
    if not _same(owner, account.address):
        raise UserError(f"{account.address} cannot {what}: only the vault's owner ({owner}) may")


def require_owner_or_guardian(dep: Deployment, account: Any, what: str) -> None:
    owner, guardian = str(dep.vault.owner()), str(dep.vault.guardian())
    if not (_same(owner, account.address) or _same(guardian, account.address)):
        who = f"owner ({owner})" + ("" if int(guardian, 16) == 0 else f" or guardian ({guardian})")
        raise UserError(f"{account.address} cannot {what}: only the vault's {who} may")


def pause(dep: Deployment, account: Any) -> Any:
    require_owner_or_guardian(dep, account, "pause deposits")
    if dep.vault.paused():
        raise UserError("deposits are already paused (`ape run admin unpause` reopens them)")
    with explain_reverts("pause refused"):
        return dep.vault.pause(sender=account)


def unpause(dep: Deployment, account: Any) -> Any:
    require_owner_or_guardian(dep, account, "unpause deposits")
    if not dep.vault.paused():
        raise UserError("deposits are not paused")
    with explain_reverts("unpause refused"):
        return dep.vault.unpause(sender=account)


def shutdown(dep: Deployment, account: Any) -> Any:
    require_owner_or_guardian(dep, account, "shut the vault down")
    if dep.vault.is_shutdown():
        raise UserError("the vault is already shut down" + _unwind_hint(dep))
    with explain_reverts("shutdown refused"):
        return dep.vault.shutdown(sender=account)


def _unwind_hint(dep: Deployment) -> str:
    return "; unwind the hedge with `ape run admin unwind`" if dep.hedge.active() else ""


def set_keeper(dep: Deployment, account: Any, keeper: str, status: bool) -> Any | None:
    """None when `keeper` already has that status (nothing sent)."""
    require_owner(dep, account, "set keepers")
    if int(keeper, 16) == 0:
        raise UserError("the keeper cannot be the zero address")
    if bool(dep.vault.is_keeper(keeper)) == status:
        return None
    with explain_reverts("set_keeper refused"):
        return dep.vault.set_keeper(keeper, status, sender=account)


def set_guardian(dep: Deployment, account: Any, guardian: str) -> Any | None:
    """`guardian` may be the zero address (no guardian); None when unchanged."""
    require_owner(dep, account, "set the guardian")
    if _same(str(dep.vault.guardian()), guardian):
        return None
    with explain_reverts("set_guardian refused"):
        return dep.vault.set_guardian(guardian, sender=account)


def set_fees(
    dep: Deployment, chain: Any, account: Any, management_bps: int, performance_bps: int
) -> Any | None:
    """Fees within the vault's caps; accrues at the old fees first, so the oracles must be
    fresh. None when unchanged."""
    vault = dep.vault
    require_owner(dep, account, "set the fees")
    problems = []
    for what, value, cap in (
        ("management", management_bps, int(vault.max_management_fee_bps())),
        ("performance", performance_bps, int(vault.max_performance_fee_bps())),
    ):
        if value < 0:
            problems.append(f"--{what}-bps must not be negative, got {value}")
        elif value > cap:
            problems.append(f"--{what}-bps {value} is above the vault's max_{what}_fee_bps {cap}")
    if problems:
        raise UserError("; ".join(problems))
    if (int(vault.management_fee_bps()), int(vault.performance_fee_bps())) == (
        management_bps,
        performance_bps,
    ):
        return None
    check_oracle_fresh(dep, now_of(chain))
    with explain_reverts("set_fees refused"):
        return vault.set_fees(management_bps, performance_bps, sender=account)


def set_fee_recipient(dep: Deployment, chain: Any, account: Any, recipient: str) -> Any | None:
    """`recipient` may be the zero address (no fees accrue); None when unchanged."""
    vault = dep.vault
    require_owner(dep, account, "set the fee recipient")
    if _same(recipient, vault.address):
        raise UserError("the fee recipient cannot be the vault itself")
    if _same(str(vault.fee_recipient()), recipient):
        return None
    check_oracle_fresh(dep, now_of(chain))
    with explain_reverts("set_fee_recipient refused"):
        return vault.set_fee_recipient(recipient, sender=account)


def set_deposit_cap(dep: Deployment, account: Any, cap: int) -> Any | None:
    """The cap in asset wei, 0..deposit_cap_ceiling; None when unchanged."""
    vault = dep.vault
    require_owner(dep, account, "set the deposit cap")
    ceiling = int(vault.deposit_cap_ceiling())
    if cap < 0 or cap > ceiling:
        dec, sym = _decimals(dep.asset), _symbol(dep.asset)
        raise UserError(
            f"the deposit cap must be between 0 and the vault's ceiling {fmt_units(ceiling, dec)} {sym}; "
            f"asked for {fmt_units(cap, dec)}"
        )
    if int(vault.deposit_cap()) == cap:
        return None
    with explain_reverts("set_deposit_cap refused"):
        return vault.set_deposit_cap(cap, sender=account)


def transfer_ownership(dep: Deployment, account: Any, new_owner: str) -> Any:
    """Offers ownership (two-step); the zero address cancels a pending offer."""
    vault = dep.vault
    require_owner(dep, account, "transfer ownership")
    if _same(new_owner, str(vault.owner())):
        raise UserError(f"{new_owner} already owns the vault")
    if _same(new_owner, str(vault.pending_owner())):
        raise UserError(
            f"ownership is already offered to {new_owner}; it must run `ape run admin accept-ownership`"
        )
    with explain_reverts("transfer_ownership refused"):
        return vault.transfer_ownership(new_owner, sender=account)


def accept_ownership(dep: Deployment, account: Any) -> Any:
    pending = str(dep.vault.pending_owner())
    if int(pending, 16) == 0:
        raise UserError(
            "no ownership transfer is pending (the owner offers it with `ape run admin transfer-ownership`)"
        )
    if not _same(pending, account.address):
        raise UserError(f"{account.address} cannot accept ownership: it is offered to {pending}")
    with explain_reverts("accept_ownership refused"):
        return dep.vault.accept_ownership(sender=account)


@dataclass
class SyncResult:
    receipt: Any | None  # None: the books already matched the venue, nothing sent
    short_before: int
    short_after: int
    equity_before: int
    equity_after: int


def sync(dep: Deployment, account: Any) -> SyncResult:
    """Books a liquidation the venue made (permissionless `hedge.sync()`); sends nothing
    when the venue's short is what the hedge booked."""
    hedge = dep.hedge
    venue_short, booked = int(hedge.short_size()), int(hedge.booked_short())
    equity = int(hedge.booked_equity())
    if venue_short >= booked:
        return SyncResult(None, booked, venue_short, equity, equity)
    with explain_reverts("sync refused"):
        receipt = hedge.sync(sender=account)
    logs = hedge.LiquidationBooked.from_receipt(receipt)
    if not logs:  # pragma: no cover (the check above saw the drop)
        return SyncResult(receipt, booked, venue_short, equity, equity)
    log = logs[0]
    return SyncResult(
        receipt, int(log.short_before), int(log.short_after), int(log.equity_before), int(log.equity_after)
    )


# ---------------------------------------------------------------- unwind


def auto_unwind_step(dep: Deployment) -> int:
    """The largest `unwind(max_size)` step (1e18 = one base unit) whose fills stay within
    the hedge's slippage rule now: the spot sale on the pool's reserves and fee (constant
    product, the fee off the input) against the oracle and the short's buy-back on the perp
    market's linear depth against its mark, each with 0.5 % to spare for rounding, then
    checked with the venue's own quotes.
    Raises when no spot sale fits (the pool is too far below the oracle)."""
    hedge, pool = dep.hedge, dep.spot_pool
    price = int(dep.price_feed.latestAnswer())
    slippage = int(hedge.max_slippage_bps())
    au, bu = int(10 ** _decimals(dep.asset)), int(10 ** _decimals(dep.base))
    spot, short = int(hedge.spot_base()), int(hedge.short_size())
    left = max(short, spot * SIZE_UNIT // bu)  # the largest step that could matter
    step = left
    if spot:
        r_base, r_asset = (int(x) for x in pool.get_reserves())
        fee = int(pool.fee_bps())
        # x <= Ra*B/(P'(B-s)) - Rb*B/(B-f), P' = price*au/(bu*1e8) asset wei per base wei
        bound = r_asset * BPS * bu * PRICE_UNIT // (price * au * (BPS - slippage)) - r_base * BPS // (
            BPS - fee
        )
        if bound <= 0:
            gap = Decimal((int(pool.price_e8()) - price) * BPS) / price
            raise UserError(
                f"the spot pool is {gap:+.0f} bps from the oracle: no spot sale fits the hedge's "
                f"{slippage} bps slippage rule; run `ape run market arb` (or wait for arbitrage), "
                "or pass --arb, and retry"
            )
        base_step = bound * 995 // 1_000
        while base_step and not _spot_fits(dep, base_step, price, slippage):
            base_step = base_step * 9 // 10
        step = min(step, base_step * SIZE_UNIT // bu) if base_step < spot else step
    if short:
        depth = int(dep.perp_market.depth())
        mark = int(dep.perp_market.mark_price())  # the hedge bounds perp fills against it
        size = depth * slippage // BPS * SIZE_UNIT * PRICE_UNIT // (mark * au) * 995 // 1_000
        while size and not _perp_fits(dep, size, mark, slippage):
            size = size * 9 // 10
        if size < short:
            step = min(step, size)
    return max(step, 1)


def _spot_fits(dep: Deployment, base_amount: int, price: int, slippage: int) -> bool:
    au, bu = int(10 ** _decimals(dep.asset)), int(10 ** _decimals(dep.base))
    value = base_amount * price * au // (bu * PRICE_UNIT)
    floor = -(-value * (BPS - slippage) // BPS)
    out = _spot_quote(dep, base_amount)
    return out is not None and out >= floor


def _spot_quote(dep: Deployment, base_amount: int) -> int | None:
    """The pool's price for selling `base_amount`; None where the quote reverts (a Uniswap
    v3 pool's adapter: "pool: trade leaves the liquidity range"), so a step shrinks to
    what the range can take."""
    pool = dep.spot_pool
    data = pool.get_amount_out.encode_input(dep.base.address, base_amount)
    try:  # a raw eth_call: ape traces a reverted call to explain it, seconds each
        answer = pool.provider.web3.eth.call({"to": pool.address, "data": data})
    except Exception:  # a revert of the quote: the sale does not fit
        return None
    return int.from_bytes(bytes(answer), "big")


def _perp_fits(dep: Deployment, size: int, mark: int, slippage: int) -> bool:
    try:
        fill = int(dep.perp_market.quote_fill_price(size))
    except Exception:  # "perp: trade larger than depth" and the like
        return False
    return fill <= mark * (BPS + slippage) // BPS


def check_unwind_step(dep: Deployment, step: int) -> None:
    """A fixed step's fills within the slippage rule, checked before sending."""
    hedge = dep.hedge
    price = int(dep.price_feed.latestAnswer())
    slippage = int(hedge.max_slippage_bps())
    bu = int(10 ** _decimals(dep.base))
    spot_part = min(int(hedge.spot_base()), step * bu // SIZE_UNIT)
    short_part = min(int(hedge.short_size()), step)
    spot_ok = not spot_part or _spot_quote(dep, spot_part) == 0
    spot_ok = spot_ok or _spot_fits(dep, spot_part, price, slippage)
    if not spot_ok or (short_part and not _perp_fits(dep, short_part, price, slippage)):
        leg = "spot sale" if not spot_ok else "short buy-back"
        try:
            hint = f"--step auto would take {fmt_units(auto_unwind_step(dep), 18, 6)} now"
        except UserError as err:
            hint = str(err)
        raise UserError(
            f"a {fmt_units(step, 18, 6)} step's {leg} would fill beyond the hedge's {slippage} bps slippage "
            f"rule: use a smaller --step ({hint})"
        )


@dataclass
class UnwindStep:
    number: int
    max_size: int
    spot_sold: int
    short_closed: int
    margin_withdrawn: int
    proceeds: int
    spot_left: int
    short_left: int
    gas_used: int


def check_unwind(dep: Deployment, chain: Any) -> None:
    """What `hedge.unwind` needs before the first step."""
    if not dep.vault.is_shutdown():
        raise UserError(
            "the vault is not shut down: unwind steps open only after `ape run admin shutdown` "
            "(owner or guardian); while it runs, exits unwind their own slices"
        )
    if not dep.hedge.active():
        return  # nothing to unwind: `unwind` sends nothing and says so
    _check_base_oracle(dep, now_of(chain), int(dep.hedge.max_oracle_age()), "hedge")


def unwind(
    dep: Deployment, chain: Any, account: Any,
    *, step: int | None = None, max_steps: int | None = None, arb_between: bool = False, on_step: Any = None,
) -> list[UnwindStep]:  # fmt: skip
    """Calls `hedge.unwind(step)` until the hedge is flat (`active()` false), or
    `max_steps`. `step` None = `auto_unwind_step` before each call. `arb_between` trades
    the reference venue's pool back to the oracle before each step (test tokens)."""
    from keeper.ops.contracts import arb_to_oracle

    hedge = dep.hedge
    check_unwind(dep, chain)
    if step is not None and step <= 0:
        raise UserError(f"--step must be positive, got {step}")
    done: list[UnwindStep] = []
    while hedge.active() and (max_steps is None or len(done) < max_steps):
        if arb_between:
            arb_to_oracle(dep.venue, account)
        size = auto_unwind_step(dep) if step is None else step
        if step is not None:
            check_unwind_step(dep, size)
        with explain_reverts(
            f"unwind step {len(done) + 1} refused" + (f" ({len(done)} done)" if done else "")
        ):
            receipt = hedge.unwind(size, sender=account)
        logs = hedge.Unwound.from_receipt(receipt)
        log = logs[0]
        item = UnwindStep(
            number=len(done) + 1,
            max_size=size,
            spot_sold=int(log.spot_sold),
            short_closed=int(log.short_closed),
            margin_withdrawn=int(log.margin_withdrawn),
            proceeds=int(log.proceeds),
            spot_left=int(hedge.spot_base()),
            short_left=int(hedge.short_size()),
            gas_used=int(receipt.gas_used),
        )
        done.append(item)
        if on_step is not None:
            on_step(item)
        if not (item.spot_sold or item.short_closed or item.margin_withdrawn):
            raise UserError(
                f"unwind step {item.number} changed nothing: "
                f"{fmt_units(item.spot_left, _decimals(dep.base), 6)} base of spot is dust "
                "the pool pays nothing for; exits still pay it out pro-rata"
            )
    return done
