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

from keeper.deployment import Deployment
from keeper.errors import UserError
from keeper.units import apr, fmt_units, from_wei, price_from_e8, rate_per_hour

BPS = 10_000
SIZE_UNIT = 10**18
PRICE_UNIT = 10**8
MAX_UINT256 = 2**256 - 1

# Revert reasons a depositor can act on, as one line each. Matched by prefix.
_REVERTS = {
    "vault: stale oracle": "the vault refused: the oracle price is stale (the feeder must push one: "
    "`ape run market price <usd>`)",
    "vault: oracle answer invalid": "the vault refused: the oracle answer is invalid",
    "vault: deposits paused": "deposits are paused by the guardian (exits still work)",
    "vault: shut down": "the vault is shut down: deposits and rebalances are closed for good (exits work)",
    "vault: deposit above maximum": "the deposit is above the vault's deposit cap",
    "vault: shares above maximum": "the share price moved against you beyond the bound since the quote "
    "(--max-shares / --max-slippage-bps); nothing was withdrawn: retry, or allow more",
    "vault: assets below minimum": "the exit would pay less than the minimum (--min-out / "
    "--max-slippage-bps); nothing was withdrawn",
    "vault: exit cost above bound": "the unwind costs more than the rules allow right now; try a smaller "
    "amount or after `ape run market arb`",
    "vault: spot slippage": "the spot pool is too far from the oracle for the vault's slippage rule: "
    "run `ape run market arb` (or wait for arbitrage) and retry",
    "SpotPool: output below minimum": "the spot pool is too far from the oracle for the vault's slippage "
    "rule: run `ape run market arb` (or wait for arbitrage) and retry",
    "perp: stale oracle": "the perp market refused: the oracle price is stale (push one: "
    "`ape run market price <usd>`)",
    "perp: slippage": "the perp market fill is beyond the vault's slippage rule; retry later",
    "vault: not keeper": "this account is not a keeper of the vault",
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
    age = oracle_age(dep, now)
    limit = int(dep.vault.max_oracle_age())
    if age > limit:
        raise UserError(
            f"the oracle price is stale: last update {_duration(age)} ago, the vault accepts "
            f"{_duration(limit)}; the feeder must push one (`ape run market price <usd>` or `market mirror`)"
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
    dep: Deployment,
    chain: Any,
    account: Any,
    assets: int,
    *,
    receiver: str | None = None,
    min_shares: int | None = None,
    use_faucet: bool = False,
    approve: bool = True,
    max_slippage_bps: int = DEFAULT_SLIPPAGE_BPS,
) -> DepositResult:
    """Deposits exactly `assets` wei for at least `min_shares`, enforced by the vault in the
    same transaction (default: the quote less `max_slippage_bps`, room for the share price
    to move by a few seconds of funding between the quote and the block)."""
    check_slippage(max_slippage_bps)
    from keeper.venue import faucet

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


def withdraw(
    dep: Deployment,
    chain: Any,
    account: Any,
    *,
    assets: int | None = None,
    shares: int | None = None,
    everything: bool = False,
    min_out: int | None = None,
    max_shares: int | None = None,
    receiver: str | None = None,
    owner: str | None = None,
    max_slippage_bps: int = DEFAULT_SLIPPAGE_BPS,
) -> WithdrawResult:
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
    )


def _check_unwind_fill(dep: Deployment, shares: int) -> None:
    """An exit larger than idle sells its slice of the spot leg with `min_out` at the oracle
    value less the slippage rule; when the pool would pay less, say so before sending."""
    vault = dep.vault
    if int(vault.previewRedeem(shares)) <= int(vault.idle()) or int(vault.spot_base()) == 0:
        return
    base_part = int(vault.spot_base()) * shares // (int(vault.totalSupply()) + 10**6)
    if base_part == 0:
        return
    price = int(dep.price_feed.latestAnswer())
    value = base_part * price * 10 ** _decimals(dep.asset) // (10 ** _decimals(dep.base) * PRICE_UNIT)
    floor = value * (BPS - int(vault.max_slippage_bps())) // BPS
    out = int(dep.spot_pool.get_amount_out(dep.base.address, base_part))
    if out < floor:
        pool = int(dep.spot_pool.price_e8())
        gap = Decimal((pool - price) * BPS) / price
        raise UserError(
            f"the spot pool ({gap:+.0f} bps from the oracle) would fill this exit's spot sale beyond the "
            f"vault's {vault.max_slippage_bps()} bps slippage rule: run `ape run market arb` (or wait for "
            "arbitrage) and retry"
        )


# ----------------------------------------------------------------------------- status


def _ratio_bps(numerator: int, denominator: int) -> Decimal | None:
    return None if denominator == 0 else Decimal(numerator * BPS) / denominator


