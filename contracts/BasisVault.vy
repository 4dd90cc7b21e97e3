# pragma version 0.4.3
# pragma optimize codesize
"""
@title BasisVault
@custom:contract-name BasisVault
@license MIT
@notice An ERC-4626 vault that earns the perp funding rate without price exposure: it holds
        the `base` token long on a spot pool and an equal short on a perp market margined in
        `asset`. Depositors' assets land in `idle`; the keeper moves the position toward a
        target with `rebalance`, inside collateral rules fixed at deploy.

        Accounting. NAV (`totalAssets`) = idle + spot base x oracle price + perp equity
        (margin + unrealised PnL + accrued funding, live from the market) - accrued fees.
        Idle and spot are tracked internally, so donations never mint anyone value. Funding
        accrues by the second inside the market's equity, so nothing the keeper settles
        makes the share price jump.

        Shares have `asset.decimals() + DECIMALS_OFFSET` decimals, with 10**DECIMALS_OFFSET
        virtual shares and 1 virtual asset (OpenZeppelin's defence): an inflation attack
        costs the attacker about 10**6 times what it could take from a victim.

        Exits. An exit that idle covers is paid from idle at NAV. A larger exit unwinds a
        pro-rata slice of spot, short and margin in the same call and pays that slice's
        actual proceeds, so the holders who stay never pay for it. `withdraw` and `redeem`
        take an optional `max_shares` / `min_assets` bound (slippage protection); the
        three-argument forms are the standard ERC-4626 calls.

        Roles. Owner (two-step transfer): keepers, guardian, fees, deposit cap, shutdown.
        Keepers: `rebalance`. Guardian: pause deposits (never exits), shutdown. Anyone:
        `emergency_deleverage` below the critical margin ratio or after the dead-man
        interval without a successful rebalance.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
# ERC-4626: every function is here (a test checks the ABI), but `implements: IERC4626` is
# left out because the compiler does not count `withdraw`/`redeem` with their optional
# slippage argument as the three-argument standard functions they also are.

from .interfaces import IAggregatorV3
from .interfaces import IPerpMarket
from .interfaces import ISpotPool

from snekmate.auth import ownable
initializes: ownable

from snekmate.auth import ownable_2step
initializes: ownable_2step[ownable := ownable]

from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]

from snekmate.utils import pausable
initializes: pausable

from snekmate.utils import math

exports: (
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.transfer,
    erc20.transferFrom,
    erc20.approve,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    # `permit` (EIP-2612) is left out: with it the vault exceeds the 24 KiB code limit.
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
    pausable.paused,
)


# ============================================================================
#                                  CONSTANTS
# ============================================================================

BPS: constant(uint256) = 10_000
PPM: constant(uint256) = 1_000_000
YEAR: constant(uint256) = 365 * 86_400
SIZE_UNIT: constant(uint256) = 10**18
PRICE_UNIT: constant(uint256) = 10**8
# @dev High-water mark precision: assets per share, 1e18 fixed point.
PPS_UNIT: constant(uint256) = 10**18

# @dev Share decimals = asset decimals + DECIMALS_OFFSET (virtual shares 10**6).
DECIMALS_OFFSET: public(constant(uint8)) = 6
_VIRTUAL_SHARES: constant(uint256) = 10**6

# @dev Absolute bounds on the immutable rules, checked at deploy.
MAX_MANAGEMENT_FEE_CAP_BPS: public(constant(uint256)) = 500
MAX_PERFORMANCE_FEE_CAP_BPS: public(constant(uint256)) = 5_000
MAX_SLIPPAGE_CAP_BPS: public(constant(uint256)) = 500

# @dev `emergency_deleverage` aims this far above the min margin ratio, so fees and
#      impact on the way do not leave it short.
EMERGENCY_BUFFER_BPS: public(constant(uint256)) = 200


# ============================================================================
#                                 IMMUTABLES
# ============================================================================

struct Rules:
    max_leverage_bps: uint256
    min_margin_ratio_bps: uint256
    critical_margin_ratio_bps: uint256
    max_delta_bps: uint256
    max_slippage_bps: uint256
    max_oracle_age: uint256
    max_nav_loss_bps: uint256
    max_management_fee_bps: uint256
    max_performance_fee_bps: uint256
    deposit_cap_ceiling: uint256
    dead_man_interval: uint256


asset: public(immutable(address))
base: public(immutable(address))
oracle: public(immutable(IAggregatorV3))
perp_market: public(immutable(IPerpMarket))
spot_pool: public(immutable(ISpotPool))
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
# @dev Worst fill accepted against the oracle, bps, for every spot and perp trade.
max_slippage_bps: public(immutable(uint256))
# @dev Oracle answers older than this (seconds) stop entries, exits and rebalances.
max_oracle_age: public(immutable(uint256))
# @dev The most NAV one rebalance may cost, bps of NAV.
max_nav_loss_bps: public(immutable(uint256))
max_management_fee_bps: public(immutable(uint256))
max_performance_fee_bps: public(immutable(uint256))
# @dev The owner's deposit cap can never exceed this, asset wei.
deposit_cap_ceiling: public(immutable(uint256))
# @dev Without a successful rebalance for this long, anyone may deleverage.
dead_man_interval: public(immutable(uint256))


# ============================================================================
#                                  STORAGE
# ============================================================================

# @dev Asset held by the vault outside the venues, asset wei.
idle: public(uint256)
# @dev Base held as the spot leg, base wei.
spot_base: public(uint256)
# @dev The perp short, 1e18 = one whole base unit.
short_size: public(uint256)

is_keeper: public(HashMap[address, bool])
guardian: public(address)
is_shutdown: public(bool)
deposit_cap: public(uint256)

management_fee_bps: public(uint256)
performance_fee_bps: public(uint256)
fee_recipient: public(address)
last_fee_time: public(uint256)
# @dev Highest assets-per-share (PPS_UNIT) on which a performance fee was charged.
high_water_mark: public(uint256)

last_rebalance_time: public(uint256)
# @dev Last oracle answer and perp equity a state-changing call saw; views fall back to
#      them when the oracle or the market cannot be read.
last_valid_price: public(uint256)
last_perp_equity: public(int256)


# ============================================================================
#                                   EVENTS
# ============================================================================

event Deposit:
    sender: indexed(address)
    owner: indexed(address)
    assets: uint256
    shares: uint256


event Withdraw:
    sender: indexed(address)
    receiver: indexed(address)
    owner: indexed(address)
    assets: uint256
    shares: uint256


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


event EmergencyDeleveraged:
    caller: indexed(address)
    reduced_size: uint256
    margin_ratio_before_bps: uint256
    margin_ratio_after_bps: uint256


event ExitUnwound:
    owner: indexed(address)
    spot_sold: uint256
    short_closed: uint256
    margin_withdrawn: uint256


event FeesAccrued:
    recipient: indexed(address)
    shares: uint256
    management_assets: uint256
    performance_assets: uint256


event Shutdown:
    caller: indexed(address)


event KeeperUpdated:
    account: indexed(address)
    status: bool


event GuardianUpdated:
    old_guardian: indexed(address)
    new_guardian: indexed(address)


event DepositCapUpdated:
    old_cap: uint256
    new_cap: uint256


event FeesUpdated:
    management_fee_bps: uint256
    performance_fee_bps: uint256


event FeeRecipientUpdated:
    old_recipient: indexed(address)
    new_recipient: indexed(address)


# ============================================================================
#                                CONSTRUCTOR
# ============================================================================

@deploy
def __init__(
    asset_: address,
    base_: address,
    oracle_: IAggregatorV3,
    perp_market_: IPerpMarket,
    spot_pool_: ISpotPool,
    name_: String[25],
    symbol_: String[5],
    rules: Rules,
    owner_: address,
    guardian_: address,
    keeper_: address,
    fee_recipient_: address,
):
    """
    @dev Validates and fixes the collateral rules; the deployer keeps no role unless it
         names itself as `owner_`.
    @param asset_ The deposit token (a USD stablecoin).
    @param base_ The spot token the vault holds long.
    @param oracle_ Chainlink-compatible base/USD feed, 8 decimals.
    @param perp_market_ Perp venue margined in `asset_`, on the same base.
    @param spot_pool_ Spot venue for (`base_`, `asset_`).
    @param rules The immutable collateral rules (see the getters).
    @param owner_ The owner (two-step transferable); not the zero address.
    @param guardian_ May pause deposits and shut down; may be empty.
    @param keeper_ A first keeper; may be empty.
    @param fee_recipient_ Receives fee shares; may be empty (fees then accrue to no one).
    """
    assert asset_ != empty(address) and base_ != empty(address), "vault: zero token"
    assert asset_ != base_, "vault: identical tokens"
    assert staticcall oracle_.decimals() == 8, "vault: oracle must have 8 decimals"
    assert owner_ != empty(address), "vault: zero owner"
    assert rules.max_leverage_bps != 0, "vault: zero max leverage"
    assert rules.critical_margin_ratio_bps != 0, "vault: zero critical margin ratio"
    assert rules.critical_margin_ratio_bps < rules.min_margin_ratio_bps, "vault: critical ratio >= min ratio"
    assert rules.min_margin_ratio_bps <= BPS, "vault: min margin ratio above 100%"
    assert rules.min_margin_ratio_bps >= staticcall perp_market_.initial_margin_bps(), "vault: min ratio below venue IM"
    assert rules.max_delta_bps <= BPS, "vault: max delta above 100%"
    assert rules.max_slippage_bps != 0, "vault: zero max slippage"
    assert rules.max_slippage_bps <= MAX_SLIPPAGE_CAP_BPS, "vault: max slippage above cap"
    assert rules.max_oracle_age != 0, "vault: zero max oracle age"
    assert rules.max_nav_loss_bps <= BPS, "vault: max nav loss above 100%"
    assert rules.max_management_fee_bps <= MAX_MANAGEMENT_FEE_CAP_BPS, "vault: management fee cap too high"
    assert rules.max_performance_fee_bps <= MAX_PERFORMANCE_FEE_CAP_BPS, "vault: performance fee cap too high"
    assert rules.deposit_cap_ceiling != 0, "vault: zero deposit cap ceiling"
    assert rules.dead_man_interval != 0, "vault: zero dead-man interval"

    asset_decimals: uint8 = staticcall IERC20Detailed(asset_).decimals()
    assert asset_decimals <= 18, "vault: asset decimals above 18"
    ownable.__init__()
    ownable_2step.__init__()
    erc20.__init__(name_, symbol_, asset_decimals + DECIMALS_OFFSET, name_, "1")
    pausable.__init__()

    asset = asset_
    base = base_
    oracle = oracle_
    perp_market = perp_market_
    spot_pool = spot_pool_
    _ASSET_UNIT = 10 ** convert(asset_decimals, uint256)
    _BASE_UNIT = 10 ** convert(staticcall IERC20Detailed(base_).decimals(), uint256)
    max_leverage_bps = rules.max_leverage_bps
    min_margin_ratio_bps = rules.min_margin_ratio_bps
    critical_margin_ratio_bps = rules.critical_margin_ratio_bps
    max_delta_bps = rules.max_delta_bps
    max_slippage_bps = rules.max_slippage_bps
    max_oracle_age = rules.max_oracle_age
    max_nav_loss_bps = rules.max_nav_loss_bps
    max_management_fee_bps = rules.max_management_fee_bps
    max_performance_fee_bps = rules.max_performance_fee_bps
    deposit_cap_ceiling = rules.deposit_cap_ceiling
    dead_man_interval = rules.dead_man_interval

    self.deposit_cap = rules.deposit_cap_ceiling
    self.high_water_mark = PPS_UNIT // _VIRTUAL_SHARES
    self.last_fee_time = block.timestamp
    self.last_rebalance_time = block.timestamp
    self.fee_recipient = fee_recipient_
    self.guardian = guardian_
    if keeper_ != empty(address):
        self.is_keeper[keeper_] = True
        log KeeperUpdated(account=keeper_, status=True)
    # The deployer is `ownable`'s initial owner; hand over at once (a constructor
    # argument, so no two-step acceptance is needed).
    if owner_ != msg.sender:
        ownable._transfer_ownership(owner_)
    # snekmate's erc20 makes the deployer a minter; its `mint` is not exported, but drop
    # the flag anyway so no stale power remains.
    erc20.is_minter[msg.sender] = False


# ============================================================================
#                               ERC-4626 ENTRIES
# ============================================================================

@external
@nonreentrant
def deposit(assets: uint256, receiver: address, min_shares: uint256 = 0) -> uint256:
    """
    @dev Deposits exactly `assets` into idle for shares (rounded down).
    @param assets Asset wei, > 0 and <= maxDeposit.
    @param receiver Who gets the shares; not the zero address nor the vault.
    @param min_shares Slippage bound: revert if fewer shares would be minted.
    @return uint256 Shares minted.
    """
    assert assets != 0, "vault: zero assets"
    self._check_deposits_open()
    price: uint256 = self._fresh_price()
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._accrue_fees(price)
    assert assets <= self._max_deposit(nav, supply), "vault: deposit above maximum"
    shares: uint256 = math._mul_div(assets, supply + _VIRTUAL_SHARES, nav + 1, False)
    assert shares != 0, "vault: zero shares"
    assert shares >= min_shares, "vault: shares below minimum"
    self._deposit(receiver, assets, shares)
    return shares


@external
@nonreentrant
def mint(shares: uint256, receiver: address) -> uint256:
    """
    @dev Mints exactly `shares` for the assets they cost (rounded up).
    @param shares Shares, > 0 and <= maxMint.
    @param receiver Who gets the shares; not the zero address nor the vault.
    @return uint256 Assets taken.
    """
    assert shares != 0, "vault: zero shares"
    self._check_deposits_open()
    price: uint256 = self._fresh_price()
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._accrue_fees(price)
    assets: uint256 = math._mul_div(shares, nav + 1, supply + _VIRTUAL_SHARES, True)
    assert assets <= self._max_deposit(nav, supply), "vault: mint above maximum"
    self._deposit(receiver, assets, shares)
    return assets


@external
@nonreentrant
def withdraw(
    assets: uint256, receiver: address, owner: address, max_shares: uint256 = max_value(uint256)
) -> uint256:
    """
    @dev Pays exactly `assets` to `receiver`, burning `owner`'s shares. From idle when it
         covers the amount (shares rounded up); otherwise a pro-rata slice of the position
         is unwound and the shares burned are `previewWithdraw(assets)`, priced at the
         worst fill the rules allow; any better execution stays in the vault.
    @param assets Asset wei, > 0.
    @param receiver Who gets the assets; not the zero address nor the vault.
    @param owner Whose shares are burned; the caller needs allowance unless it is `owner`.
    @param max_shares Slippage bound: revert if more shares would be burned.
    @return uint256 Shares burned.
    """
    assert assets != 0, "vault: zero assets"
    price: uint256 = self._fresh_price()
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._accrue_fees(price)
    shares: uint256 = 0
    from_idle: bool = assets <= self.idle
    if from_idle:
        shares = math._mul_div(assets, supply + _VIRTUAL_SHARES, nav + 1, True)
    else:
        shares = self._shares_for_unwind_exit(assets, nav, supply, price)
    assert shares <= max_shares, "vault: shares above maximum"
    assert shares <= erc20.balanceOf[owner], "vault: withdraw above maximum"
    self._before_exit(receiver, owner, shares)
    if from_idle:
        self.idle -= assets
    else:
        proceeds: uint256 = self._unwind_slice(owner, shares, supply, price)
        assert proceeds >= assets, "vault: exit cost above bound"
        self.idle += proceeds - assets
    self._after_exit(receiver, owner, assets, shares)
    return shares


@external
@nonreentrant
def redeem(shares: uint256, receiver: address, owner: address, min_assets: uint256 = 0) -> uint256:
    """
    @dev Burns exactly `shares` of `owner`'s for their assets: from idle at NAV when idle
         covers them (rounded down), otherwise the actual proceeds of unwinding their
         pro-rata slice of idle, spot, short and margin, capped at their NAV value.
    @param shares Shares, > 0 and <= the owner's balance.
    @param receiver Who gets the assets; not the zero address nor the vault.
    @param owner Whose shares are burned; the caller needs allowance unless it is `owner`.
    @param min_assets Slippage bound: revert if fewer assets would be paid.
    @return uint256 Assets paid.
    """
    assert shares != 0, "vault: zero shares"
    price: uint256 = self._fresh_price()
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._accrue_fees(price)
    assert shares <= erc20.balanceOf[owner], "vault: redeem above maximum"
    self._before_exit(receiver, owner, shares)
    assets: uint256 = math._mul_div(shares, nav + 1, supply + _VIRTUAL_SHARES, False)
    if assets <= self.idle:
        self.idle -= assets
    else:
        proceeds: uint256 = self._unwind_slice(owner, shares, supply, price)
        # An exit never pays more than NAV: fills better than the oracle (a pool above it)
        # stay with the holders who remain, so a round trip can never profit.
        if proceeds > assets:
            self.idle += proceeds - assets
        else:
            assets = proceeds
    assert assets != 0, "vault: zero assets"
    assert assets >= min_assets, "vault: assets below minimum"
    self._after_exit(receiver, owner, assets, shares)
    return assets


# ============================================================================
#                                   KEEPER
# ============================================================================

@external
@nonreentrant
def rebalance(target_short: uint256, target_margin: uint256, max_slippage: uint256, deadline: uint256):
    """
    @dev Moves the hedge to `target_short` (spot moves to the same size) and the perp
         margin to `target_margin`, trading each leg within `max_slippage` of the oracle.
         Order: reduce short, sell spot, move margin, buy spot, grow short. Then checks the
         rules on the result (|delta|, margin ratio, leverage, NAV loss); any breach
         reverts the whole call. `rebalance(0, 0, ...)` parks everything in idle.
    @param target_short The short size wanted, 1e18 = one whole base unit.
    @param target_margin The perp margin wanted, asset wei (fees on the perp trade come
           out of it).
    @param max_slippage Worst fill vs the oracle, bps; at most `max_slippage_bps`.
    @param deadline Latest block timestamp at which the call may run.
    """
    assert self.is_keeper[msg.sender], "vault: not keeper"
    assert not self.is_shutdown, "vault: shut down"
    assert block.timestamp <= deadline, "vault: deadline expired"
    assert max_slippage <= max_slippage_bps, "vault: slippage above rule"
    price: uint256 = self._fresh_price()
    nav_before: uint256 = 0
    supply: uint256 = 0
    nav_before, supply = self._accrue_fees(price)
    spot_before: uint256 = self.spot_base
    short_before: uint256 = self.short_size
    margin_before: uint256 = self._settled_margin()

    self._move_to(target_short, target_margin, max_slippage, price)

    nav_after: uint256 = self._nav(price)
    if nav_after < nav_before:
        assert (nav_before - nav_after) * BPS <= nav_before * max_nav_loss_bps, "vault: nav loss rule"
    self._check_position_rules(price, nav_after)
    self.last_rebalance_time = block.timestamp
    margin_after: uint256 = self._settled_margin()
    log Rebalanced(
        keeper=msg.sender,
        price_e8=price,
        funding_rate=staticcall perp_market.funding_rate(),
        spot_before=spot_before,
        spot_after=self.spot_base,
        short_before=short_before,
        short_after=self.short_size,
        margin_before=margin_before,
        margin_after=margin_after,
        nav_before=nav_before,
        nav_after=nav_after,
        cost=convert(nav_before, int256) - convert(nav_after, int256),
    )


# ============================================================================
#                                  EMERGENCY
# ============================================================================

@external
@nonreentrant
def emergency_deleverage():
    """
    @dev Permissionless. When the margin ratio is below `critical_margin_ratio_bps`, or no
         rebalance has succeeded for `dead_man_interval`, and the ratio is below
         `min_margin_ratio_bps`: buys back just enough short, sells the same spot and adds
         the proceeds to margin, aiming at the min ratio plus EMERGENCY_BUFFER_BPS, every
         fill within `max_slippage_bps` of the oracle.
    """
    price: uint256 = self._fresh_price()
    self._accrue_fees(price)
    short: uint256 = self.short_size
    assert short != 0, "vault: no position"
    ratio: uint256 = staticcall perp_market.margin_ratio_bps(self)
    assert (
        ratio < critical_margin_ratio_bps or block.timestamp > self.last_rebalance_time + dead_man_interval
    ), "vault: deleverage not allowed"
    assert ratio < min_margin_ratio_bps, "vault: margin ratio healthy"

    # Solve (E + x) / (N - x) = r for the notional x to move from short to margin.
    target: uint256 = min_margin_ratio_bps + EMERGENCY_BUFFER_BPS
    notional: uint256 = self._size_value(short, price, False)
    equity: int256 = staticcall perp_market.equity(self)
    need: int256 = convert(target * notional, int256) - convert(BPS, int256) * equity
    reduce_value: uint256 = convert(max(need, 0), uint256) // (BPS + target) + 1
    reduce: uint256 = min(short, math._mul_div(reduce_value, SIZE_UNIT * PRICE_UNIT, price * _ASSET_UNIT, True))
    base_amount: uint256 = min(self.spot_base, reduce * _BASE_UNIT // SIZE_UNIT)

    self._perp_trade(convert(reduce, int256), max_slippage_bps, price)
    self.short_size = short - reduce
    proceeds: uint256 = self._sell_spot(base_amount, max_slippage_bps, price)
    self._deposit_margin(proceeds)
    self.idle -= proceeds
    ratio_after: uint256 = staticcall perp_market.margin_ratio_bps(self)
    assert ratio_after > ratio, "vault: deleverage failed"
    self._snapshot_perp()
    log EmergencyDeleveraged(
        caller=msg.sender, reduced_size=reduce, margin_ratio_before_bps=ratio, margin_ratio_after_bps=ratio_after
    )


@external
@nonreentrant
def shutdown():
    """
    @dev Irreversible. Owner or guardian. Unwinds the whole position to idle (each fill
         within `max_slippage_bps` of the oracle); deposits and rebalances stop forever;
         exits keep working, all from idle.
    """
    self._check_guardian_or_owner()
    assert not self.is_shutdown, "vault: shut down"
    price: uint256 = self._fresh_price()
    self._accrue_fees(price)
    self.is_shutdown = True
    self._move_to(0, 0, max_slippage_bps, price)
    log Shutdown(caller=msg.sender)


@external
def pause():
    """
    @dev Stops deposits and mints (never exits). Guardian or owner.
    """
    self._check_guardian_or_owner()
    pausable._pause()


@external
def unpause():
    """
    @dev Reopens deposits. Guardian or owner.
    """
    self._check_guardian_or_owner()
    pausable._unpause()


# ============================================================================
#                                   ADMIN
# ============================================================================

@external
def set_keeper(account: address, status: bool):
    """
    @dev Grants or revokes the keeper role. Owner only.
    """
    ownable._check_owner()
    assert account != empty(address), "vault: zero address"
    self.is_keeper[account] = status
    log KeeperUpdated(account=account, status=status)


@external
def set_guardian(account: address):
    """
    @dev Sets the guardian (empty to remove). Owner only.
    """
    ownable._check_owner()
    old: address = self.guardian
    self.guardian = account
    log GuardianUpdated(old_guardian=old, new_guardian=account)


@external
def set_deposit_cap(cap: uint256):
    """
    @dev Sets the deposit cap in asset wei, at most `deposit_cap_ceiling`. Owner only.
    """
    ownable._check_owner()
    assert cap <= deposit_cap_ceiling, "vault: cap above ceiling"
    old: uint256 = self.deposit_cap
    self.deposit_cap = cap
    log DepositCapUpdated(old_cap=old, new_cap=cap)


@external
@nonreentrant
def set_fees(management_fee_bps_: uint256, performance_fee_bps_: uint256):
    """
    @dev Sets the fees after accruing at the old ones. Owner only; each within its cap.
    @param management_fee_bps_ Annual, bps of NAV, accrued by the second.
    @param performance_fee_bps_ Bps of share-price gains above the high-water mark.
    """
    ownable._check_owner()
    assert management_fee_bps_ <= max_management_fee_bps, "vault: management fee above cap"
    assert performance_fee_bps_ <= max_performance_fee_bps, "vault: performance fee above cap"
    self._accrue_fees(self._fresh_price())
    self.management_fee_bps = management_fee_bps_
    self.performance_fee_bps = performance_fee_bps_
    log FeesUpdated(management_fee_bps=management_fee_bps_, performance_fee_bps=performance_fee_bps_)


@external
@nonreentrant
def set_fee_recipient(recipient: address):
    """
    @dev Sets who receives fee shares, after accruing to the old one. Owner only.
    """
    ownable._check_owner()
    assert recipient != self, "vault: recipient is the vault"
    self._accrue_fees(self._fresh_price())
    old: address = self.fee_recipient
    self.fee_recipient = recipient
    log FeeRecipientUpdated(old_recipient=old, new_recipient=recipient)


# ============================================================================
#                                 4626 VIEWS
# ============================================================================

@external
@view
def totalAssets() -> uint256:
    """
    @dev NAV net of accrued fees, asset wei, valued at the oracle (the last valid answer
         when the oracle cannot be read). Never reverts.
    """
    price: uint256 = self._view_price()
    gross: uint256 = self._nav(price)
    fee_shares: uint256 = 0
    management: uint256 = 0
    performance: uint256 = 0
    fee_shares, management, performance = self._pending_fees(gross, erc20.totalSupply)
    return gross - management - performance


@external
@view
def convertToShares(assets: uint256) -> uint256:
    return self._view_to_shares(assets, False)


@external
@view
def convertToAssets(shares: uint256) -> uint256:
    return self._view_to_assets(shares, False)


@external
@view
def maxDeposit(receiver: address) -> uint256:
    """
    @dev 0 while paused, shut down or the oracle is stale; else the room under the cap.
    """
    if not self._deposits_open():
        return 0
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._view_state()
    return self._max_deposit(nav, supply)


@external
@view
def maxMint(receiver: address) -> uint256:
    if not self._deposits_open():
        return 0
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._view_state()
    return self._view_to_shares(self._max_deposit(nav, supply), False)


@external
@view
def maxWithdraw(owner: address) -> uint256:
    """
    @dev What `owner` can surely withdraw now: `previewRedeem` of its balance; 0 when the
         oracle is stale.
    """
    if not self._oracle_fresh():
        return 0
    return self._preview_redeem(erc20.balanceOf[owner])


@external
@view
def maxRedeem(owner: address) -> uint256:
    if not self._oracle_fresh():
        return 0
    return erc20.balanceOf[owner]


@external
@view
def previewDeposit(assets: uint256) -> uint256:
    return self._view_to_shares(assets, False)


@external
@view
def previewMint(shares: uint256) -> uint256:
    return self._view_to_assets(shares, True)


@external
@view
def previewWithdraw(assets: uint256) -> uint256:
    """
    @dev Shares `withdraw(assets)` burns at most: at NAV when idle covers `assets`, else
         priced at the worst unwind the rules allow.
    """
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._view_state()
    if assets <= self.idle:
        return self._view_to_shares(assets, True)
    return self._shares_for_unwind_exit(assets, nav, supply, self._view_price())


@external
@view
def previewRedeem(shares: uint256) -> uint256:
    """
    @dev Assets `redeem(shares)` pays at least: at NAV when idle covers them, else net of
         the worst unwind cost the rules allow.
    """
    return self._preview_redeem(shares)


# ============================================================================
#                               OTHER VIEWS
# ============================================================================

# ============================================================================
#                                  INTERNAL
# ============================================================================

@internal
def _deposit(receiver: address, assets: uint256, shares: uint256):
    assert receiver != empty(address) and receiver != self, "vault: invalid receiver"
    self.idle += assets
    erc20._mint(receiver, shares)

    assert extcall IERC20(asset).transferFrom(msg.sender, self, assets, default_return_value=True), "vault: transferFrom failed"
    log Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)


@internal
def _before_exit(receiver: address, owner: address, shares: uint256):
    assert receiver != empty(address) and receiver != self, "vault: invalid receiver"
    if msg.sender != owner:
        erc20._spend_allowance(owner, msg.sender, shares)
    erc20._burn(owner, shares)


@internal
def _after_exit(receiver: address, owner: address, assets: uint256, shares: uint256):
    assert extcall IERC20(asset).transfer(receiver, assets, default_return_value=True), "vault: transfer failed"
    log Withdraw(sender=msg.sender, receiver=receiver, owner=owner, assets=assets, shares=shares)


@internal
@view
def _check_guardian_or_owner():
    assert msg.sender == self.guardian or msg.sender == ownable.owner, "vault: not owner or guardian"


@internal
@view
def _check_deposits_open():
    assert not self.is_shutdown, "vault: shut down"
    assert not pausable.paused, "vault: deposits paused"


@internal
@view
def _deposits_open() -> bool:
    return not self.is_shutdown and not pausable.paused and self._oracle_fresh()


@internal
@view
def _max_deposit(nav: uint256, supply: uint256) -> uint256:
    cap: uint256 = self.deposit_cap
    if nav >= cap:
        return 0
    return cap - nav


# ---------------------------------------------------------------- oracle


@internal
@view
def _read_oracle() -> (uint256, uint256, bool):
    # A raw static call, so a reverting or malformed feed cannot make a view revert.
    ok: bool = False
    response: Bytes[160] = b""
    ok, response = raw_call(
        oracle.address, method_id("latestRoundData()"), max_outsize=160, is_static_call=True, revert_on_failure=False
    )
    if not ok or len(response) != 160:
        return (0, 0, False)
    answer: int256 = extract32(response, 32, output_type=int256)
    updated_at: uint256 = extract32(response, 96, output_type=uint256)
    if answer <= 0:
        return (0, updated_at, False)
    return (convert(answer, uint256), updated_at, True)


@internal
def _fresh_price() -> uint256:
    price: uint256 = 0
    updated_at: uint256 = 0
    ok: bool = False
    price, updated_at, ok = self._read_oracle()
    assert ok, "vault: oracle answer invalid"
    assert block.timestamp <= updated_at + max_oracle_age, "vault: stale oracle"
    self.last_valid_price = price
    return price


@internal
@view
def _oracle_fresh() -> bool:
    price: uint256 = 0
    updated_at: uint256 = 0
    ok: bool = False
    price, updated_at, ok = self._read_oracle()
    return ok and block.timestamp <= updated_at + max_oracle_age


@internal
@view
def _view_price() -> uint256:
    price: uint256 = 0
    updated_at: uint256 = 0
    ok: bool = False
    price, updated_at, ok = self._read_oracle()
    if ok:
        return price
    return self.last_valid_price


# ---------------------------------------------------------------- valuation


@internal
@view
def _base_value(amount: uint256, price: uint256) -> uint256:
    return math._mul_div(amount, price * _ASSET_UNIT, _BASE_UNIT * PRICE_UNIT, False)


@internal
@view
def _size_value(size: uint256, price: uint256, round_up: bool) -> uint256:
    return math._mul_div(size, price * _ASSET_UNIT, SIZE_UNIT * PRICE_UNIT, round_up)


@internal
@view
def _perp_equity() -> int256:
    if self.short_size == 0 and self.last_perp_equity == 0:
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
        return self.last_perp_equity
    return extract32(response, 0, output_type=int256)


@internal
@view
def _nav(price: uint256) -> uint256:
    # Gross NAV (before accrued fees), floored at zero.
    nav: int256 = convert(self.idle + self._base_value(self.spot_base, price), int256) + self._perp_equity()
    return convert(max(nav, 0), uint256)


@internal
@view
def _pending_fees(nav: uint256, supply: uint256) -> (uint256, uint256, uint256):
    # (fee shares to mint, management fee assets, performance fee assets) accrued since
    # the last accrual, at gross NAV `nav` and `supply` shares.
    if supply == 0 or nav == 0:
        return (0, 0, 0)
    elapsed: uint256 = block.timestamp - self.last_fee_time
    management: uint256 = nav * self.management_fee_bps * elapsed // (BPS * YEAR)
    management = min(management, nav)
    performance: uint256 = 0
    perf_bps: uint256 = self.performance_fee_bps
    if perf_bps != 0:
        pps: uint256 = math._mul_div(nav - management + 1, PPS_UNIT, supply + _VIRTUAL_SHARES, False)
        hwm: uint256 = self.high_water_mark
        if pps > hwm:
            gain: uint256 = math._mul_div(pps - hwm, supply + _VIRTUAL_SHARES, PPS_UNIT, False)
            performance = gain * perf_bps // BPS
    fees: uint256 = management + performance
    if fees == 0 or fees >= nav:
        return (0, management, performance)
    # Shares worth exactly `fees` after they exist: fees / (nav - fees) of the supply.
    shares: uint256 = math._mul_div(fees, supply + _VIRTUAL_SHARES, nav - fees + 1, False)
    return (shares, management, performance)


@internal
@view
def _view_to_shares(assets: uint256, round_up: bool) -> uint256:
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._view_state()
    return math._mul_div(assets, supply + _VIRTUAL_SHARES, nav + 1, round_up)


@internal
@view
def _view_to_assets(shares: uint256, round_up: bool) -> uint256:
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._view_state()
    return math._mul_div(shares, nav + 1, supply + _VIRTUAL_SHARES, round_up)


@internal
@view
def _view_state() -> (uint256, uint256):
    # (gross NAV, supply including pending fee shares): the state an entry or exit right
    # now would price against, so previews equal execution.
    nav: uint256 = self._nav(self._view_price())
    supply: uint256 = erc20.totalSupply
    fee_shares: uint256 = 0
    management: uint256 = 0
    performance: uint256 = 0
    fee_shares, management, performance = self._pending_fees(nav, supply)
    if self.fee_recipient == empty(address):
        fee_shares = 0
    return (nav, supply + fee_shares)


@internal
def _accrue_fees(price: uint256) -> (uint256, uint256):
    # Mints the accrued fee shares and moves the high-water mark; returns the state to
    # price against: (gross NAV, supply after the mint).
    # Runs on every entry, exit and keeper call, even twice in a block: the high-water
    # mark must follow the share price before the supply changes, or a rounding gain
    # left unmarked would be charged later on the next depositor's capital.
    nav: uint256 = self._nav(price)
    supply: uint256 = erc20.totalSupply
    fee_shares: uint256 = 0
    management: uint256 = 0
    performance: uint256 = 0
    fee_shares, management, performance = self._pending_fees(nav, supply)
    self.last_fee_time = block.timestamp
    recipient: address = self.fee_recipient
    if fee_shares != 0 and recipient != empty(address):
        erc20._mint(recipient, fee_shares)
        supply += fee_shares
        log FeesAccrued(
            recipient=recipient, shares=fee_shares, management_assets=management, performance_assets=performance
        )
    if supply != 0:
        pps: uint256 = math._mul_div(nav + 1, PPS_UNIT, supply + _VIRTUAL_SHARES, False)
        if pps > self.high_water_mark:
            self.high_water_mark = pps
    return (nav, supply)


# ---------------------------------------------------------------- exits


@internal
@view
def _unwind_cost_bound(price: uint256) -> uint256:
    # The most a full unwind may cost under the rules: every fill within
    # `max_slippage_bps` of the oracle (spot fees are inside the fill), plus the perp
    # taker fee, plus a few wei of rounding per leg.
    spot_value: uint256 = self._base_value(self.spot_base, price)
    short_value: uint256 = self._size_value(self.short_size, price, True)
    fee_ppm: uint256 = 0
    if self.short_size != 0:
        fee_ppm = staticcall perp_market.taker_fee_ppm()
    slippage: uint256 = (spot_value + short_value) * max_slippage_bps // BPS + 1
    return slippage + short_value * fee_ppm // PPM + 1 + 4


@internal
@view
def _preview_redeem(shares: uint256) -> uint256:
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._view_state()
    assets: uint256 = math._mul_div(shares, nav + 1, supply + _VIRTUAL_SHARES, False)
    if assets <= self.idle:
        return assets
    cost: uint256 = self._unwind_cost_bound(self._view_price())
    if cost >= nav:
        return 0
    return math._mul_div(shares, nav - cost, supply + _VIRTUAL_SHARES, False)


@internal
@view
def _shares_for_unwind_exit(assets: uint256, nav: uint256, supply: uint256, price: uint256) -> uint256:
    cost: uint256 = self._unwind_cost_bound(price)
    assert cost < nav, "vault: nothing to withdraw"
    return math._mul_div(assets, supply + _VIRTUAL_SHARES, nav - cost, True)


@internal
def _unwind_slice(owner: address, shares: uint256, supply: uint256, price: uint256) -> uint256:
    # Pays the exiting holder the actual proceeds of shares / (supply + virtual) of every
    # leg. Each slice is rounded down, so the holders who stay keep at least their part.
    denominator: uint256 = supply + _VIRTUAL_SHARES
    idle_part: uint256 = self.idle * shares // denominator
    base_part: uint256 = self.spot_base * shares // denominator
    short: uint256 = self.short_size
    short_part: uint256 = short * shares // denominator
    self.idle -= idle_part

    margin_out: uint256 = 0
    if short != 0 or self.last_perp_equity != 0:
        pos: IPerpMarket.PositionView = staticcall perp_market.position(self)
        settled: int256 = convert(pos.margin, int256) + pos.accrued_funding
        # What the stayers keep: their share of the settled margin, rounded up.
        keep: uint256 = math._mul_div(convert(max(settled, 0), uint256), denominator - shares, denominator, True)
        if short_part != 0:
            self._perp_trade(convert(short_part, int256), max_slippage_bps, price)
            self.short_size = short - short_part
        margin_now: uint256 = (staticcall perp_market.position(self)).margin
        assert margin_now >= keep, "vault: exit slice insolvent"
        margin_out = margin_now - keep
        if margin_out != 0:
            extcall perp_market.withdraw_margin(margin_out)
        self._snapshot_perp()

    spot_out: uint256 = 0
    if base_part != 0:
        spot_out = self._sell_spot(base_part, max_slippage_bps, price)
        self.idle -= spot_out
    log ExitUnwound(owner=owner, spot_sold=base_part, short_closed=short_part, margin_withdrawn=margin_out)
    return idle_part + spot_out + margin_out


# ---------------------------------------------------------------- trading


@internal
def _move_to(target_short: uint256, target_margin: uint256, slippage: uint256, price: uint256):
    short: uint256 = self.short_size
    target_base: uint256 = target_short * _BASE_UNIT // SIZE_UNIT
    spot: uint256 = self.spot_base

    if target_short < short:
        self._perp_trade(convert(short - target_short, int256), slippage, price)
    if target_base < spot:
        self._sell_spot(spot - target_base, slippage, price)

    margin: uint256 = self._settled_margin()
    if margin > target_margin:
        amount: uint256 = margin - target_margin
        extcall perp_market.withdraw_margin(amount)
        self.idle += amount
    elif margin < target_margin:
        amount: uint256 = target_margin - margin
        assert amount <= self.idle, "vault: idle too low"
        self.idle -= amount
        self._deposit_margin(amount)

    if target_base > spot:
        self._buy_spot(target_base - spot, slippage, price)
    if target_short > short:
        self._perp_trade(-convert(target_short - short, int256), slippage, price)
    self.short_size = target_short
    self._snapshot_perp()


@internal
def _perp_trade(size_delta: int256, slippage: uint256, price: uint256):
    # Buys (+) or sells (-) on the perp with the fill bounded `slippage` bps from the oracle.
    acceptable: uint256 = 0
    if size_delta > 0:
        acceptable = math._mul_div(price, BPS + slippage, BPS, False)
    else:
        acceptable = math._mul_div(price, BPS - slippage, BPS, True)
    extcall perp_market.modify_position(size_delta, acceptable)


@internal
def _sell_spot(amount: uint256, slippage: uint256, price: uint256) -> uint256:
    # Dust worth nothing on the pool stays put (a swap would revert on zero output).
    if amount == 0 or staticcall spot_pool.get_amount_out(base, amount) == 0:
        return 0
    min_out: uint256 = math._mul_div(self._base_value(amount, price), BPS - slippage, BPS, True)
    self.spot_base -= amount
    assert extcall IERC20(base).approve(spot_pool.address, amount, default_return_value=True), "vault: approve failed"
    out: uint256 = extcall spot_pool.swap(base, amount, min_out, self)
    self.idle += out
    return out


@internal
def _buy_spot(amount: uint256, slippage: uint256, price: uint256):
    cost: uint256 = staticcall spot_pool.get_amount_in(base, amount)
    worst: uint256 = math._mul_div(self._base_value(amount, price), BPS + slippage, BPS, False)
    assert cost <= worst, "vault: spot slippage"
    assert cost <= self.idle, "vault: idle too low"
    self.idle -= cost
    assert extcall IERC20(asset).approve(spot_pool.address, cost, default_return_value=True), "vault: approve failed"
    out: uint256 = extcall spot_pool.swap(asset, cost, amount, self)
    self.spot_base += out


@internal
def _deposit_margin(amount: uint256):
    if amount == 0:
        return
    assert extcall IERC20(asset).approve(perp_market.address, amount, default_return_value=True), "vault: approve failed"
    extcall perp_market.deposit_margin(amount)


@internal
@view
def _settled_margin() -> uint256:
    # Margin after the pending funding settles (what the market will book on touch).
    if self.short_size == 0 and self.last_perp_equity == 0:
        return 0
    pos: IPerpMarket.PositionView = staticcall perp_market.position(self)
    return convert(max(convert(pos.margin, int256) + pos.accrued_funding, 0), uint256)


@internal
def _snapshot_perp():
    self.last_perp_equity = staticcall perp_market.equity(self)


@internal
@view
def _check_position_rules(price: uint256, nav: uint256):
    spot_value: uint256 = self._base_value(self.spot_base, price)
    short_value: uint256 = self._size_value(self.short_size, price, False)
    delta: uint256 = max(spot_value, short_value) - min(spot_value, short_value)
    assert delta * BPS <= nav * max_delta_bps, "vault: delta rule"
    if self.short_size != 0:
        equity: int256 = staticcall perp_market.equity(self)
        assert equity > 0, "vault: perp equity <= 0"
        assert short_value * BPS <= convert(equity, uint256) * max_leverage_bps, "vault: leverage rule"
        assert staticcall perp_market.margin_ratio_bps(self) >= min_margin_ratio_bps, "vault: margin ratio rule"
