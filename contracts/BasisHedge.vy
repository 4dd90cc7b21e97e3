# pragma version 0.4.3
"""
@title BasisHedge
@custom:contract-name BasisHedge
@license MIT
@notice The position of one `BasisVault`: the spot leg (base held here) and the perp
        account (a short margined in asset, held at the perp market in this contract's
        name). The vault creates it from a blueprint in its own constructor, so the two
        are linked immutably; only the vault can take money out (`exit_slice`, and the
        idle this contract hands back after every trade).

        The venue is the truth about the position: the short size, margin and equity are
        read from the perp market on every valuation and every trade, never from a book
        kept here, because the venue can change them without asking (liquidation,
        funding). `booked_short` only remembers what this contract last saw, so that a
        liquidation is noticed and booked (`LiquidationBooked`) by whoever touches the
        hedge next, or by anyone through `sync()`.

        Prices. Spot is valued and bounded against the base/USD oracle. The short is
        valued at the venue's mark (its equity: what closing it would realise), and its
        fills are bounded against that mark: a perp premium or discount is the price the
        short trades at, not slippage. The delta rule compares sizes at the oracle.

        Calls. Keepers (the vault's): `rebalance` within the immutable rules, each call
        losing at most `max_nav_loss_bps` of NAV and all calls together at most
        `keeper_loss_budget_bps` of NAV per day. Anyone: `emergency_deleverage` (below the
        critical margin ratio, or after `dead_man_interval` without a rebalance),
        `unwind` steps once the vault is shut down, `sync`. The vault: `exit_slice`.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

from .interfaces import IAggregatorV3
from .interfaces import IBasisHedge
from .interfaces import IBasisVault
from .interfaces import IPerpMarket
from .interfaces import ISpotPool

implements: IBasisHedge

from snekmate.utils import math


# ============================================================================
#                                  CONSTANTS
# ============================================================================

# @dev Basis points and parts per million.
BPS: constant(uint256) = 10_000
PPM: constant(uint256) = 1_000_000
# @dev Perp sizes: 1e18 = one whole base unit; oracle prices: 8 decimals.
SIZE_UNIT: constant(uint256) = 10**18
PRICE_UNIT: constant(uint256) = 10**8
# @dev The highest `max_slippage_bps` a hedge may be deployed with (5 %).
MAX_SLIPPAGE_CAP_BPS: public(constant(uint256)) = 500

# @dev `emergency_deleverage` aims this far above the min margin ratio, so fees and
#      impact on the way do not leave it short.
EMERGENCY_BUFFER_BPS: public(constant(uint256)) = 200

# @dev The keeper's loss budget is counted per fixed window of this many seconds.
KEEPER_BUDGET_WINDOW: public(constant(uint256)) = 86_400

# @dev An exit leaves the stayers this many asset wei more margin than their pro-rata
#      share, so the rounding of the venue's notional and cost can never leave their
#      margin ratio lower than before the exit (the venue checks exactly that).
_MARGIN_SLACK: constant(uint256) = 8

# @dev Bit masks, flags and the equity bias of the packed books (see STORAGE).
_LOW128: constant(uint256) = 2**128 - 1
_LOW126: constant(uint256) = 2**126 - 1
_OPEN_BIT: constant(uint256) = 2**254
_TOP_BIT: constant(uint256) = 2**255
_EQUITY_BIAS: constant(int256) = 2**127


# ============================================================================
#                                 IMMUTABLES
# ============================================================================

# @dev The vault this hedge serves (its creator).
vault: public(immutable(IBasisVault))
# @dev The vault's asset, the perp's margin token.
asset: public(immutable(address))
# @dev The spot token held long.
base: public(immutable(address))
# @dev The base/USD feed, 8 decimals.
oracle: public(immutable(IAggregatorV3))
# @dev The perp venue, margined in `asset`.
perp_market: public(immutable(IPerpMarket))
# @dev The spot venue for (`base`, `asset`).
spot_pool: public(immutable(ISpotPool))
# @dev 10 ** decimals of the asset and of the base.
_ASSET_UNIT: immutable(uint256)
_BASE_UNIT: immutable(uint256)

# @dev Short notional / perp equity after a rebalance, bps (30_000 = 3x).
max_leverage_bps: public(immutable(uint256))
# @dev Perp equity / short notional after a rebalance, bps.
min_margin_ratio_bps: public(immutable(uint256))
# @dev Below this margin ratio anyone may call `emergency_deleverage`.
critical_margin_ratio_bps: public(immutable(uint256))
# @dev |spot value - short value| after a rebalance, bps of NAV.
max_delta_bps: public(immutable(uint256))
# @dev Worst fill accepted, bps, for every trade: spot against the oracle, perp against
#      the venue's mark.
max_slippage_bps: public(immutable(uint256))
# @dev Oracle answers older than this (seconds) stop every trade.
max_oracle_age: public(immutable(uint256))
# @dev The most NAV one rebalance may cost, bps of NAV.
max_nav_loss_bps: public(immutable(uint256))
# @dev Without a successful rebalance for this long, anyone may deleverage.
dead_man_interval: public(immutable(uint256))
# @dev The most NAV all rebalances in one KEEPER_BUDGET_WINDOW may cost together, bps of
#      the NAV at the window's first rebalance.
keeper_loss_budget_bps: public(immutable(uint256))


# ============================================================================
#                                  STORAGE
# ============================================================================

# @dev The books, packed so that a call reads and writes few slots (Vyper does not pack
#      storage itself). A set top bit keeps each word non-zero, so an update never pays
#      for a fresh slot. Getters below unpack them.
#      _legs:   spot_base (base wei, bits 0-127) | booked_short (1e18 units, 128-253)
#               | account open (254) | 1 (255)
#      _clock:  booked_equity + 2**127 (asset wei, 0-127) | last_rebalance_time (128-191)
#               | budget_window_start (192-255)
#      _budget: budget_nav (asset wei, 0-127) | budget_spent (asset wei, 128-254) | 1 (255)
#      `booked_short`/`booked_equity` are the short and the perp equity as of this
#      contract's last touch; "account open" = the perp account holds size or margin.
_legs: uint256
_clock: uint256
_budget: uint256


# ============================================================================
#                                   EVENTS
# ============================================================================

# @dev A keeper's `rebalance`: the price it traded at, the venue's funding rate, each
#      leg and NAV before and after, and the NAV it cost (negative = gained).
event Rebalanced:
    keeper: indexed(address)
    price_e8: uint256
    funding_rate: int256
    spot_before: uint256
    spot_after: uint256
    short_before: uint256
    short_after: uint256
    margin_before: uint256
    margin_after: uint256
    nav_before: uint256
    nav_after: uint256
    cost: int256


# @dev `caller` bought back `reduced_size` of the short and moved the proceeds of the
#      spot sold to margin, raising the margin ratio.
event EmergencyDeleveraged:
    caller: indexed(address)
    reduced_size: uint256
    margin_ratio_before_bps: uint256
    margin_ratio_after_bps: uint256


# @dev An exit's slice of the hedge was unwound for the vault: spot sold, short closed,
#      margin withdrawn.
event ExitUnwound:
    owner: indexed(address)
    spot_sold: uint256
    short_closed: uint256
    margin_withdrawn: uint256


# @dev One step of the unwind after a shutdown, and the asset it handed the vault.
event Unwound:
    caller: indexed(address)
    spot_sold: uint256
    short_closed: uint256
    margin_withdrawn: uint256
    proceeds: uint256


# @dev The venue reduced the short without this contract (a liquidation): the short and
#      the perp equity as last booked and as found.
event LiquidationBooked:
    short_before: uint256
    short_after: uint256
    equity_before: int256
    equity_after: int256


# ============================================================================
#                                CONSTRUCTOR
# ============================================================================

@deploy
def __init__(
    vault_: IBasisVault,
    asset_: address,
    base_: address,
    oracle_: IAggregatorV3,
    perp_market_: IPerpMarket,
    spot_pool_: ISpotPool,
    rules: IBasisHedge.Rules,
):
    """
    @dev Created by `BasisVault`'s constructor from a blueprint; validates the rules.
    @param vault_ The vault this hedge serves (the creator).
    @param asset_ The vault's asset, the perp's margin token.
    @param base_ The spot token held long.
    @param oracle_ Chainlink-compatible base/USD feed, 8 decimals.
    @param perp_market_ Perp venue margined in `asset_`, on the same base.
    @param spot_pool_ Spot venue for (`base_`, `asset_`).
    @param rules The immutable rules this contract enforces (see the getters).
    """
    assert rules.max_leverage_bps != 0, "hedge: zero max leverage"
    assert rules.critical_margin_ratio_bps != 0, "hedge: zero critical margin ratio"
    assert rules.critical_margin_ratio_bps < rules.min_margin_ratio_bps, "hedge: critical ratio >= min ratio"
    assert rules.min_margin_ratio_bps <= BPS, "hedge: min margin ratio above 100%"
    assert rules.min_margin_ratio_bps >= staticcall perp_market_.initial_margin_bps(), "hedge: min ratio below venue IM"
    assert rules.max_delta_bps <= BPS, "hedge: max delta above 100%"
    assert rules.max_slippage_bps != 0, "hedge: zero max slippage"
    assert rules.max_slippage_bps <= MAX_SLIPPAGE_CAP_BPS, "hedge: max slippage above cap"
    assert rules.max_oracle_age != 0, "hedge: zero max oracle age"
    assert rules.max_nav_loss_bps <= BPS, "hedge: max nav loss above 100%"
    assert rules.dead_man_interval != 0, "hedge: zero dead-man interval"
    assert rules.keeper_loss_budget_bps >= rules.max_nav_loss_bps, "hedge: keeper budget below one rebalance"
    assert rules.keeper_loss_budget_bps <= BPS, "hedge: keeper budget above 100%"

    vault = vault_
    asset = asset_
    base = base_
    oracle = oracle_
    perp_market = perp_market_
    spot_pool = spot_pool_
    _ASSET_UNIT = 10 ** convert(staticcall IERC20Detailed(asset_).decimals(), uint256)
    _BASE_UNIT = 10 ** convert(staticcall IERC20Detailed(base_).decimals(), uint256)
    max_leverage_bps = rules.max_leverage_bps
    min_margin_ratio_bps = rules.min_margin_ratio_bps
    critical_margin_ratio_bps = rules.critical_margin_ratio_bps
    max_delta_bps = rules.max_delta_bps
    max_slippage_bps = rules.max_slippage_bps
    max_oracle_age = rules.max_oracle_age
    max_nav_loss_bps = rules.max_nav_loss_bps
    dead_man_interval = rules.dead_man_interval
    keeper_loss_budget_bps = rules.keeper_loss_budget_bps
    self._legs = _TOP_BIT
    self._clock = convert(_EQUITY_BIAS, uint256) | (block.timestamp << 128)
    self._budget = _TOP_BIT


# ============================================================================
#                                   KEEPER
# ============================================================================

@external
@nonreentrant
def rebalance(target_short: uint256, target_margin: uint256, max_slippage: uint256, deadline: uint256):
    """
    @dev Moves the hedge to `target_short` (spot moves to the same size) and the perp
         margin to `target_margin`, trading spot within `max_slippage` of the oracle and
         the perp within `max_slippage` of the venue's mark,
         with the vault's idle as cash. Order: reduce short, sell spot, move margin, buy
         spot, grow short. Then checks the rules on the result (|delta|, margin ratio,
         leverage, NAV loss, the keeper's daily loss budget); any breach reverts the
         whole call. `rebalance(0, 0, ...)` parks everything in the vault's idle.
         A call that starts outside the delta or margin rule (after a liquidation, say)
         is risk-reducing: it still has the per-call NAV-loss bound but is not charged
         to the budget, so the hedge can always be restored.
    @param target_short The short size wanted, 1e18 = one whole base unit.
    @param target_margin The perp margin wanted, asset wei (fees on the perp trade come
           out of it).
    @param max_slippage Worst fill vs the oracle (spot) or the mark (perp), bps; at most
           `max_slippage_bps`.
    @param deadline Latest block timestamp at which the call may run.
    """
    assert staticcall vault.is_keeper(msg.sender), "hedge: not keeper"
    assert not staticcall vault.is_shutdown(), "hedge: shut down"
    assert block.timestamp <= deadline, "hedge: deadline expired"
    assert max_slippage <= max_slippage_bps, "hedge: slippage above rule"
    price: uint256 = self._fresh_price()
    before: IPerpMarket.PositionView = self._sync()
    short_before: uint256 = self._short_of(before)
    spot_before: uint256 = self._spot()
    idle: uint256 = staticcall vault.idle()
    nav_before: uint256 = self._nav_of(idle, spot_before, before.equity, price)
    risk_reducing: bool = not self._within_rules(spot_before, before, price, nav_before)

    idle_after: uint256 = self._move_to(before, target_short, target_margin, max_slippage, price, idle)

    after: IPerpMarket.PositionView = self._snapshot()
    nav_after: uint256 = self._nav_of(idle_after, self._spot(), after.equity, price)
    if nav_after < nav_before:
        loss: uint256 = nav_before - nav_after
        assert loss * BPS <= nav_before * max_nav_loss_bps, "hedge: nav loss rule"
        if not risk_reducing:
            self._charge_budget(loss, nav_before)
    assert self._within_rules(self._spot(), after, price, nav_after), "hedge: position rules"
    if after.size != 0:
        assert after.equity > 0, "hedge: perp equity <= 0"
        assert after.notional * BPS <= convert(after.equity, uint256) * max_leverage_bps, "hedge: leverage rule"
    self._set_last_rebalance_time(block.timestamp)
    log Rebalanced(
        keeper=msg.sender,
        price_e8=price,
        funding_rate=staticcall perp_market.funding_rate(),
        spot_before=spot_before,
        spot_after=self._spot(),
        short_before=short_before,
        short_after=self._short_of(after),
        margin_before=self._settled(before),
        margin_after=self._settled(after),
        nav_before=nav_before,
        nav_after=nav_after,
        cost=convert(nav_before, int256) - convert(nav_after, int256),
    )


# ============================================================================
#                                PERMISSIONLESS
# ============================================================================

@external
@nonreentrant
def emergency_deleverage():
    """
    @dev Permissionless. When the margin ratio is below `critical_margin_ratio_bps`, or no
         rebalance has succeeded for `dead_man_interval`, and the ratio is below
         `min_margin_ratio_bps`: buys back just enough short, sells the same spot and adds
         the proceeds to margin, aiming at the min ratio plus EMERGENCY_BUFFER_BPS (the
         short's notional at the venue's mark, as the venue measures the ratio), every fill
         within `max_slippage_bps` of the oracle (spot) or the mark (perp).
    """
    price: uint256 = self._fresh_price()
    pos: IPerpMarket.PositionView = self._sync()
    short: uint256 = self._short_of(pos)
    assert short != 0, "hedge: no position"
    ratio: uint256 = pos.margin_ratio_bps
    assert (
        ratio < critical_margin_ratio_bps or block.timestamp > self._last_rebalance_time() + dead_man_interval
    ), "hedge: deleverage not allowed"
    assert ratio < min_margin_ratio_bps, "hedge: margin ratio healthy"

    # Solve (E + x) / (N - x) = r for the notional x to move from short to margin, at
    # the mark (the price the venue measures the ratio at).
    mark: uint256 = staticcall perp_market.mark_price()
    target: uint256 = min_margin_ratio_bps + EMERGENCY_BUFFER_BPS
    notional: uint256 = self._size_value(short, mark, False)
    need: int256 = convert(target * notional, int256) - convert(BPS, int256) * pos.equity
    reduce_value: uint256 = convert(max(need, 0), uint256) // (BPS + target) + 1
    reduce: uint256 = min(short, math._mul_div(reduce_value, SIZE_UNIT * PRICE_UNIT, mark * _ASSET_UNIT, True))
    base_amount: uint256 = min(self._spot(), reduce * _BASE_UNIT // SIZE_UNIT)

    self._perp_trade(convert(reduce, int256), max_slippage_bps)
    proceeds: uint256 = self._sell_spot(base_amount, max_slippage_bps, price)
    self._deposit_margin(proceeds)
    after: IPerpMarket.PositionView = self._snapshot()
    assert after.margin_ratio_bps > ratio, "hedge: deleverage failed"
    log EmergencyDeleveraged(
        caller=msg.sender, reduced_size=reduce, margin_ratio_before_bps=ratio, margin_ratio_after_bps=after.margin_ratio_bps
    )


@external
@nonreentrant
def unwind(max_size: uint256) -> uint256:
    """
    @dev Permissionless once the vault is shut down: one bounded step of the unwind.
         Buys back up to `max_size` of the short and sells up to the same amount of spot
         (every fill within `max_slippage_bps` of the oracle, or of the mark for the
         perp), frees the margin the closed part held (all of it once the short is gone)
         and hands the proceeds to the vault's idle. Call again until `active()` is false: a vault too large to
         unwind in one transaction within the slippage rule unwinds in steps.
    @param max_size The most short to close, and base to sell, 1e18 = one whole unit.
    @return uint256 Asset wei handed to the vault.
    """
    assert staticcall vault.is_shutdown(), "hedge: not shut down"
    assert max_size != 0, "hedge: zero size"
    price: uint256 = self._fresh_price()
    pos: IPerpMarket.PositionView = self._sync()
    short: uint256 = self._short_of(pos)
    closed: uint256 = min(short, max_size)
    margin_out: uint256 = 0
    if self._account_open():
        keep: uint256 = 0
        if closed < short:
            keep = math._mul_div(self._settled(pos), short - closed, short, True)
        if closed != 0:
            self._perp_trade(convert(closed, int256), max_slippage_bps)
        after: IPerpMarket.PositionView = staticcall perp_market.position(self)
        margin_now: uint256 = self._settled(after)
        if margin_now > keep:
            margin_out = margin_now - keep
            if after.size != 0 and self._below_initial_margin(after, margin_out):
                margin_out -= min(margin_out, _MARGIN_SLACK)
        if margin_out != 0:
            extcall perp_market.withdraw_margin(margin_out)
        self._snapshot()
    # `max_size` in base wei, without overflow for any `max_size` (max_value = all of it).
    sold: uint256 = self._spot()
    if max_size < sold * SIZE_UNIT // _BASE_UNIT:
        sold = max_size * _BASE_UNIT // SIZE_UNIT
    proceeds: uint256 = self._sell_spot(sold, max_slippage_bps, price) + margin_out
    self._repay(proceeds)
    log Unwound(caller=msg.sender, spot_sold=sold, short_closed=closed, margin_withdrawn=margin_out, proceeds=proceeds)
    return proceeds


@external
@nonreentrant
def sync():
    """
    @dev Permissionless: books a change the venue made to the position without this
         contract (a liquidation), logging `LiquidationBooked`. Every other call does
         the same first.
    """
    self._sync()


# ============================================================================
#                                    VAULT
# ============================================================================

@external
@nonreentrant
def exit_slice(shares: uint256, denominator: uint256, price_e8: uint256, owner: address) -> uint256:
    """
    @dev Only the vault, for an exit: unwinds `shares / denominator` of the spot leg, the
         short and the perp margin (the spot sale within `max_slippage_bps` of `price_e8`,
         the buy-back within it of the venue's mark) and sends the proceeds to the vault.
         Each part is rounded down, so the holders who stay keep at least their share;
         the margin they keep leaves the position's margin ratio where it was, whatever
         it was (the venue allows exactly that). A slice too small to close any short
         leaves its margin to the stayers.
    @param shares The exiting shares.
    @param denominator Total shares the slice is a fraction of (supply + virtual shares).
    @param price_e8 The oracle answer the vault priced the exit at (checked fresh there).
    @param owner The exiting holder, for the event.
    @return uint256 Asset wei sent to the vault.
    """
    assert msg.sender == vault.address, "hedge: not vault"
    pos: IPerpMarket.PositionView = self._sync()
    short: uint256 = self._short_of(pos)
    base_part: uint256 = self._spot() * shares // denominator
    short_part: uint256 = short * shares // denominator
    margin_out: uint256 = 0
    if self._account_open() and (short_part != 0 or short == 0):
        # What the stayers keep: their share of the settled margin, rounded up.
        keep: uint256 = math._mul_div(self._settled(pos), denominator - shares, denominator, True)
        if short_part != 0:
            self._perp_trade(convert(short_part, int256), max_slippage_bps)
        after: IPerpMarket.PositionView = staticcall perp_market.position(self)
        margin_now: uint256 = self._settled(after)
        assert margin_now >= keep, "hedge: exit slice insolvent"
        margin_out = margin_now - keep
        if margin_out != 0 and after.size != 0 and self._below_initial_margin(after, margin_out):
            # Below initial margin the venue allows the withdrawal only if the ratio does
            # not fall; a few wei more for the stayers absorb the rounding of its notional.
            margin_out -= min(margin_out, _MARGIN_SLACK)
        if margin_out != 0:
            extcall perp_market.withdraw_margin(margin_out)
        self._snapshot()
    proceeds: uint256 = self._sell_spot(base_part, max_slippage_bps, price_e8) + margin_out
    if proceeds != 0:
        assert extcall IERC20(asset).transfer(vault.address, proceeds, default_return_value=True), "hedge: transfer failed"
    log ExitUnwound(owner=owner, spot_sold=base_part, short_closed=short_part, margin_withdrawn=margin_out)
    return proceeds


# ============================================================================
#                                    VIEWS
# ============================================================================

@external
@view
def value(price_e8: uint256) -> int256:
    """
    @dev The hedge's worth at `price_e8`: spot base at the oracle plus the perp account's
         live equity (margin + unrealised PnL at the venue's mark + accrued funding:
         what closing the short now would realise), asset wei. Never reverts (an
         unreadable market falls back to the equity last booked).
    @param price_e8 The base price, 8 decimals.
    @return int256 The value, asset wei (negative if the perp equity is).
    """
    return convert(self._base_value(self._spot(), price_e8), int256) + self._perp_equity()


@external
@view
def active() -> bool:
    """
    @dev True while the hedge holds anything: spot, a short or perp margin.
    @return bool Whether the hedge holds anything.
    """
    return self._spot() != 0 or self._account_open()


@external
@view
def short_size() -> uint256:
    """
    @dev The short at the venue now, 1e18 = one whole base unit (0 when flat or long).
    @return uint256 The short size.
    """
    return self._short_of(self._position())


@external
@view
def exit_cost_bound(price_e8: uint256) -> uint256:
    """
    @dev The most unwinding the whole hedge may cost under the rules, asset wei: every
         fill within `max_slippage_bps` of the oracle (spot; its fees are inside the
         fill) or of the mark (the short, valued at the mark in NAV: the venue's
         notional), the perp taker fee, the margin slack left to the stayers and rounding.
    @param price_e8 The base price, 8 decimals.
    @return uint256 The bound, asset wei.
    """
    pos: IPerpMarket.PositionView = self._position()
    short_value: uint256 = 0
    if self._short_of(pos) != 0:
        short_value = pos.notional
    spot_value: uint256 = self._base_value(self._spot(), price_e8)
    fee_ppm: uint256 = 0
    if short_value != 0:
        fee_ppm = staticcall perp_market.taker_fee_ppm()
    slippage: uint256 = (spot_value + short_value) * max_slippage_bps // BPS + 1
    return slippage + short_value * fee_ppm // PPM + 1 + 4 + _MARGIN_SLACK


@external
@view
def spot_base() -> uint256:
    """
    @dev Base held as the spot leg, base wei (a book: donations are not counted).
    @return uint256 The spot leg, base wei.
    """
    return self._spot()


@external
@view
def booked_short() -> uint256:
    """
    @dev The short as of this contract's last touch, 1e18 = one whole base unit; above
         `short_size()` after a liquidation nobody has booked yet.
    @return uint256 The booked short.
    """
    return (self._legs >> 128) & _LOW126


@external
@view
def booked_equity() -> int256:
    """
    @dev The perp equity as of this contract's last touch, asset wei.
    @return int256 The booked equity.
    """
    return self._booked_equity()


@external
@view
def last_rebalance_time() -> uint256:
    """
    @dev The last successful `rebalance` (the deploy time before the first).
    @return uint256 A block timestamp.
    """
    return self._last_rebalance_time()


@external
@view
def budget_window_start() -> uint256:
    """
    @dev Start of the keeper's current loss-budget window (0 before the first charge).
    @return uint256 A block timestamp.
    """
    return self._clock >> 192


@external
@view
def budget_nav() -> uint256:
    """
    @dev NAV at the start of the current budget window, asset wei.
    @return uint256 The window's NAV, asset wei.
    """
    return self._budget & _LOW128


@external
@view
def budget_spent() -> uint256:
    """
    @dev NAV the keeper's rebalances have cost in the current window, asset wei.
    @return uint256 The spent budget, asset wei.
    """
    return (self._budget >> 128) & (_LOW128 >> 1)


# ============================================================================
#                                  INTERNAL
# ============================================================================

# ---------------------------------------------------------------- books


@internal
@view
def _spot() -> uint256:
    """
    @dev The spot book (bits 0-127 of `_legs`).
    @return uint256 Base wei.
    """
    return self._legs & _LOW128


@internal
def _set_spot(amount: uint256):
    """
    @dev Writes the spot book (bits 0-127 of `_legs`).
    @param amount Base wei; below 2**128.
    """
    assert amount <= _LOW128, "hedge: spot too large"
    self._legs = (self._legs & ~_LOW128) | amount


@internal
@view
def _account_open() -> bool:
    """
    @dev Whether the perp account holds size or margin, as last booked (bit 254 of
         `_legs`).
    @return bool True while the account is open.
    """
    return self._legs & _OPEN_BIT != 0


@internal
@view
def _booked_equity() -> int256:
    """
    @dev The perp equity as last booked (bits 0-127 of `_clock`, biased by 2**127).
    @return int256 Asset wei.
    """
    return convert(self._clock & _LOW128, int256) - _EQUITY_BIAS


@internal
@view
def _last_rebalance_time() -> uint256:
    """
    @dev The last successful `rebalance` (bits 128-191 of `_clock`).
    @return uint256 A block timestamp.
    """
    return (self._clock >> 128) & (2**64 - 1)


@internal
def _set_last_rebalance_time(t: uint256):
    """
    @dev Writes the last successful `rebalance` time (bits 128-191 of `_clock`).
    @param t A block timestamp.
    """
    self._clock = (self._clock & ~((2**64 - 1) << 128)) | (t << 128)


@internal
def _book(pos: IPerpMarket.PositionView):
    """
    @dev Remembers the venue's account as it is now: short, equity, open or not.
    @param pos The venue's view of this account.
    """
    short: uint256 = self._short_of(pos)
    assert short <= _LOW126, "hedge: short too large"
    legs: uint256 = (self._legs & _LOW128) | (short << 128) | _TOP_BIT
    if pos.size != 0 or pos.margin != 0:
        legs |= _OPEN_BIT
    self._legs = legs
    equity: int256 = pos.equity
    assert equity >= -_EQUITY_BIAS and equity < _EQUITY_BIAS, "hedge: equity out of range"
    self._clock = (self._clock & ~_LOW128) | convert(equity + _EQUITY_BIAS, uint256)


@internal
def _sync() -> IPerpMarket.PositionView:
    """
    @dev Reads the venue's account now; a short drop this contract did not make (a
         liquidation) is booked and logged as `LiquidationBooked`.
    @return IPerpMarket.PositionView The venue's view of this account.
    """
    pos: IPerpMarket.PositionView = self._position()
    booked: uint256 = (self._legs >> 128) & _LOW126
    short: uint256 = self._short_of(pos)
    if short < booked:
        log LiquidationBooked(
            short_before=booked, short_after=short, equity_before=self._booked_equity(), equity_after=pos.equity
        )
        self._book(pos)
    return pos


@internal
def _snapshot() -> IPerpMarket.PositionView:
    """
    @dev Books what the venue holds after this contract's own trades.
    @return IPerpMarket.PositionView The venue's view of this account.
    """
    pos: IPerpMarket.PositionView = staticcall perp_market.position(self)
    self._book(pos)
    return pos


@internal
@view
def _position() -> IPerpMarket.PositionView:
    """
    @dev The venue's view of this account; all zero, without a call, while nothing is
         open.
    @return IPerpMarket.PositionView The position.
    """
    if not self._account_open():
        return empty(IPerpMarket.PositionView)
    return staticcall perp_market.position(self)


@internal
@pure
def _short_of(pos: IPerpMarket.PositionView) -> uint256:
    """
    @dev The short in a position, 1e18 = one whole base unit.
    @param pos A position.
    @return uint256 Its short size; 0 when flat or long.
    """
    if pos.size >= 0:
        return 0
    return convert(-pos.size, uint256)


@internal
@pure
def _settled(pos: IPerpMarket.PositionView) -> uint256:
    """
    @dev Margin after the pending funding settles (what the market books on touch),
         floored at zero.
    @param pos A position.
    @return uint256 Asset wei.
    """
    return convert(max(convert(pos.margin, int256) + pos.accrued_funding, 0), uint256)


@internal
def _charge_budget(loss: uint256, nav: uint256):
    """
    @dev Charges a rebalance's NAV loss to the keeper's allowance: a fixed
         KEEPER_BUDGET_WINDOW starting at its first charge, at most
         `keeper_loss_budget_bps` of the NAV at that start.
    @param loss The rebalance's NAV loss, asset wei.
    @param nav NAV before the rebalance, asset wei (starts a new window's base).
    """
    spent: uint256 = loss
    base_nav: uint256 = nav
    start: uint256 = self._clock >> 192
    if block.timestamp < start + KEEPER_BUDGET_WINDOW:
        spent += (self._budget >> 128) & (_LOW128 >> 1)
        base_nav = self._budget & _LOW128
    else:
        self._clock = (self._clock & ((2**192) - 1)) | (block.timestamp << 192)
    assert spent * BPS <= base_nav * keeper_loss_budget_bps, "hedge: keeper loss budget spent"
    self._budget = min(base_nav, _LOW128) | (spent << 128) | _TOP_BIT


@internal
def _repay(amount: uint256):
    """
    @dev Sends `amount` asset to the vault and has it booked as idle, telling the vault
         whether this contract still holds anything.
    @param amount Asset wei; nothing happens for 0.
    """
    if amount == 0:
        return
    assert extcall IERC20(asset).transfer(vault.address, amount, default_return_value=True), "hedge: transfer failed"
    extcall vault.repay_idle(amount, self._spot() != 0 or self._account_open())


@internal
@view
def _below_initial_margin(pos: IPerpMarket.PositionView, withdrawal: uint256) -> bool:
    """
    @dev Whether withdrawing `withdrawal` leaves the position below the venue's initial
         margin.
    @param pos The position after the trade.
    @param withdrawal Margin to withdraw, asset wei.
    @return bool True when the withdrawal would leave equity below initial margin.
    """
    required: uint256 = math._mul_div(pos.notional, staticcall perp_market.initial_margin_bps(), BPS, True)
    return pos.equity - convert(withdrawal, int256) < convert(required, int256)


# ---------------------------------------------------------------- oracle


@internal
@view
def _fresh_price() -> uint256:
    """
    @dev The base/USD answer, fresh. A raw static call, so a reverting or malformed feed
         fails with this contract's reason.
    @return uint256 The base price, 8 decimals.
    """
    ok: bool = False
    response: Bytes[160] = b""
    ok, response = raw_call(
        oracle.address, method_id("latestRoundData()"), max_outsize=160, is_static_call=True, revert_on_failure=False
    )
    assert ok and len(response) == 160, "hedge: oracle answer invalid"
    answer: int256 = extract32(response, 32, output_type=int256)
    assert answer > 0, "hedge: oracle answer invalid"
    assert block.timestamp <= extract32(response, 96, output_type=uint256) + max_oracle_age, "hedge: stale oracle"
    return convert(answer, uint256)


# ---------------------------------------------------------------- valuation


@internal
@view
def _base_value(amount: uint256, price: uint256) -> uint256:
    """
    @dev The asset value of `amount` base at `price`, rounded down.
    @param amount Base wei.
    @param price The base price, 8 decimals.
    @return uint256 Asset wei.
    """
    return math._mul_div(amount, price * _ASSET_UNIT, _BASE_UNIT * PRICE_UNIT, False)


@internal
@view
def _size_value(size: uint256, price: uint256, round_up: bool) -> uint256:
    """
    @dev The asset value of a perp size at `price`.
    @param size 1e18 = one whole base unit.
    @param price The base price, 8 decimals.
    @param round_up Round up (true) or down.
    @return uint256 Asset wei.
    """
    return math._mul_div(size, price * _ASSET_UNIT, SIZE_UNIT * PRICE_UNIT, round_up)


@internal
@view
def _perp_equity() -> int256:
    """
    @dev The perp account's live equity, read with a raw static call so an unreadable
         market falls back to the equity last booked; 0 while nothing is open.
    @return int256 Asset wei.
    """
    if not self._account_open():
        return 0
    ok: bool = False
    response: Bytes[32] = b""
    ok, response = raw_call(
        perp_market.address,
        abi_encode(self, method_id=method_id("equity(address)")),
        max_outsize=32,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not ok or len(response) != 32:
        return self._booked_equity()
    return extract32(response, 0, output_type=int256)


@internal
@view
def _nav_of(idle: uint256, spot: uint256, equity: int256, price: uint256) -> uint256:
    """
    @dev The vault's gross NAV with `idle` as its idle, floored at zero.
    @param idle The vault's idle, asset wei.
    @param spot The spot leg, base wei.
    @param equity The perp equity, asset wei.
    @param price The base price, 8 decimals.
    @return uint256 Asset wei.
    """
    nav: int256 = convert(idle + self._base_value(spot, price), int256) + equity
    return convert(max(nav, 0), uint256)


@internal
@view
def _within_rules(spot: uint256, pos: IPerpMarket.PositionView, price: uint256, nav: uint256) -> bool:
    """
    @dev The delta rule and, with a short open, the min margin ratio.
    @param spot The spot leg, base wei.
    @param pos The perp position.
    @param price The base price, 8 decimals.
    @param nav Gross NAV, asset wei.
    @return bool True when both hold.
    """
    spot_value: uint256 = self._base_value(spot, price)
    short_value: uint256 = self._size_value(self._short_of(pos), price, False)
    delta: uint256 = max(spot_value, short_value) - min(spot_value, short_value)
    if delta * BPS > nav * max_delta_bps:
        return False
    return pos.size == 0 or pos.margin_ratio_bps >= min_margin_ratio_bps


# ---------------------------------------------------------------- trading


@internal
def _move_to(
    pos: IPerpMarket.PositionView,
    target_short: uint256,
    target_margin: uint256,
    slippage: uint256,
    price: uint256,
    idle: uint256,
) -> uint256:
    """
    @dev Trades from the venue's position `pos` to the targets, borrowing from the
         vault's idle only what the cash freed on the way does not cover, and hands back
         what is left. Order: reduce short, sell spot, move margin, buy spot, grow short.
    @param pos The venue's position before.
    @param target_short The short wanted, 1e18 = one whole base unit.
    @param target_margin The perp margin wanted, asset wei.
    @param slippage Worst fill vs the oracle (spot) or the mark (perp), bps.
    @param price The base price, 8 decimals.
    @param idle The vault's idle before, asset wei.
    @return uint256 The vault's idle afterwards, asset wei.
    """
    short: uint256 = self._short_of(pos)
    target_base: uint256 = target_short * _BASE_UNIT // SIZE_UNIT
    spot: uint256 = self._spot()
    held: uint256 = 0

    if target_short < short:
        self._perp_trade(convert(short - target_short, int256), slippage)
    if target_base < spot:
        held += self._sell_spot(spot - target_base, slippage, price)

    margin: uint256 = self._settled(pos)
    if target_short < short:
        margin = self._settled(staticcall perp_market.position(self))
    need: uint256 = 0
    if margin > target_margin:
        extcall perp_market.withdraw_margin(margin - target_margin)
        held += margin - target_margin
    else:
        need = target_margin - margin
    buy_cost: uint256 = 0
    if target_base > spot:
        buy_cost = staticcall spot_pool.get_amount_in(base, target_base - spot)
        need += buy_cost
    lent: uint256 = 0
    if need > held:
        lent = need - held
        assert lent <= idle, "hedge: idle too low"
        extcall vault.lend_idle(lent)
        held = need

    if margin < target_margin:
        held -= target_margin - margin
        self._deposit_margin(target_margin - margin)
    if target_base > spot:
        held -= buy_cost
        self._buy_spot(target_base - spot, buy_cost, slippage, price)
    if target_short > short:
        self._perp_trade(-convert(target_short - short, int256), slippage)
    self._repay(held)
    return idle - lent + held


@internal
def _perp_trade(size_delta: int256, slippage: uint256):
    """
    @dev Buys (+) or sells (-) on the perp with the fill bounded `slippage` bps from the
         venue's mark: a premium is the price the short trades at, not slippage (NAV
         values the short at the same mark, so the NAV-loss rule still sees every cost).
    @param size_delta Signed size, 1e18 = one whole base unit.
    @param slippage Worst fill vs the mark, bps.
    """
    mark: uint256 = staticcall perp_market.mark_price()
    acceptable: uint256 = 0
    if size_delta > 0:
        acceptable = math._mul_div(mark, BPS + slippage, BPS, False)
    else:
        acceptable = math._mul_div(mark, BPS - slippage, BPS, True)
    extcall perp_market.modify_position(size_delta, acceptable)


@internal
def _sell_spot(amount: uint256, slippage: uint256, price: uint256) -> uint256:
    """
    @dev Sells `amount` of the spot leg for asset, the fill within `slippage` bps of the
         oracle. Dust the pool pays nothing for cannot be sold (the swap would revert on
         zero output); when it is also worth nothing at the oracle it leaves the book, so
         an unwind ends flat instead of keeping a few unsellable wei "active" forever.
    @param amount Base wei.
    @param slippage Worst fill vs the oracle, bps.
    @param price The base price, 8 decimals.
    @return uint256 Asset wei received (0 for unsellable dust).
    """
    if amount == 0:
        return 0
    if staticcall spot_pool.get_amount_out(base, amount) == 0:
        if self._base_value(amount, price) == 0:
            self._set_spot(self._spot() - amount)
        return 0
    min_out: uint256 = math._mul_div(self._base_value(amount, price), BPS - slippage, BPS, True)
    self._set_spot(self._spot() - amount)
    assert extcall IERC20(base).approve(spot_pool.address, amount, default_return_value=True), "hedge: approve failed"
    return extcall spot_pool.swap(base, amount, min_out, self)


@internal
def _buy_spot(amount: uint256, cost: uint256, slippage: uint256, price: uint256):
    """
    @dev Buys exactly `amount` base for `cost` asset (the pool's quote), `cost` within
         `slippage` bps above the oracle value.
    @param amount Base wei.
    @param cost Asset wei, the pool's `get_amount_in` quote.
    @param slippage Worst fill vs the oracle, bps.
    @param price The base price, 8 decimals.
    """
    worst: uint256 = math._mul_div(self._base_value(amount, price), BPS + slippage, BPS, False)
    assert cost <= worst, "hedge: spot slippage"
    assert extcall IERC20(asset).approve(spot_pool.address, cost, default_return_value=True), "hedge: approve failed"
    self._set_spot(self._spot() + extcall spot_pool.swap(asset, cost, amount, self))


@internal
def _deposit_margin(amount: uint256):
    """
    @dev Deposits `amount` of this contract's asset as perp margin; the account is open
         from then on, even before a trade books it.
    @param amount Asset wei; nothing happens for 0.
    """
    if amount == 0:
        return
    assert extcall IERC20(asset).approve(perp_market.address, amount, default_return_value=True), "hedge: approve failed"
    extcall perp_market.deposit_margin(amount)
    # The account is open from now on, even before a trade books it.
    self._legs |= _OPEN_BIT
