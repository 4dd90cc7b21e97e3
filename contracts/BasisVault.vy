# pragma version 0.4.3
# pragma optimize codesize
"""
@title BasisVault
@custom:contract-name BasisVault
@license MIT
@notice An ERC-4626 vault that earns the perp funding rate without price exposure. This
        contract keeps the share accounting: deposits, exits, fees, the deposit cap, roles
        and the shutdown flag. The position (the spot leg held long and an equal perp
        short) lives in its `BasisHedge`, which this contract creates from a blueprint in
        its constructor, so the two are linked for life (Yearn V3 splits vault and
        strategy the same way).

        Accounting. NAV (`totalAssets`) = idle + the hedge's value (spot base at the
        oracle + perp equity live from the market) - accrued fees. Idle is a book, so
        donations never mint anyone value. Funding accrues by the second inside the
        market's equity, so nothing the keeper settles makes the share price jump.

        Shares have `asset.decimals() + DECIMALS_OFFSET` decimals, with 10**DECIMALS_OFFSET
        virtual shares and 1 virtual asset (OpenZeppelin's defence): an inflation attack
        costs the attacker about 10**6 times what it could take from a victim.

        Exits. While the hedge holds nothing, exits are paid from idle at NAV. Otherwise
        every exit takes its pro-rata slice of idle and unwinds its slice of spot, short
        and margin through the hedge in the same call, and is paid that slice's actual
        proceeds: the holders who stay never pay for anyone's exit, whatever the margin
        ratio (after a liquidation too). `withdraw` and `redeem` take an optional
        `max_shares` / `min_assets` bound; the three-argument forms are the standard
        ERC-4626 calls.

        The asset is valued at 1 USD. Entries and exits stop while the asset's own USD
        feed is stale or further than `max_depeg_bps` from 1, so nobody enters or leaves
        at a price the oracle's USD valuation gets wrong by more than that.

        Roles. Owner (two-step transfer): keepers, guardian, fees, deposit cap, shutdown.
        Keepers: the hedge's `rebalance`. Guardian: pause deposits (never exits), shutdown.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
# ERC-4626: every function is here (a test checks the ABI), but `implements: IERC4626` is
# left out because the compiler does not count `withdraw`/`redeem` with their optional
# slippage argument as the three-argument standard functions they also are.

from .interfaces import IAggregatorV3
from .interfaces import IBasisHedge
from .interfaces import IBasisVault
from .interfaces import IPerpMarket
from .interfaces import ISpotPool

implements: IBasisVault

from snekmate.auth import ownable
initializes: ownable

from snekmate.auth import ownable_2step
initializes: ownable_2step[ownable := ownable]

from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]

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
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)


# ============================================================================
#                                  CONSTANTS
# ============================================================================

# @dev Basis points: 10_000 = 100 %.
BPS: constant(uint256) = 10_000
# @dev The management fee's year, seconds.
YEAR: constant(uint256) = 365 * 86_400
# @dev Oracle answers carry 8 decimals (Chainlink USD feeds).
PRICE_UNIT: constant(uint256) = 10**8
# @dev High-water mark precision: assets per share, 1e18 fixed point.
PPS_UNIT: constant(uint256) = 10**18

# @dev Share decimals = asset decimals + DECIMALS_OFFSET (virtual shares 10**6).
DECIMALS_OFFSET: public(constant(uint8)) = 6
_VIRTUAL_SHARES: constant(uint256) = 10**6

# @dev Bit masks and flags of the packed `_cash` and `_state` words (see STORAGE).
_MASK96: constant(uint256) = 2**96 - 1
_MASK40: constant(uint256) = 2**40 - 1
_MASK16: constant(uint256) = 2**16 - 1
_MASK160: constant(uint256) = 2**160 - 1
_PAUSED_BIT: constant(uint256) = 2**232
_SHUTDOWN_BIT: constant(uint256) = 2**233
_HEDGE_BIT: constant(uint256) = 2**234

# @dev What one exit slice may lose to rounding beyond its share of the cost bound, asset
#      wei: each part is rounded down and the perp fee up, and those wei fall on the slice
#      whatever its size. Previews of exits while hedged take it off, so they never promise
#      more than a dust exit gets.
EXIT_ROUNDING: public(constant(uint256)) = 10

# @dev Absolute bounds on the immutable rules, checked at deploy.
MAX_MANAGEMENT_FEE_CAP_BPS: public(constant(uint256)) = 500
MAX_PERFORMANCE_FEE_CAP_BPS: public(constant(uint256)) = 5_000
MAX_DEPEG_CAP_BPS: public(constant(uint256)) = 1_000


# ============================================================================
#                                 IMMUTABLES
# ============================================================================

# @dev The vault's immutable rules, passed to the constructor in one struct (each field
#      becomes the immutable getter of the same name).
struct Rules:
    max_oracle_age: uint256
    max_asset_oracle_age: uint256
    max_depeg_bps: uint256
    max_management_fee_bps: uint256
    max_performance_fee_bps: uint256
    deposit_cap_ceiling: uint256


# @dev The deposit token (a USD stablecoin), ERC-4626's `asset`.
asset: public(immutable(address))
# @dev The spot token the hedge holds long (e.g. WETH).
base: public(immutable(address))
# @dev The base/USD feed, 8 decimals.
oracle: public(immutable(IAggregatorV3))
# @dev The asset's own USD feed (e.g. USDC / USD), 8 decimals.
asset_oracle: public(immutable(IAggregatorV3))
# @dev The `BasisHedge` this vault created in its constructor (linked for life).
hedge: public(immutable(IBasisHedge))

# @dev Base oracle answers older than this (seconds) stop entries and exits.
max_oracle_age: public(immutable(uint256))
# @dev Asset oracle answers older than this (seconds) stop entries and exits.
max_asset_oracle_age: public(immutable(uint256))
# @dev Entries and exits stop while the asset's USD price is further than this from 1, bps.
max_depeg_bps: public(immutable(uint256))
# @dev The owner's management fee can never exceed this, bps of NAV per year.
max_management_fee_bps: public(immutable(uint256))
# @dev The owner's performance fee can never exceed this, bps of gains.
max_performance_fee_bps: public(immutable(uint256))
# @dev The owner's deposit cap can never exceed this, asset wei.
deposit_cap_ceiling: public(immutable(uint256))


# ============================================================================
#                                  STORAGE
# ============================================================================

# @dev The entry/exit books, packed so that an entry reads and writes two slots
#      (Vyper does not pack storage itself); the getters below unpack them.
#      _cash:  idle (asset wei, bits 0-95) | deposit_cap (asset wei, 96-191)
#              | last_valid_price (8 decimals, 192-255)
#      _state: last_fee_time (0-39) | management_fee_bps (40-55)
#              | performance_fee_bps (56-71) | fee_recipient (72-231) | paused (232)
#              | is_shutdown (233) | the hedge may hold something (234)
#      idle is the asset held outside the hedge (a book: donations are not counted). Bit
#      234 is set when the hedge borrows idle (the only way it can come to hold anything)
#      and cleared when it reports holding nothing, so an idle vault values and exits
#      without calling its hedge;
#      last_valid_price is the last base oracle answer an entry or exit saw, which views
#      fall back to when the oracle cannot be read.
_cash: uint256
_state: uint256

# @dev Accounts allowed to call the hedge's `rebalance`.
is_keeper: public(HashMap[address, bool])
# @dev May pause deposits and shut the vault down (empty = none).
guardian: public(address)
# @dev Highest assets-per-share (PPS_UNIT) on which a performance fee was charged.
high_water_mark: public(uint256)


# ============================================================================
#                                   EVENTS
# ============================================================================

# @dev ERC-4626: `sender` paid `assets` for `shares` minted to `owner`.
event Deposit:
    sender: indexed(address)
    owner: indexed(address)
    assets: uint256
    shares: uint256


# @dev ERC-4626: `sender` burned `owner`'s `shares` and paid `assets` to `receiver`.
event Withdraw:
    sender: indexed(address)
    receiver: indexed(address)
    owner: indexed(address)
    assets: uint256
    shares: uint256


# @dev Fee shares minted to `recipient`, and the management and performance fees they
#      are worth, asset wei.
event FeesAccrued:
    recipient: indexed(address)
    shares: uint256
    management_assets: uint256
    performance_assets: uint256


# @dev An entry into an empty vault restarted the high-water mark at its price.
event HighWaterMarkReset:
    high_water_mark: uint256


# @dev `caller` shut the vault down (irreversible).
event Shutdown:
    caller: indexed(address)


# @dev `account` paused deposits and mints.
event Paused:
    account: address


# @dev `account` reopened deposits and mints.
event Unpaused:
    account: address


# @dev `account` was granted (`status` true) or lost the keeper role.
event KeeperUpdated:
    account: indexed(address)
    status: bool


# @dev The guardian changed (also emitted by the constructor).
event GuardianUpdated:
    old_guardian: indexed(address)
    new_guardian: indexed(address)


# @dev The deposit cap changed, asset wei (also emitted by the constructor, which sets
#      it to `deposit_cap_ceiling`).
event DepositCapUpdated:
    old_cap: uint256
    new_cap: uint256


# @dev The owner set the fees, bps.
event FeesUpdated:
    management_fee_bps: uint256
    performance_fee_bps: uint256


# @dev The fee recipient changed (also emitted by the constructor).
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
    asset_oracle_: IAggregatorV3,
    perp_market_: IPerpMarket,
    spot_pool_: ISpotPool,
    hedge_blueprint: address,
    name_: String[25],
    symbol_: String[5],
    rules: Rules,
    hedge_rules: IBasisHedge.Rules,
    owner_: address,
    guardian_: address,
    keeper_: address,
    fee_recipient_: address,
):
    """
    @dev Validates and fixes the vault's rules and creates its hedge from
         `hedge_blueprint` (which validates its own); the deployer keeps no role unless
         it names itself as `owner_`. The deposit cap (set to the ceiling), the fee
         recipient, the guardian and the first keeper go through the same `_set_*`
         functions as the owner's setters, so the deploy emits their events.
    @param asset_ The deposit token (a USD stablecoin).
    @param base_ The spot token the hedge holds long.
    @param oracle_ Chainlink-compatible base/USD feed, 8 decimals.
    @param asset_oracle_ Chainlink-compatible asset/USD feed, 8 decimals.
    @param perp_market_ Perp venue margined in `asset_`, on the same base.
    @param spot_pool_ Spot venue for (`base_`, `asset_`).
    @param hedge_blueprint An EIP-5202 blueprint of `BasisHedge`.
    @param name_ The share token's name, also its EIP-712 domain name.
    @param symbol_ The share token's symbol.
    @param rules The vault's immutable rules (see the getters).
    @param hedge_rules The hedge's immutable rules (see `BasisHedge`).
    @param owner_ The owner (two-step transferable); not the zero address.
    @param guardian_ May pause deposits and shut down; may be empty.
    @param keeper_ A first keeper; may be empty.
    @param fee_recipient_ Receives fee shares; may be empty (then no fees accrue).
    """
    assert asset_ != empty(address) and base_ != empty(address), "vault: zero token"
    assert asset_ != base_, "vault: identical tokens"
    assert staticcall oracle_.decimals() == 8, "vault: oracle must have 8 decimals"
    assert staticcall asset_oracle_.decimals() == 8, "vault: asset oracle must have 8 decimals"
    assert owner_ != empty(address), "vault: zero owner"
    assert rules.max_oracle_age != 0, "vault: zero max oracle age"
    assert rules.max_asset_oracle_age != 0, "vault: zero max asset oracle age"
    assert rules.max_depeg_bps <= MAX_DEPEG_CAP_BPS, "vault: max depeg above cap"
    assert rules.max_management_fee_bps <= MAX_MANAGEMENT_FEE_CAP_BPS, "vault: management fee cap too high"
    assert rules.max_performance_fee_bps <= MAX_PERFORMANCE_FEE_CAP_BPS, "vault: performance fee cap too high"
    assert rules.deposit_cap_ceiling != 0, "vault: zero deposit cap ceiling"
    assert rules.deposit_cap_ceiling <= _MASK96, "vault: deposit cap ceiling too large"

    asset_decimals: uint8 = staticcall IERC20Detailed(asset_).decimals()
    assert asset_decimals <= 18, "vault: asset decimals above 18"
    ownable.__init__()
    ownable_2step.__init__()
    erc20.__init__(name_, symbol_, asset_decimals + DECIMALS_OFFSET, name_, "1")

    asset = asset_
    base = base_
    oracle = oracle_
    asset_oracle = asset_oracle_
    max_oracle_age = rules.max_oracle_age
    max_asset_oracle_age = rules.max_asset_oracle_age
    max_depeg_bps = rules.max_depeg_bps
    max_management_fee_bps = rules.max_management_fee_bps
    max_performance_fee_bps = rules.max_performance_fee_bps
    deposit_cap_ceiling = rules.deposit_cap_ceiling
    hedge = IBasisHedge(
        create_from_blueprint(
            hedge_blueprint, self, asset_, base_, oracle_, perp_market_, spot_pool_, hedge_rules, code_offset=3
        )
    )

    self._state = block.timestamp
    self.high_water_mark = PPS_UNIT // _VIRTUAL_SHARES
    self._set_deposit_cap(rules.deposit_cap_ceiling)
    self._set_fee_recipient(fee_recipient_)
    self._set_guardian(guardian_)
    if keeper_ != empty(address):
        self._set_keeper(keeper_, True)
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
    nav: uint256 = 0
    supply: uint256 = 0
    price: uint256 = 0
    nav, supply, price = self._open_entry()
    assert assets <= self._max_deposit(nav), "vault: deposit above maximum"
    shares: uint256 = math._mul_div(assets, supply + _VIRTUAL_SHARES, nav + 1, False)
    assert shares != 0, "vault: zero shares"
    assert shares >= min_shares, "vault: shares below minimum"
    self._deposit(receiver, assets, shares)
    return shares


@external
@nonreentrant
def mint(shares: uint256, receiver: address, max_assets: uint256 = max_value(uint256)) -> uint256:
    """
    @dev Mints exactly `shares` for the assets they cost (rounded up).
    @param shares Shares, > 0 and <= maxMint.
    @param receiver Who gets the shares; not the zero address nor the vault.
    @param max_assets Slippage bound: revert if more assets would be taken.
    @return uint256 Assets taken.
    """
    assert shares != 0, "vault: zero shares"
    nav: uint256 = 0
    supply: uint256 = 0
    price: uint256 = 0
    nav, supply, price = self._open_entry()
    assets: uint256 = math._mul_div(shares, nav + 1, supply + _VIRTUAL_SHARES, True)
    assert assets <= self._max_deposit(nav), "vault: mint above maximum"
    assert assets <= max_assets, "vault: assets above maximum"
    self._deposit(receiver, assets, shares)
    return assets


@external
@nonreentrant
def withdraw(
    assets: uint256, receiver: address, owner: address, max_shares: uint256 = max_value(uint256)
) -> uint256:
    """
    @dev Pays exactly `assets` to `receiver`, burning `owner`'s shares. While the hedge
         holds nothing, from idle at NAV (shares rounded up); otherwise the owner's slice
         of idle and of the hedge is unwound and the shares burned are
         `previewWithdraw(assets)`, priced at the worst fill the rules allow; any better
         execution stays in the vault.
    @param assets Asset wei, > 0.
    @param receiver Who gets the assets; not the zero address nor the vault.
    @param owner Whose shares are burned; the caller needs allowance unless it is `owner`.
    @param max_shares Slippage bound: revert if more shares would be burned.
    @return uint256 Shares burned.
    """
    assert assets != 0, "vault: zero assets"
    nav: uint256 = 0
    supply: uint256 = 0
    price: uint256 = 0
    nav, supply, price = self._open_exit()
    hedged: bool = self._hedge_active()
    shares: uint256 = 0
    if hedged:
        shares = self._shares_for_unwind_exit(assets, nav, supply, price)
    else:
        shares = math._mul_div(assets, supply + _VIRTUAL_SHARES, nav + 1, True)
    assert shares <= max_shares, "vault: shares above maximum"
    assert shares <= erc20.balanceOf[owner], "vault: withdraw above maximum"
    self._before_exit(receiver, owner, shares)
    if hedged:
        proceeds: uint256 = self._exit_slice(owner, shares, supply, price)
        assert proceeds >= assets, "vault: exit cost above bound"
        self._set_idle(self._idle() + proceeds - assets)
    else:
        self._set_idle(self._idle() - assets)
    self._after_exit(receiver, owner, assets, shares)
    return shares


@external
@nonreentrant
def redeem(shares: uint256, receiver: address, owner: address, min_assets: uint256 = 0) -> uint256:
    """
    @dev Burns exactly `shares` of `owner`'s for their assets: from idle at NAV while the
         hedge holds nothing (rounded down), otherwise the actual proceeds of their
         pro-rata slice of idle, spot, short and margin, capped at their NAV value.
    @param shares Shares, > 0 and <= the owner's balance.
    @param receiver Who gets the assets; not the zero address nor the vault.
    @param owner Whose shares are burned; the caller needs allowance unless it is `owner`.
    @param min_assets Slippage bound: revert if fewer assets would be paid.
    @return uint256 Assets paid.
    """
    assert shares != 0, "vault: zero shares"
    nav: uint256 = 0
    supply: uint256 = 0
    price: uint256 = 0
    nav, supply, price = self._open_exit()
    assert shares <= erc20.balanceOf[owner], "vault: redeem above maximum"
    self._before_exit(receiver, owner, shares)
    assets: uint256 = math._mul_div(shares, nav + 1, supply + _VIRTUAL_SHARES, False)
    if self._hedge_active():
        proceeds: uint256 = self._exit_slice(owner, shares, supply, price)
        # An exit never pays more than NAV: fills better than the oracle (a pool above it)
        # stay with the holders who remain, so a round trip can never profit.
        if proceeds > assets:
            self._set_idle(self._idle() + proceeds - assets)
        else:
            assets = proceeds
    else:
        self._set_idle(self._idle() - assets)
    assert assets != 0, "vault: zero assets"
    assert assets >= min_assets, "vault: assets below minimum"
    self._after_exit(receiver, owner, assets, shares)
    return assets


# ============================================================================
#                                    HEDGE
# ============================================================================

@external
def lend_idle(amount: uint256):
    """
    @dev Only the hedge: moves `amount` of idle to it for a rebalance.
    @param amount Asset wei, <= idle.
    """
    assert msg.sender == hedge.address, "vault: not hedge"
    self._state |= _HEDGE_BIT
    self._set_idle(self._idle() - amount)
    assert extcall IERC20(asset).transfer(msg.sender, amount, default_return_value=True), "vault: transfer failed"


@external
def repay_idle(amount: uint256, active: bool):
    """
    @dev Only the hedge: books `amount` it has just transferred here as idle.
    @param amount Asset wei.
    @param active Whether the hedge still holds anything.
    """
    assert msg.sender == hedge.address, "vault: not hedge"
    self._set_idle(self._idle() + amount)
    if not active:
        self._state &= ~_HEDGE_BIT


# ============================================================================
#                               OWNER, GUARDIAN
# ============================================================================

@external
@nonreentrant
def shutdown():
    """
    @dev Irreversible. Owner or guardian. Deposits and rebalances stop forever; anyone
         may then unwind the hedge in bounded steps (`BasisHedge.unwind`), each fill
         within its slippage rule; exits keep working throughout.
    """
    self._check_guardian_or_owner()
    assert self._state & _SHUTDOWN_BIT == 0, "vault: shut down"
    self._state |= _SHUTDOWN_BIT
    log Shutdown(caller=msg.sender)


@external
def pause():
    """
    @dev Stops deposits and mints (never exits). Guardian or owner.
    """
    self._check_guardian_or_owner()
    assert self._state & _PAUSED_BIT == 0, "vault: paused"
    self._state |= _PAUSED_BIT
    log Paused(account=msg.sender)


@external
def unpause():
    """
    @dev Reopens deposits. Guardian or owner.
    """
    self._check_guardian_or_owner()
    assert self._state & _PAUSED_BIT != 0, "vault: not paused"
    self._state &= ~_PAUSED_BIT
    log Unpaused(account=msg.sender)


@external
def set_keeper(account: address, status: bool):
    """
    @dev Grants or revokes the keeper role (the hedge's `rebalance`). Owner only.
    @param account Not the zero address.
    @param status True to grant, false to revoke.
    """
    ownable._check_owner()
    self._set_keeper(account, status)


@external
def set_guardian(account: address):
    """
    @dev Sets the guardian (empty to remove). Owner only.
    @param account The new guardian.
    """
    ownable._check_owner()
    self._set_guardian(account)


@external
def set_deposit_cap(cap: uint256):
    """
    @dev Sets the deposit cap in asset wei, at most `deposit_cap_ceiling`. Owner only.
    @param cap The most NAV deposits may bring the vault to.
    """
    ownable._check_owner()
    self._set_deposit_cap(cap)


@external
@nonreentrant
def set_fees(management_fee_bps_: uint256, performance_fee_bps_: uint256):
    """
    @dev Sets the fees after accruing at the old ones. Owner only; each within its cap.
    @param management_fee_bps_ Annual, bps of NAV, accrued by the second.
    @param performance_fee_bps_ Bps of share-price gains above the high-water mark.
    """
    ownable._check_owner()
    self._set_fees(management_fee_bps_, performance_fee_bps_)


@external
@nonreentrant
def set_fee_recipient(recipient: address):
    """
    @dev Sets who receives fee shares, after accruing to the old one. Owner only. With
         no recipient no fees accrue.
    @param recipient Not the vault.
    """
    ownable._check_owner()
    self._accrue_fees(self._fresh_price())
    self._set_fee_recipient(recipient)


# ============================================================================
#                                 4626 VIEWS
# ============================================================================

@external
@view
def totalAssets() -> uint256:
    """
    @dev NAV net of accrued fees, asset wei, valued at the oracle (the last valid answer
         when the oracle cannot be read); `convertToAssets(totalSupply())` to the
         rounding. Never reverts.
    @return uint256 The assets the shares are worth, asset wei.
    """
    gross: uint256 = self._nav(self._view_price())
    fee_shares: uint256 = 0
    management: uint256 = 0
    performance: uint256 = 0
    fee_shares, management, performance = self._pending_fees(gross, erc20.totalSupply)
    return gross - management - performance


@external
@view
def convertToShares(assets: uint256) -> uint256:
    """
    @dev Shares `assets` are worth at NAV, rounded down.
    @param assets Asset wei.
    @return uint256 The shares.
    """
    return self._view_to_shares(assets, False)


@external
@view
def convertToAssets(shares: uint256) -> uint256:
    """
    @dev Assets `shares` are worth at NAV, rounded down.
    @param shares Shares.
    @return uint256 The assets, asset wei.
    """
    return self._view_to_assets(shares, False)


@external
@view
def maxDeposit(receiver: address) -> uint256:
    """
    @dev 0 while paused, shut down, an oracle is stale or the asset is de-pegged; else
         the room under the cap.
    @param receiver Unused: the limit is the same for everyone.
    @return uint256 The most `deposit` accepts now, asset wei.
    """
    if not self._deposits_open():
        return 0
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._view_state()
    return self._max_deposit(nav)


@external
@view
def maxMint(receiver: address) -> uint256:
    """
    @dev The shares `maxDeposit` buys (0 when deposits are closed).
    @param receiver Unused: the limit is the same for everyone.
    @return uint256 The most `mint` accepts now, shares.
    """
    if not self._deposits_open():
        return 0
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._view_state()
    return self._view_to_shares(self._max_deposit(nav), False)


@external
@view
def maxWithdraw(owner: address) -> uint256:
    """
    @dev What `owner` can surely withdraw now: `previewRedeem` of its balance; 0 while an
         oracle is stale or the asset is de-pegged.
    @param owner The share holder.
    @return uint256 Asset wei.
    """
    if not self._exits_open():
        return 0
    return self._preview_redeem(erc20.balanceOf[owner])


@external
@view
def maxRedeem(owner: address) -> uint256:
    """
    @dev `owner`'s balance; 0 while an oracle is stale or the asset is de-pegged.
    @param owner The share holder.
    @return uint256 Shares.
    """
    if not self._exits_open():
        return 0
    return erc20.balanceOf[owner]


@external
@view
def previewDeposit(assets: uint256) -> uint256:
    """
    @dev Shares `deposit(assets)` mints now.
    @param assets Asset wei.
    @return uint256 Shares, rounded down.
    """
    return self._view_to_shares(assets, False)


@external
@view
def previewMint(shares: uint256) -> uint256:
    """
    @dev Assets `mint(shares)` takes now.
    @param shares Shares.
    @return uint256 Asset wei, rounded up.
    """
    return self._view_to_assets(shares, True)


@external
@view
def previewWithdraw(assets: uint256) -> uint256:
    """
    @dev Shares `withdraw(assets)` burns at most: at NAV while the hedge holds nothing,
         else priced at the worst unwind the rules allow.
    @param assets Asset wei.
    @return uint256 Shares, rounded up.
    """
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._view_state()
    if not self._hedge_active():
        return self._view_to_shares(assets, True)
    return self._shares_for_unwind_exit(assets, nav, supply, self._view_price())


@external
@view
def previewRedeem(shares: uint256) -> uint256:
    """
    @dev Assets `redeem(shares)` pays at least: at NAV while the hedge holds nothing,
         else net of the worst unwind cost the rules allow.
    @param shares Shares.
    @return uint256 Asset wei, rounded down.
    """
    return self._preview_redeem(shares)


# ============================================================================
#                               OTHER VIEWS
# ============================================================================

@external
@view
def idle() -> uint256:
    """
    @dev Asset held by the vault outside the hedge, asset wei (a book: donations are not
         counted).
    @return uint256 Idle, asset wei.
    """
    return self._idle()


@external
@view
def deposit_cap() -> uint256:
    """
    @dev The most NAV deposits may bring the vault to, asset wei.
    @return uint256 The cap, asset wei.
    """
    return (self._cash >> 96) & _MASK96


@external
@view
def last_valid_price() -> uint256:
    """
    @dev The last base oracle answer an entry or exit saw; views fall back to it when the
         oracle cannot be read.
    @return uint256 The price, 8 decimals.
    """
    return self._cash >> 192


@external
@view
def last_fee_time() -> uint256:
    """
    @dev When fees were last accrued.
    @return uint256 A block timestamp.
    """
    return self._state & _MASK40


@external
@view
def management_fee_bps() -> uint256:
    """
    @dev Annual management fee, bps of NAV.
    @return uint256 The fee, bps.
    """
    return (self._state >> 40) & _MASK16


@external
@view
def performance_fee_bps() -> uint256:
    """
    @dev Fee on share-price gains above the high-water mark, bps.
    @return uint256 The fee, bps.
    """
    return (self._state >> 56) & _MASK16


@external
@view
def fee_recipient() -> address:
    """
    @dev Receives the fee shares; empty = no fees accrue.
    @return address The recipient.
    """
    return self._recipient(self._state)


@external
@view
def paused() -> bool:
    """
    @dev True while deposits and mints are paused (never exits).
    @return bool Whether deposits are paused.
    """
    return self._state & _PAUSED_BIT != 0


@external
@view
def is_shutdown() -> bool:
    """
    @dev True once `shutdown` was called (irreversible).
    @return bool Whether the vault is shut down.
    """
    return self._state & _SHUTDOWN_BIT != 0


# ============================================================================
#                                  INTERNAL
# ============================================================================

# ---------------------------------------------------------------- entries, exits


@internal
def _open_entry() -> (uint256, uint256, uint256):
    """
    @dev Checks that deposits are open (not shut down, not paused, oracles fresh and the
         asset on its peg), accrues fees and prices the entry. An entry into an empty
         vault restarts the high-water mark at its own price.
    @return (uint256, uint256, uint256) Gross NAV, supply after the fee mint, and the
            base price (8 decimals).
    """
    state: uint256 = self._state
    assert state & _SHUTDOWN_BIT == 0, "vault: shut down"
    assert state & _PAUSED_BIT == 0, "vault: deposits paused"
    price: uint256 = self._fresh_price()
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._accrue_fees(price)
    if supply == 0:
        # An empty vault starts afresh: the high-water mark and the fee clock restart at
        # the price this entry pays, so nobody pays a fee on what an earlier holder left.
        hwm: uint256 = math._mul_div(nav + 1, PPS_UNIT, _VIRTUAL_SHARES, False)
        self.high_water_mark = hwm
        log HighWaterMarkReset(high_water_mark=hwm)
    return (nav, supply, price)


@internal
def _open_exit() -> (uint256, uint256, uint256):
    """
    @dev Checks that exits are open (oracles fresh, the asset on its peg), accrues fees
         and prices the exit.
    @return (uint256, uint256, uint256) Gross NAV, supply after the fee mint, and the
            base price (8 decimals).
    """
    price: uint256 = self._fresh_price()
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._accrue_fees(price)
    return (nav, supply, price)


@internal
def _deposit(receiver: address, assets: uint256, shares: uint256):
    """
    @dev Books `assets` as idle, mints `shares` to `receiver`, pulls the assets from the
         caller and logs `Deposit`.
    @param receiver Who gets the shares; not the zero address nor the vault.
    @param assets Asset wei pulled from the caller.
    @param shares Shares minted.
    """
    assert receiver != empty(address) and receiver != self, "vault: invalid receiver"
    self._set_idle(self._idle() + assets)
    erc20._mint(receiver, shares)
    assert extcall IERC20(asset).transferFrom(msg.sender, self, assets, default_return_value=True), "vault: transferFrom failed"
    log Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)


@internal
def _before_exit(receiver: address, owner: address, shares: uint256):
    """
    @dev Checks the receiver, spends the caller's allowance unless it is `owner`, and
         burns `owner`'s shares.
    @param receiver Who will get the assets; not the zero address nor the vault.
    @param owner Whose shares are burned.
    @param shares Shares burned.
    """
    assert receiver != empty(address) and receiver != self, "vault: invalid receiver"
    if msg.sender != owner:
        erc20._spend_allowance(owner, msg.sender, shares)
    erc20._burn(owner, shares)


@internal
def _after_exit(receiver: address, owner: address, assets: uint256, shares: uint256):
    """
    @dev Pays `assets` to `receiver` and logs `Withdraw`.
    @param receiver Who gets the assets.
    @param owner Whose shares were burned.
    @param assets Asset wei paid.
    @param shares Shares burned.
    """
    assert extcall IERC20(asset).transfer(receiver, assets, default_return_value=True), "vault: transfer failed"
    log Withdraw(sender=msg.sender, receiver=receiver, owner=owner, assets=assets, shares=shares)


@internal
def _exit_slice(owner: address, shares: uint256, supply: uint256, price: uint256) -> uint256:
    """
    @dev The exiting slice: its share of idle (rounded down) plus the hedge's proceeds of
         unwinding its share of spot, short and margin. Leaves all of it in idle's stead
         and clears the hedge bit once the hedge holds nothing.
    @param owner The exiting holder (for the hedge's event).
    @param shares The exiting shares (already burned).
    @param supply The supply before the burn.
    @param price The base price the exit is priced at, 8 decimals.
    @return uint256 The slice's value, asset wei: its idle part plus the hedge's proceeds.
    """
    denominator: uint256 = supply + _VIRTUAL_SHARES
    idle_part: uint256 = self._idle() * shares // denominator
    proceeds: uint256 = extcall hedge.exit_slice(shares, denominator, price, owner)
    self._set_idle(self._idle() - idle_part)
    if not staticcall hedge.active():
        self._state &= ~_HEDGE_BIT
    return idle_part + proceeds


@internal
@view
def _shares_for_unwind_exit(assets: uint256, nav: uint256, supply: uint256, price: uint256) -> uint256:
    """
    @dev Shares a hedged `withdraw(assets)` burns: priced at NAV net of the worst unwind
         cost the rules allow, plus EXIT_ROUNDING, rounded up.
    @param assets Asset wei to withdraw.
    @param nav Gross NAV, asset wei.
    @param supply Share supply (including pending fee shares).
    @param price The base price, 8 decimals.
    @return uint256 Shares.
    """
    cost: uint256 = staticcall hedge.exit_cost_bound(price)
    assert cost < nav, "vault: nothing to withdraw"
    return math._mul_div(assets + EXIT_ROUNDING, supply + _VIRTUAL_SHARES, nav - cost, True)


@internal
@view
def _preview_redeem(shares: uint256) -> uint256:
    """
    @dev Assets `redeem(shares)` pays at least now: at NAV while the hedge holds nothing,
         else net of the worst unwind cost the rules allow and EXIT_ROUNDING.
    @param shares Shares.
    @return uint256 Asset wei, rounded down.
    """
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._view_state()
    if not self._hedge_active():
        return math._mul_div(shares, nav + 1, supply + _VIRTUAL_SHARES, False)
    cost: uint256 = staticcall hedge.exit_cost_bound(self._view_price())
    if cost >= nav:
        return 0
    assets: uint256 = math._mul_div(shares, nav - cost, supply + _VIRTUAL_SHARES, False)
    return assets - min(assets, EXIT_ROUNDING)


@internal
@view
def _check_guardian_or_owner():
    """
    @dev Throws unless the caller is the guardian or the owner.
    """
    assert msg.sender == self.guardian or msg.sender == ownable.owner, "vault: not owner or guardian"


@internal
@view
def _deposits_open() -> bool:
    """
    @dev Whether an entry would pass its checks now: not shut down, not paused, and
         exits open.
    @return bool True when deposits and mints are open.
    """
    return self._state & (_SHUTDOWN_BIT | _PAUSED_BIT) == 0 and self._exits_open()


@internal
@view
def _exits_open() -> bool:
    """
    @dev Whether an exit would pass its checks now: both oracles fresh and valid and
         the asset on its peg.
    @return bool True when withdrawals and redemptions are open.
    """
    price: uint256 = 0
    reason: String[40] = ""
    price, reason = self._feed_check()
    return reason == empty(String[40])


@internal
@view
def _max_deposit(nav: uint256) -> uint256:
    """
    @dev The room under the deposit cap at gross NAV `nav`.
    @param nav Gross NAV, asset wei.
    @return uint256 Asset wei; 0 at or above the cap.
    """
    cap: uint256 = (self._cash >> 96) & _MASK96
    if nav >= cap:
        return 0
    return cap - nav


# ---------------------------------------------------------------- books


@internal
@view
def _idle() -> uint256:
    """
    @dev The idle book (bits 0-95 of `_cash`).
    @return uint256 Idle, asset wei.
    """
    return self._cash & _MASK96


@internal
def _set_idle(amount: uint256):
    """
    @dev Writes the idle book (bits 0-95 of `_cash`).
    @param amount Idle, asset wei; below 2**96.
    """
    assert amount <= _MASK96, "vault: idle too large"
    self._cash = (self._cash & ~_MASK96) | amount


@internal
@pure
def _recipient(state: uint256) -> address:
    """
    @dev Unpacks the fee recipient from a `_state` word (bits 72-231).
    @param state A `_state` word.
    @return address The fee recipient; empty for none.
    """
    return convert((state >> 72) & _MASK160, address)


# ---------------------------------------------------------------- setters


@internal
def _set_keeper(account: address, status: bool):
    """
    @dev Grants or revokes the keeper role and logs `KeeperUpdated`; the constructor
         (for its first keeper) and `set_keeper` both come here.
    @param account The account; not the zero address.
    @param status True to grant, false to revoke.
    """
    assert account != empty(address), "vault: zero address"
    self.is_keeper[account] = status
    log KeeperUpdated(account=account, status=status)


@internal
def _set_guardian(account: address):
    """
    @dev Sets the guardian and logs `GuardianUpdated`; the constructor and
         `set_guardian` both come here.
    @param account The new guardian; empty for none.
    """
    log GuardianUpdated(old_guardian=self.guardian, new_guardian=account)
    self.guardian = account


@internal
def _set_fee_recipient(recipient: address):
    """
    @dev Sets the fee recipient (bits 72-231 of `_state`) and logs
         `FeeRecipientUpdated`; the constructor and `set_fee_recipient` (after
         accruing to the old one) both come here.
    @param recipient The new recipient; not the vault; empty for none (no fees accrue).
    """
    assert recipient != self, "vault: recipient is the vault"
    state: uint256 = self._state
    log FeeRecipientUpdated(old_recipient=self._recipient(state), new_recipient=recipient)
    self._state = (state & ~(_MASK160 << 72)) | (convert(recipient, uint256) << 72)


@internal
def _set_deposit_cap(cap: uint256):
    """
    @dev Sets the deposit cap (bits 96-191 of `_cash`) and logs `DepositCapUpdated`;
         the constructor (at the ceiling) and `set_deposit_cap` both come here.
    @param cap The cap, asset wei; at most `deposit_cap_ceiling`.
    """
    assert cap <= deposit_cap_ceiling, "vault: cap above ceiling"
    cash: uint256 = self._cash
    log DepositCapUpdated(old_cap=(cash >> 96) & _MASK96, new_cap=cap)
    self._cash = (cash & ~(_MASK96 << 96)) | (cap << 96)


@internal
def _set_fees(management_fee_bps_: uint256, performance_fee_bps_: uint256):
    """
    @dev Checks the fees against their caps, accrues at the old fees, then sets them
         (bits 40-71 of `_state`) and logs `FeesUpdated`. Only `set_fees` comes here:
         the constructor leaves both fees at zero.
    @param management_fee_bps_ Annual, bps of NAV; at most `max_management_fee_bps`.
    @param performance_fee_bps_ Bps of gains; at most `max_performance_fee_bps`.
    """
    assert management_fee_bps_ <= max_management_fee_bps, "vault: management fee above cap"
    assert performance_fee_bps_ <= max_performance_fee_bps, "vault: performance fee above cap"
    self._accrue_fees(self._fresh_price())
    self._state = (self._state & ~(_MASK16 << 40 | _MASK16 << 56)) | (management_fee_bps_ << 40) | (performance_fee_bps_ << 56)
    log FeesUpdated(management_fee_bps=management_fee_bps_, performance_fee_bps=performance_fee_bps_)


# ---------------------------------------------------------------- oracles


@internal
@view
def _read_feed(feed: address) -> (uint256, uint256, bool):
    """
    @dev Reads a Chainlink-compatible feed's `latestRoundData` with a raw static call, so
         a reverting or malformed feed cannot make a view revert.
    @param feed The feed's address.
    @return (uint256, uint256, bool) The answer (8 decimals), its `updatedAt`, and
            whether the call succeeded with a positive answer.
    """
    ok: bool = False
    response: Bytes[160] = b""
    ok, response = raw_call(
        feed, method_id("latestRoundData()"), max_outsize=160, is_static_call=True, revert_on_failure=False
    )
    if not ok or len(response) != 160:
        return (0, 0, False)
    answer: int256 = extract32(response, 32, output_type=int256)
    updated_at: uint256 = extract32(response, 96, output_type=uint256)
    if answer <= 0:
        return (0, updated_at, False)
    return (convert(answer, uint256), updated_at, True)


@internal
@view
def _pegged(asset_price: uint256) -> bool:
    """
    @dev Whether the asset's USD price is within `max_depeg_bps` of 1:
         |asset/USD - 1| <= max_depeg_bps.
    @param asset_price The asset's USD price, 8 decimals.
    @return bool True when on its peg.
    """
    gap: uint256 = max(asset_price, PRICE_UNIT) - min(asset_price, PRICE_UNIT)
    return gap * BPS <= PRICE_UNIT * max_depeg_bps


@internal
@view
def _feed_check() -> (uint256, String[40]):
    """
    @dev The base/USD answer and why entries and exits are closed now: the asset's own
         feed invalid, stale or off its peg, or the base feed invalid or stale.
    @return (uint256, String[40]) The base price (8 decimals; 0 when closed) and the
            revert reason ("" when open).
    """
    price: uint256 = 0
    updated_at: uint256 = 0
    ok: bool = False
    price, updated_at, ok = self._read_feed(asset_oracle.address)
    if not ok:
        return (0, "vault: asset oracle answer invalid")
    if block.timestamp > updated_at + max_asset_oracle_age:
        return (0, "vault: stale asset oracle")
    if not self._pegged(price):
        return (0, "vault: asset de-pegged")
    price, updated_at, ok = self._read_feed(oracle.address)
    if not ok:
        return (0, "vault: oracle answer invalid")
    if block.timestamp > updated_at + max_oracle_age:
        return (0, "vault: stale oracle")
    return (price, "")


@internal
def _fresh_price() -> uint256:
    """
    @dev The base/USD answer, fresh, with the asset's own feed fresh and on its peg;
         reverts with `_feed_check`'s reason otherwise. Remembers the answer as
         `last_valid_price`.
    @return uint256 The base price, 8 decimals.
    """
    price: uint256 = 0
    reason: String[40] = ""
    price, reason = self._feed_check()
    assert reason == empty(String[40]), reason
    cash: uint256 = self._cash
    if price != cash >> 192:
        assert price < 2**64, "vault: oracle answer too large"
        self._cash = (cash & (2**192 - 1)) | (price << 192)
    return price


@internal
@view
def _view_price() -> uint256:
    """
    @dev The base/USD answer for views, fresh or not; `last_valid_price` when the oracle
         cannot be read.
    @return uint256 The base price, 8 decimals.
    """
    price: uint256 = 0
    updated_at: uint256 = 0
    ok: bool = False
    price, updated_at, ok = self._read_feed(oracle.address)
    if ok:
        return price
    return self._cash >> 192


# ---------------------------------------------------------------- valuation


@internal
@view
def _nav(price: uint256) -> uint256:
    """
    @dev Gross NAV (before accrued fees), floored at zero: idle plus, while the hedge
         may hold something, its value.
    @param price The base price, 8 decimals.
    @return uint256 Gross NAV, asset wei.
    """
    nav: int256 = convert(self._idle(), int256)
    if self._state & _HEDGE_BIT != 0:
        nav += staticcall hedge.value(price)
    return convert(max(nav, 0), uint256)


@internal
@view
def _hedge_active() -> bool:
    """
    @dev Whether the hedge holds anything (asked only while the hedge bit is set).
    @return bool True while the hedge holds spot, a short or perp margin.
    """
    return self._state & _HEDGE_BIT != 0 and staticcall hedge.active()


@internal
@view
def _pending_fees(nav: uint256, supply: uint256) -> (uint256, uint256, uint256):
    """
    @dev The fees accrued since the last accrual, at gross NAV `nav` and `supply`
         shares. Nothing accrues without a recipient, so `totalAssets` always equals
         what the shares redeem for.
    @param nav Gross NAV, asset wei.
    @param supply Share supply.
    @return (uint256, uint256, uint256) Fee shares to mint, and the management and
            performance fees they are worth, asset wei.
    """
    state: uint256 = self._state
    if supply == 0 or nav == 0 or self._recipient(state) == empty(address):
        return (0, 0, 0)
    elapsed: uint256 = block.timestamp - (state & _MASK40)
    management: uint256 = nav * ((state >> 40) & _MASK16) * elapsed // (BPS * YEAR)
    management = min(management, nav)
    performance: uint256 = 0
    perf_bps: uint256 = (state >> 56) & _MASK16
    if perf_bps != 0:
        pps: uint256 = math._mul_div(nav - management + 1, PPS_UNIT, supply + _VIRTUAL_SHARES, False)
        hwm: uint256 = self.high_water_mark
        if pps > hwm:
            gain: uint256 = math._mul_div(pps - hwm, supply + _VIRTUAL_SHARES, PPS_UNIT, False)
            performance = gain * perf_bps // BPS
    fees: uint256 = management + performance
    if fees == 0 or fees >= nav:
        return (0, 0, 0)
    # Shares worth exactly `fees` after they exist: fees / (nav - fees) of the supply.
    shares: uint256 = math._mul_div(fees, supply + _VIRTUAL_SHARES, nav - fees + 1, False)
    return (shares, management, performance)


@internal
@view
def _view_to_shares(assets: uint256, round_up: bool) -> uint256:
    """
    @dev Shares `assets` are worth in the state an entry now would price against.
    @param assets Asset wei.
    @param round_up Round up (true) or down.
    @return uint256 Shares.
    """
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._view_state()
    return math._mul_div(assets, supply + _VIRTUAL_SHARES, nav + 1, round_up)


@internal
@view
def _view_to_assets(shares: uint256, round_up: bool) -> uint256:
    """
    @dev Assets `shares` are worth in the state an entry now would price against.
    @param shares Shares.
    @param round_up Round up (true) or down.
    @return uint256 Asset wei.
    """
    nav: uint256 = 0
    supply: uint256 = 0
    nav, supply = self._view_state()
    return math._mul_div(shares, nav + 1, supply + _VIRTUAL_SHARES, round_up)


@internal
@view
def _view_state() -> (uint256, uint256):
    """
    @dev The state an entry or exit right now would price against, so previews equal
         execution.
    @return (uint256, uint256) Gross NAV and the supply including pending fee shares.
    """
    nav: uint256 = self._nav(self._view_price())
    supply: uint256 = erc20.totalSupply
    fee_shares: uint256 = 0
    management: uint256 = 0
    performance: uint256 = 0
    fee_shares, management, performance = self._pending_fees(nav, supply)
    return (nav, supply + fee_shares)


@internal
def _accrue_fees(price: uint256) -> (uint256, uint256):
    """
    @dev Mints the accrued fee shares (logging `FeesAccrued`), moves the fee clock and
         the high-water mark. Runs on every entry and exit, even twice in a block: the
         high-water mark must follow the share price before the supply changes, or a
         rounding gain left unmarked would be charged later on the next depositor's
         capital.
    @param price The base price, 8 decimals.
    @return (uint256, uint256) Gross NAV and the supply after the fee mint.
    """
    nav: uint256 = self._nav(price)
    supply: uint256 = erc20.totalSupply
    fee_shares: uint256 = 0
    management: uint256 = 0
    performance: uint256 = 0
    fee_shares, management, performance = self._pending_fees(nav, supply)
    state: uint256 = self._state
    if state & _MASK40 != block.timestamp:
        self._state = (state & ~_MASK40) | block.timestamp
    if fee_shares != 0:
        recipient: address = self._recipient(state)
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