def status(dep: Deployment, chain: Any, holder: str | None = None) -> dict[str, Any]:
    """Everything an operator looks at, as JSON-ready values (decimals as strings, with
    units in the key names; raw contract integers under `*_wei`, `*_e8`, `*_e18`)."""
    vault, asset, perp, feed, pool = dep.vault, dep.asset, dep.perp_market, dep.price_feed, dep.spot_pool
    m = dep.manifest
    dec, sym = _decimals(asset), _symbol(asset)
    share_dec = int(vault.decimals())
    head = chain.blocks.head
    now = int(head.timestamp)

    nav = int(vault.totalAssets())
    supply = int(vault.totalSupply())
    share_price = from_wei(int(vault.convertToAssets(10**share_dec)), dec)
    idle = int(vault.idle())
    spot_base = int(vault.spot_base())
    short = int(vault.short_size())
    _, answer, _, updated_at, _ = feed.latestRoundData()
    price_e8 = int(answer)
    base_dec = _decimals(dep.base)
    spot_value = spot_base * price_e8 * 10**dec // (10**base_dec * PRICE_UNIT)
    short_value = short * price_e8 * 10**dec // (SIZE_UNIT * PRICE_UNIT)
    pos = perp.position(vault.address)
    margin = int(pos.margin) + int(pos.accrued_funding)
    equity = int(pos.equity)
    rate_e18 = int(perp.funding_rate())
    per_hour = rate_per_hour(rate_e18)
    pool_price_e8 = int(pool.price_e8())
    delta = _ratio_bps(spot_value - short_value, nav)
    last_rebalance = int(vault.last_rebalance_time())
    pending_owner = str(vault.pending_owner())

    def d(x: Decimal | None, places: int = 2) -> str | None:
        # quantize, then + 0: a tiny negative reads "0.0", not "-0.0"
        return None if x is None else f"{x.quantize(Decimal(1).scaleb(-places)) + 0:.{places}f}"

    result: dict[str, Any] = {
        "network": m.network,
        "chain_id": m.chain_id,
        "block": int(head.number),
        "timestamp": now,
        "vault": m.vault,
        "name": str(vault.name()),
        "symbol": str(vault.symbol()),
        "asset_symbol": sym,
        "asset_decimals": dec,
        "nav_wei": nav,
        "nav": d(from_wei(nav, dec)),
        "supply_shares_wei": supply,
        "share_decimals": share_dec,
        "share_price": d(share_price, 6),
        "idle_wei": idle,
        "spot_base_wei": spot_base,
        "spot_value_wei": spot_value,
        "short_size_e18": short,
        "short_value_wei": short_value,
        "perp_margin_wei": margin,
        "perp_equity_wei": equity,
        "perp_unrealized_pnl_wei": int(pos.unrealized_pnl),
        "perp_accrued_funding_wei": int(pos.accrued_funding),
        "delta_bps": d(delta, 1),
        "margin_ratio_bps": None if short == 0 else int(pos.margin_ratio_bps),
        "leverage": None if short == 0 or equity <= 0 else d(Decimal(short_value) / equity, 3),
        "oracle_price_e8": price_e8,
        "oracle_price": d(price_from_e8(price_e8)),
        "oracle_age_seconds": now - int(updated_at),
        "pool_price_e8": pool_price_e8,
        "pool_vs_oracle_bps": d(_ratio_bps(pool_price_e8 - price_e8, price_e8), 1),
        "funding_rate_e18_per_second": rate_e18,
        "funding_rate_per_hour": f"{per_hour:.10f}",
        "funding_apr": f"{apr(per_hour):.6f}",
        "rules": {key: int(getattr(vault, key)()) for key in m.rules},
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
        "shutdown": bool(vault.is_shutdown()),
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
    dec, sym = s["asset_decimals"], s["asset_symbol"]

    def money(key: str) -> str:
        return f"{fmt_units(s[key], dec)} {sym}"

    rate = Decimal(s["funding_rate_per_hour"])
    state = "SHUT DOWN" if s["shutdown"] else ("deposits PAUSED" if s["paused"] else "open")
    r = s["roles"]
    lines = [
        f"{s['name']} ({s['symbol']})  {s['vault']}  on {s['network']} (chain {s['chain_id']}, "
        f"block {s['block']})",
        f"  state           {state}",
        f"  NAV             {money('nav_wei')}   share price {s['share_price']} {sym}   "
        f"supply {fmt_units(s['supply_shares_wei'], s['share_decimals'])}",
        f"  idle            {money('idle_wei')}",
        f"  spot            {fmt_units(s['spot_base_wei'], 18, 6)} base = {money('spot_value_wei')}",
        f"  short           {fmt_units(s['short_size_e18'], 18, 6)} base = {money('short_value_wei')}",
        f"  perp margin     {money('perp_margin_wei')}   equity {money('perp_equity_wei')}",
        f"  delta           {s['delta_bps'] or '-'} bps of NAV   margin ratio "
        f"{s['margin_ratio_bps'] if s['margin_ratio_bps'] is not None else '-'} bps   "
        f"leverage {s['leverage'] or '-'}x",
        f"  oracle          {s['oracle_price']} USD, {_duration(s['oracle_age_seconds'])} old   "
        f"pool {s['pool_vs_oracle_bps']} bps from it",
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
    dep: Deployment,
    chain: Any,
    keeper: Any,
    target_short: int,
    target_margin: int,
    *,
    max_slippage_bps: int | None = None,
    deadline_seconds: int = 600,
) -> Any:
    """One keeper rebalance to the targets, checked first (role, shutdown, oracle)."""
    vault = dep.vault
    if not vault.is_keeper(keeper.address):
        raise UserError(f"{keeper.address} is not a keeper of the vault")
    if vault.is_shutdown():
        raise UserError("the vault is shut down: no more rebalances")
    check_oracle_fresh(dep, now_of(chain))
    slippage = int(vault.max_slippage_bps()) if max_slippage_bps is None else max_slippage_bps
    with explain_reverts("rebalance refused"):
        return vault.rebalance(
            target_short, target_margin, slippage, now_of(chain) + deadline_seconds, sender=keeper
        )
