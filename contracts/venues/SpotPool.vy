# pragma version 0.4.3
"""
@title SpotPool
@custom:contract-name SpotPool
@license MIT
@notice A constant-product (x * y = k) pool for one (base, asset) pair, e.g. WETH/USDC,
        with a swap fee in bps that stays in the pool for the liquidity providers
        (Uniswap V2 mechanics). LP shares are an ERC-20 (snekmate `erc20`).
        - Reserves are tracked internally, so tokens sent to the pool by mistake or as a
          "donation" never move its price.
        - `get_amount_out` is the exact amount `swap` pays for the same input in the
          same state, and `k = reserve_base * reserve_asset` never decreases on a swap.
        - Fee-on-transfer and rebasing tokens are not supported.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

from snekmate.auth import ownable
initializes: ownable

from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]

from snekmate.utils import math

# LP share token surface; minting is the pool's alone.
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
)


# ============================================================================
#                                  CONSTANTS
# ============================================================================

# @dev Basis points: 10_000 = 100 %.
BPS: constant(uint256) = 10_000

# @dev The highest fee a pool may be deployed with (1 %).
MAX_FEE_BPS: public(constant(uint256)) = 100

# @dev Shares locked forever at the first deposit (Uniswap V2), so the share price
#      can never be pushed to a value where rounding steals from later depositors.
MINIMUM_LIQUIDITY: public(constant(uint256)) = 1_000

# @dev Holds the locked MINIMUM_LIQUIDITY shares.
_DEAD: constant(address) = 0x000000000000000000000000000000000000dEaD


# ============================================================================
#                                 IMMUTABLES
# ============================================================================

# @dev The volatile token (e.g. WETH).
base: public(immutable(IERC20))

# @dev The quote token (e.g. USDC).
asset: public(immutable(IERC20))

# @dev Swap fee in basis points of the input amount.
fee_bps: public(immutable(uint256))

# @dev 10 ** decimals of the base and of the asset.
_BASE_UNIT: immutable(uint256)
_ASSET_UNIT: immutable(uint256)


# ============================================================================
#                                  STORAGE
# ============================================================================

# @dev The pool's books of each token, token wei (tokens sent directly are not counted).
reserve_base: public(uint256)
reserve_asset: public(uint256)


# ============================================================================
#                                   EVENTS
# ============================================================================

# @dev `sender` sold `amount_in` of `token_in` for `amount_out` of the other token,
#      paid to `receiver`; the reserves after.
event Swap:
    sender: indexed(address)
    receiver: indexed(address)
    token_in: indexed(address)
    amount_in: uint256
    amount_out: uint256
    reserve_base: uint256
    reserve_asset: uint256


# @dev `sender` added both tokens for `shares` minted to `receiver`.
event LiquidityAdded:
    sender: indexed(address)
    receiver: indexed(address)
    base_amount: uint256
    asset_amount: uint256
    shares: uint256


# @dev `sender` burned `shares` for both tokens, paid to `receiver`.
event LiquidityRemoved:
    sender: indexed(address)
    receiver: indexed(address)
    base_amount: uint256
    asset_amount: uint256
    shares: uint256


# ============================================================================
#                                CONSTRUCTOR
# ============================================================================

@deploy
def __init__(base_: IERC20, asset_: IERC20, fee_bps_: uint256):
    """
    @dev The deployer is the snekmate `ownable` owner, which the exported surface gives
         no power; LP shares are an 18-decimal ERC-20.
    @param base_ The volatile token.
    @param asset_ The quote token; must differ from `base_`.
    @param fee_bps_ Swap fee in bps, at most `MAX_FEE_BPS` (5 = the Uniswap 0.05 % tier).
    """
    assert base_.address != empty(address) and asset_.address != empty(address), "pool: zero token"
    assert base_.address != asset_.address, "pool: identical tokens"
    assert fee_bps_ <= MAX_FEE_BPS, "pool: fee above maximum"
    ownable.__init__()
    erc20.__init__("Basis SpotPool LP", "BSLP", 18, "Basis SpotPool LP", "1")
    base = base_
    asset = asset_
    fee_bps = fee_bps_
    _BASE_UNIT = 10 ** convert(staticcall IERC20Detailed(base_.address).decimals(), uint256)
    _ASSET_UNIT = 10 ** convert(staticcall IERC20Detailed(asset_.address).decimals(), uint256)


# ============================================================================
#                                   SWAPS
# ============================================================================

@external
@nonreentrant
def swap(token_in: address, amount_in: uint256, min_out: uint256, receiver: address) -> uint256:
    """
    @dev Sells exactly `amount_in` of `token_in` for the other token.
    @param token_in `base` or `asset`.
    @param amount_in Input amount in `token_in` wei, > 0.
    @param min_out The least output accepted; reverts below it (slippage bound).
    @param receiver Who gets the output (not the zero address).
    @return uint256 The output amount, equal to `get_amount_out(token_in, amount_in)`.
    """
    assert amount_in != 0, "pool: zero amount"
    assert receiver != empty(address), "pool: zero receiver"
    base_in: bool = self._is_base(token_in)
    amount_out: uint256 = self._amount_out(base_in, amount_in)
    assert amount_out != 0, "pool: zero output"
    assert amount_out >= min_out, "pool: output below minimum"

    token_out: IERC20 = base
    if base_in:
        token_out = asset
        self.reserve_base += amount_in
        self.reserve_asset -= amount_out
    else:
        self.reserve_asset += amount_in
        self.reserve_base -= amount_out

    self._pull(IERC20(token_in), amount_in)
    self._push(token_out, receiver, amount_out)
    log Swap(
        sender=msg.sender,
        receiver=receiver,
        token_in=token_in,
        amount_in=amount_in,
        amount_out=amount_out,
        reserve_base=self.reserve_base,
        reserve_asset=self.reserve_asset,
    )
    return amount_out


# ============================================================================
#                                 LIQUIDITY
# ============================================================================

@external
@nonreentrant
def add_liquidity(base_max: uint256, asset_max: uint256, min_shares: uint256, receiver: address) -> uint256:
    """
    @dev Adds liquidity at the current ratio, taking no more than `base_max` / `asset_max`
         (the first deposit sets the ratio and takes both in full). Amounts taken are
         rounded up, shares minted rounded down: the pool never gives value away.
    @param base_max The most base the caller gives.
    @param asset_max The most asset the caller gives.
    @param min_shares The least LP shares accepted.
    @param receiver Who gets the LP shares.
    @return uint256 LP shares minted.
    """
    assert base_max != 0 and asset_max != 0, "pool: zero amount"
    assert receiver != empty(address), "pool: zero receiver"
    supply: uint256 = erc20.totalSupply
    shares: uint256 = 0
    base_in: uint256 = base_max
    asset_in: uint256 = asset_max
    if supply == 0:
        shares = isqrt(base_max * asset_max)
        assert shares > MINIMUM_LIQUIDITY, "pool: initial liquidity too small"
        erc20._mint(_DEAD, MINIMUM_LIQUIDITY)
        shares -= MINIMUM_LIQUIDITY
    else:
        rb: uint256 = self.reserve_base
        ra: uint256 = self.reserve_asset
        shares = min(base_max * supply // rb, asset_max * supply // ra)
        assert shares != 0, "pool: zero shares"
        # Round the amounts taken up; shares <= max * supply / reserve keeps them <= max.
        base_in = math._mul_div(shares, rb, supply, True)
        asset_in = math._mul_div(shares, ra, supply, True)
    assert shares >= min_shares, "pool: shares below minimum"

    self.reserve_base += base_in
    self.reserve_asset += asset_in
    erc20._mint(receiver, shares)
    self._pull(base, base_in)
    self._pull(asset, asset_in)
    log LiquidityAdded(
        sender=msg.sender, receiver=receiver, base_amount=base_in, asset_amount=asset_in, shares=shares
    )
    return shares


@external
@nonreentrant
def remove_liquidity(shares: uint256, min_base: uint256, min_asset: uint256, receiver: address) -> (uint256, uint256):
    """
    @dev Burns `shares` of the caller's LP tokens for a pro-rata slice of both reserves
         (rounded down).
    @param shares LP shares to burn, > 0.
    @param min_base The least base accepted.
    @param min_asset The least asset accepted.
    @param receiver Who gets the tokens.
    @return (uint256, uint256) Base and asset paid out.
    """
    assert shares != 0, "pool: zero shares"
    assert receiver != empty(address), "pool: zero receiver"
    supply: uint256 = erc20.totalSupply
    base_out: uint256 = shares * self.reserve_base // supply
    asset_out: uint256 = shares * self.reserve_asset // supply
    assert base_out >= min_base and asset_out >= min_asset, "pool: output below minimum"
    assert base_out != 0 and asset_out != 0, "pool: zero output"

    erc20._burn(msg.sender, shares)
    self.reserve_base -= base_out
    self.reserve_asset -= asset_out
    self._push(base, receiver, base_out)
    self._push(asset, receiver, asset_out)
    log LiquidityRemoved(
        sender=msg.sender, receiver=receiver, base_amount=base_out, asset_amount=asset_out, shares=shares
    )
    return (base_out, asset_out)


# ============================================================================
#                                    VIEW
# ============================================================================

@external
@view
def get_amount_out(token_in: address, amount_in: uint256) -> uint256:
    """
    @dev The exact output `swap(token_in, amount_in, ...)` pays in the current state.
         Returns 0 for an unknown token or an empty pool instead of reverting.
    @param token_in `base` or `asset`.
    @param amount_in Input amount in `token_in` wei.
    @return uint256 Output amount in the other token's wei.
    """
    if token_in != base.address and token_in != asset.address:
        return 0
    if self.reserve_base == 0:
        return 0
    return self._amount_out(token_in == base.address, amount_in)


@external
@view
def get_amount_in(token_out: address, amount_out: uint256) -> uint256:
    """
    @dev The smallest input of the other token for which `get_amount_out` is at least
         `amount_out`. Returns max_value(uint256) when the pool cannot pay `amount_out`.
    @param token_out `base` or `asset`: the token wanted.
    @param amount_out Output wanted, in `token_out` wei.
    @return uint256 Input amount in the other token's wei, rounded up.
    """
    if token_out != base.address and token_out != asset.address:
        return max_value(uint256)
    r_out: uint256 = self.reserve_base
    r_in: uint256 = self.reserve_asset
    if token_out == asset.address:
        r_out = self.reserve_asset
        r_in = self.reserve_base
    if amount_out == 0:
        return 0
    if amount_out >= r_out:
        return max_value(uint256)
    # Inverse of `_amount_out`, rounded up (Uniswap V2 `getAmountIn`).
    return math._mul_div(r_in * BPS, amount_out, (r_out - amount_out) * (BPS - fee_bps), True)


@external
@view
def price_e8() -> uint256:
    """
    @dev The pool's marginal price in asset per whole base unit, 8 decimals
         (USD per base when the asset is a USD stablecoin), rounded down. 0 when empty.
    @return uint256 The price, 8 decimals.
    """
    if self.reserve_base == 0:
        return 0
    return math._mul_div(self.reserve_asset * _BASE_UNIT, 10**8, self.reserve_base * _ASSET_UNIT, False)


@external
@view
def get_reserves() -> (uint256, uint256):
    """
    @dev (reserve_base, reserve_asset) in one call.
    @return (uint256, uint256) Base and asset reserves, token wei.
    """
    return (self.reserve_base, self.reserve_asset)


# ============================================================================
#                                  INTERNAL
# ============================================================================

@internal
@view
def _is_base(token: address) -> bool:
    """
    @dev Whether `token` is the base; reverts unless it is the base or the asset.
    @param token The token.
    @return bool True for the base, false for the asset.
    """
    if token == base.address:
        return True
    assert token == asset.address, "pool: unknown token"
    return False


@internal
@view
def _amount_out(base_in: bool, amount_in: uint256) -> uint256:
    """
    @dev Uniswap V2 `getAmountOut`: the fee comes off the input; flooring the output is
         what keeps (r_in + in) * (r_out - out) >= r_in * r_out.
    @param base_in Whether the input is the base.
    @param amount_in Input amount, token wei.
    @return uint256 Output amount, token wei.
    """
    r_in: uint256 = self.reserve_asset
    r_out: uint256 = self.reserve_base
    if base_in:
        r_in = self.reserve_base
        r_out = self.reserve_asset
    # Uniswap V2 `getAmountOut`: the fee comes off the input; flooring the output is
    # what keeps (r_in + in) * (r_out - out) >= r_in * r_out.
    in_after_fee: uint256 = amount_in * (BPS - fee_bps)
    return in_after_fee * r_out // (r_in * BPS + in_after_fee)


@internal
def _pull(token: IERC20, amount: uint256):
    """
    @dev Pulls `amount` of `token` from the caller.
    @param token The token.
    @param amount Token wei.
    """
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), "pool: transferFrom failed"


@internal
def _push(token: IERC20, to: address, amount: uint256):
    """
    @dev Sends `amount` of `token` to `to`.
    @param token The token.
    @param to The receiver.
    @param amount Token wei.
    """
    assert extcall token.transfer(to, amount, default_return_value=True), "pool: transfer failed"
