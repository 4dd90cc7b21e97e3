# pragma version 0.4.3
"""
@title UniswapV3Spot
@custom:contract-name UniswapV3Spot
@license MIT
@notice The hedge's spot interface (`ISpotPool`) on one official Uniswap v3 pool, so a
        BasisHedge trades on v3 without a change to the vault or the hedge.
        - `swap` calls the pool directly (`IUniswapV3Pool.swap`, exact input); the pool's
          `uniswapV3SwapCallback` is accepted from the configured pool only, and pulls from
          the swap's caller exactly `amount_in`, never more (the caller approves exactly
          the trade).
        - Quotes are exact: `get_amount_out` / `get_amount_in` run the pool's own swap
          loop (v3-core `SwapMath.computeSwapStep` over `TickBitmap` words, crossing
          initialized ticks with their `liquidityNet`) in integer arithmetic that rounds
          as the pool does, so a quote equals the fill in the same block. On full-range
          liquidity this is x * y = k with the fee taken on the input.
        - A trade that would take the price out of the pool's liquidity (the edge of a
          concentrated range) reverts with "pool: trade leaves the liquidity range",
          before any token moves; `swap` also caps the pool's price one unit past the end
          price it quoted, so the pool cannot run further than the quote.
        - `get_reserves` are the active liquidity's virtual reserves (L / sqrt(P),
          L * sqrt(P)), `fee_bps` the tier in bps: what an x * y model of the pool reads.
        - No funds are held between calls: the adapter has no storage and no owner.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

from ..interfaces import ISpotPool

implements: ISpotPool

from snekmate.utils import math


# @dev The parts of v3-core's `IUniswapV3Pool` the adapter uses.
interface IUniswapV3Pool:
    def token0() -> address: view
    def token1() -> address: view
    def fee() -> uint24: view
    def tickSpacing() -> int24: view
    def liquidity() -> uint128: view
    def slot0() -> (uint160, int24, uint16, uint16, uint16, uint8, bool): view
    def tickBitmap(wordPosition: int16) -> uint256: view
    def ticks(tick: int24) -> (uint128, int128, uint256, uint256, int56, uint160, uint32, bool): view
    def swap(
        recipient: address, zeroForOne: bool, amountSpecified: int256, sqrtPriceLimitX96: uint160, data: Bytes[96]
    ) -> (int256, int256): nonpayable


# @dev v3-core's `IUniswapV3Factory.getPool`.
interface IUniswapV3Factory:
    def getPool(tokenA: address, tokenB: address, fee: uint24) -> address: view


# ============================================================================
#                                  CONSTANTS
# ============================================================================

# @dev Basis points: 10_000 = 100 %.
BPS: constant(uint256) = 10_000

# @dev v3 fees are in pips: 1_000_000 = 100 %.
PIPS: constant(uint256) = 1_000_000

# @dev 2**96, the fixed point of v3's sqrt prices (`FixedPoint96.Q96`).
Q96: constant(uint256) = 2**96

# @dev v3-core `TickMath` bounds.
MIN_TICK: constant(int256) = -887272
MAX_TICK: constant(int256) = 887272

# @dev The most swap steps (bitmap words or initialized ticks) a quote walks; a trade
#      needing more reverts (a vault-sized trade on a sane pool needs one or two).
MAX_STEPS: constant(uint256) = 16


# ============================================================================
#                                 IMMUTABLES
# ============================================================================

# @dev The v3 pool all trades go to.
pool: public(immutable(IUniswapV3Pool))

# @dev The v3 factory the pool was checked against at deploy.
factory: public(immutable(address))

# @dev The volatile token (e.g. WETH).
base: public(immutable(IERC20))

# @dev The quote token (e.g. USDC).
asset: public(immutable(IERC20))

# @dev The pool's fee tier in pips (500 = 0.05 %).
fee_pips: public(immutable(uint256))

# @dev The same fee in bps (the unit of the reference pool's `fee_bps`).
fee_bps: public(immutable(uint256))

# @dev Whether the base is the pool's token0 (the lower address).
base_is_token0: public(immutable(bool))

# @dev The pool's tick spacing.
_SPACING: immutable(int256)

# @dev 10 ** decimals of the base and of the asset.
_BASE_UNIT: immutable(uint256)
_ASSET_UNIT: immutable(uint256)


# ============================================================================
#                                   EVENTS
# ============================================================================

# @dev `sender` sold `amount_in` of `token_in` for `amount_out` of the other token,
#      paid to `receiver`; the pool's virtual reserves after (the reference pool's
#      `Swap`, so the same tools read both).
event Swap:
    sender: indexed(address)
    receiver: indexed(address)
    token_in: indexed(address)
    amount_in: uint256
    amount_out: uint256
    reserve_base: uint256
    reserve_asset: uint256


# ============================================================================
#                                CONSTRUCTOR
# ============================================================================

@deploy
def __init__(factory_: address, pool_: IUniswapV3Pool, base_: IERC20, asset_: IERC20, fee_: uint256):
    """
    @dev Checks the pool is the factory's pool for (`base_`, `asset_`, `fee_`) and is
         initialized, so a wrong address, token pair or fee tier fails at deploy.
    @param factory_ The v3 factory (`UniswapV3Factory`).
    @param pool_ The factory's pool for the pair at `fee_`.
    @param base_ The volatile token.
    @param asset_ The quote token.
    @param fee_ The fee tier in pips (100, 500, 3000, 10000); a whole number of bps.
    """
    assert base_.address != empty(address) and asset_.address != empty(address), "pool: zero token"
    assert base_.address != asset_.address, "pool: identical tokens"
    assert fee_ % 100 == 0 and fee_ != 0 and fee_ < PIPS, "pool: fee tier not whole bps"
    assert staticcall IUniswapV3Factory(factory_).getPool(base_.address, asset_.address, convert(fee_, uint24)) == (
        pool_.address
    ), "pool: not the factory's pool for these tokens and fee"
    token0: address = staticcall pool_.token0()
    token1: address = staticcall pool_.token1()
    assert (token0 == base_.address and token1 == asset_.address) or (
        token0 == asset_.address and token1 == base_.address
    ), "pool: pool tokens do not match"
    assert convert(staticcall pool_.fee(), uint256) == fee_, "pool: fee tier does not match"
    sqrt_price: uint160 = (staticcall pool_.slot0())[0]
    assert sqrt_price != 0, "pool: not initialized"
    pool = pool_
    factory = factory_
    base = base_
    asset = asset_
    fee_pips = fee_
    fee_bps = fee_ // 100
    base_is_token0 = token0 == base_.address
    _SPACING = convert(staticcall pool_.tickSpacing(), int256)
    _BASE_UNIT = 10 ** convert(staticcall IERC20Detailed(base_.address).decimals(), uint256)
    _ASSET_UNIT = 10 ** convert(staticcall IERC20Detailed(asset_.address).decimals(), uint256)


# ============================================================================
#                                   SWAPS
# ============================================================================

@external
@nonreentrant
def swap(token_in: address, amount_in: uint256, min_out: uint256, receiver: address) -> uint256:
    """
    @dev Sells exactly `amount_in` of `token_in` on the pool; the pool's callback pulls
         exactly `amount_in` from the caller (approve this contract for it). The pool's
         price is capped one unit past the quote's end price, so the fill is the quote.
    @param token_in `base` or `asset`.
    @param amount_in Input amount in `token_in` wei, > 0.
    @param min_out The least output accepted; reverts below it (slippage bound).
    @param receiver Who gets the output (not the zero address).
    @return uint256 The output amount, equal to `get_amount_out(token_in, amount_in)`.
    """
    assert amount_in != 0, "pool: zero amount"
    assert receiver != empty(address), "pool: zero receiver"
    assert amount_in <= convert(max_value(int256), uint256), "pool: amount too large"
    zero_for_one: bool = self._is_base(token_in) == base_is_token0
    quoted: uint256 = 0
    end_price: uint256 = 0
    quoted, end_price = self._quote_exact_in(zero_for_one, amount_in)
    assert quoted != 0, "pool: zero output"
    assert quoted >= min_out, "pool: output below minimum"

    # The pool's price limit: one unit past the quoted end price, so the pool's last step
    # is the quote's (a limit at the end price itself would end that step "reached" and
    # charge the fee on a rounded-down input: a partial fill) and it cannot go further.
    limit: uint256 = end_price + 1
    if zero_for_one:
        limit = end_price - 1
    delta0: int256 = 0
    delta1: int256 = 0
    delta0, delta1 = extcall pool.swap(
        receiver,
        zero_for_one,
        convert(amount_in, int256),
        convert(limit, uint160),
        abi_encode(msg.sender, token_in, amount_in),
    )
    # The output is the negative delta of the token the pool paid out.
    paid: int256 = delta1 if zero_for_one else delta0
    amount_out: uint256 = convert(-paid, uint256)
    assert amount_out >= min_out, "pool: output below minimum"

    reserve_base: uint256 = 0
    reserve_asset: uint256 = 0
    reserve_base, reserve_asset = self._reserves()
    log Swap(
        sender=msg.sender,
        receiver=receiver,
        token_in=token_in,
        amount_in=amount_in,
        amount_out=amount_out,
        reserve_base=reserve_base,
        reserve_asset=reserve_asset,
    )
    return amount_out


@external
def uniswapV3SwapCallback(amount0Delta: int256, amount1Delta: int256, data: Bytes[96]):
    """
    @dev The pool's request for payment during `swap`: accepted from the configured pool
         only, and only for exactly the input the swap was asked to sell (a partial fill
         reverts the whole swap); pays it from the swap's caller.
    @param amount0Delta What the pool is owed (+) or paid (-) of token0.
    @param amount1Delta The same for token1.
    @param data (payer, token_in, amount_in) as `swap` encoded them.
    """
    assert msg.sender == pool.address, "pool: callback from a non-pool address"
    payer: address = empty(address)
    token_in: address = empty(address)
    amount_in: uint256 = 0
    payer, token_in, amount_in = abi_decode(data, (address, address, uint256))
    owed: int256 = amount1Delta
    if (token_in == base.address) == base_is_token0:
        owed = amount0Delta
    assert owed > 0 and convert(owed, uint256) == amount_in, "pool: partial fill"
    assert extcall IERC20(token_in).transferFrom(payer, pool.address, amount_in, default_return_value=True), (
        "pool: transferFrom failed"
    )


# ============================================================================
#                                    VIEW
# ============================================================================

@external
@view
def get_amount_out(token_in: address, amount_in: uint256) -> uint256:
    """
    @dev The exact output `swap(token_in, amount_in, ...)` pays in the current state
         (the pool's own arithmetic). Returns 0 for an unknown token or a zero amount;
         reverts when the trade would leave the pool's liquidity.
    @param token_in `base` or `asset`.
    @param amount_in Input amount in `token_in` wei.
    @return uint256 Output amount in the other token's wei.
    """
    if token_in != base.address and token_in != asset.address:
        return 0
    if amount_in == 0:
        return 0
    out: uint256 = 0
    end_price: uint256 = 0
    out, end_price = self._quote_exact_in((token_in == base.address) == base_is_token0, amount_in)
    return out


@external
@view
def get_amount_in(token_out: address, amount_out: uint256) -> uint256:
    """
    @dev The input of the other token for which `get_amount_out` is at least
         `amount_out`: what the pool charges for an exact output of `amount_out` (its
         step rounding, fee included). Returns max_value(uint256) for an unknown token;
         reverts when the trade would leave the pool's liquidity.
    @param token_out `base` or `asset`: the token wanted.
    @param amount_out Output wanted, in `token_out` wei.
    @return uint256 Input amount in the other token's wei.
    """
    if token_out != base.address and token_out != asset.address:
        return max_value(uint256)
    if amount_out == 0:
        return 0
    # Selling the other token: token0 in when the wanted token is token1.
    zero_for_one: bool = (token_out == base.address) != base_is_token0
    return self._quote_exact_out(zero_for_one, amount_out)


@external
@view
def get_reserves() -> (uint256, uint256):
    """
    @dev The active liquidity's virtual reserves (base, asset): L / sqrt(P) of token0 and
         L * sqrt(P) of token1, rounded down. Within the active range the pool trades as
         x * y = k on them with the fee on the input; (0, 0) without active liquidity.
    @return (uint256, uint256) Base and asset, token wei.
    """
    return self._reserves()


@external
@view
def price_e8() -> uint256:
    """
    @dev The pool's marginal price in asset per whole base unit, 8 decimals, rounded down.
    @return uint256 The price, 8 decimals.
    """
    sqrt_price: uint256 = convert((staticcall pool.slot0())[0], uint256)
    if base_is_token0:
        # token1 per token0 = sqrtP**2 / 2**192, in two full-precision steps.
        squared: uint256 = math._mul_div(sqrt_price, sqrt_price, Q96, False)
        return math._mul_div(squared, _BASE_UNIT * 10**8, Q96 * _ASSET_UNIT, False)
    inverse: uint256 = math._mul_div(Q96 * Q96, _BASE_UNIT * 10**8, sqrt_price, False)
    return math._mul_div(inverse, 1, sqrt_price * _ASSET_UNIT, False)


@external
@view
def sqrt_price_x96() -> uint256:
    """
    @dev The pool's sqrt price (`slot0().sqrtPriceX96`).
    @return uint256 sqrt(token1 wei per token0 wei) * 2**96.
    """
    return convert((staticcall pool.slot0())[0], uint256)


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
def _reserves() -> (uint256, uint256):
    """
    @dev The virtual reserves (base, asset) of the active liquidity.
    @return (uint256, uint256) Base and asset, token wei.
    """
    liquidity: uint256 = convert(staticcall pool.liquidity(), uint256)
    sqrt_price: uint256 = convert((staticcall pool.slot0())[0], uint256)
    if liquidity == 0:
        return (0, 0)
    reserve0: uint256 = math._mul_div(liquidity, Q96, sqrt_price, False)
    reserve1: uint256 = math._mul_div(liquidity, sqrt_price, Q96, False)
    if base_is_token0:
        return (reserve0, reserve1)
    return (reserve1, reserve0)


@internal
@view
def _quote_exact_in(zero_for_one: bool, amount_in: uint256) -> (uint256, uint256):
    """
    @dev What the pool pays for exactly `amount_in`, and its sqrt price after.
    @param zero_for_one Whether token0 is sold.
    @param amount_in Input, token wei.
    @return (uint256, uint256) The output, token wei, and the end sqrt price (X96).
    """
    spent: uint256 = 0
    out: uint256 = 0
    end_price: uint256 = 0
    spent, out, end_price = self._simulate(zero_for_one, amount_in, True)
    return (out, end_price)


@internal
@view
def _quote_exact_out(zero_for_one: bool, amount_out: uint256) -> uint256:
    """
    @dev What the pool charges for exactly `amount_out`, its fee included.
    @param zero_for_one Whether token0 is sold.
    @param amount_out Output, token wei.
    @return uint256 The input, token wei.
    """
    spent: uint256 = 0
    out: uint256 = 0
    end_price: uint256 = 0
    spent, out, end_price = self._simulate(zero_for_one, amount_out, False)
    return spent


@internal
@view
def _simulate(zero_for_one: bool, amount: uint256, exact_in: bool) -> (uint256, uint256, uint256):
    """
    @dev v3-core `UniswapV3Pool.swap`'s loop without its writes: steps to the next
         initialized tick or bitmap word edge (`nextInitializedTickWithinOneWord`),
         `computeSwapStep` on each, crossing initialized ticks with their
         `liquidityNet`. The price limit is the pool's extreme, never reached: a step
         with no liquidity left reverts instead.
    @param zero_for_one Whether token0 is sold (the price falls).
    @param amount The exact input (`exact_in`) or output, token wei.
    @param exact_in Whether `amount` is the input.
    @return (uint256, uint256, uint256) Input taken (fee included), output paid, token
            wei, and the sqrt price after (X96).
    """
    slot0: (uint160, int24, uint16, uint16, uint16, uint8, bool) = staticcall pool.slot0()
    sqrt_price: uint256 = convert(slot0[0], uint256)
    tick: int256 = convert(slot0[1], int256)
    liquidity: uint256 = convert(staticcall pool.liquidity(), uint256)
    assert liquidity != 0, "pool: no liquidity at the current price"
    remaining: uint256 = amount
    spent: uint256 = 0
    out: uint256 = 0
    for i: uint256 in range(MAX_STEPS):
        tick_next: int256 = 0
        initialized: bool = False
        tick_next, initialized = self._next_initialized_tick(tick, zero_for_one)
        tick_next = max(MIN_TICK, min(MAX_TICK, tick_next))
        target: uint256 = self._sqrt_ratio_at_tick(tick_next)
        step_next: uint256 = 0
        step_in: uint256 = 0
        step_out: uint256 = 0
        step_fee: uint256 = 0
        step_next, step_in, step_out, step_fee = self._swap_step(sqrt_price, target, liquidity, remaining, exact_in)
        spent += step_in + step_fee
        out += step_out
        if exact_in:
            remaining -= step_in + step_fee
        else:
            remaining -= step_out
        sqrt_price = step_next
        if remaining == 0:
            return (spent, out, sqrt_price)
        # The step reached its target with input left: cross it, as the pool does.
        if initialized:
            net: int256 = convert((staticcall pool.ticks(convert(tick_next, int24)))[1], int256)
            if zero_for_one:
                net = -net
            after: int256 = convert(liquidity, int256) + net
            assert after > 0, "pool: trade leaves the liquidity range"
            liquidity = convert(after, uint256)
        tick = tick_next - 1 if zero_for_one else tick_next
        assert tick_next != MIN_TICK and tick_next != MAX_TICK, "pool: trade leaves the liquidity range"
    raise "pool: trade crosses too many ticks"


@internal
@view
def _next_initialized_tick(tick: int256, lte: bool) -> (int256, bool):
    """
    @dev v3-core `TickBitmap.nextInitializedTickWithinOneWord` on the pool's bitmap.
    @param tick The current tick.
    @param lte Search at or below `tick` (the price falls), else above.
    @return (int256, bool) The next initialized tick, or the word's edge, and whether
            it is initialized.
    """
    compressed: int256 = self._floor_div(tick, _SPACING)
    if lte:
        word: int256 = self._floor_div(compressed, 256)
        bit: uint256 = convert(compressed - word * 256, uint256)
        # All the bits at or below `bit`.
        mask: uint256 = (1 << bit) - 1 + (1 << bit)
        masked: uint256 = (staticcall pool.tickBitmap(convert(word, int16))) & mask
        if masked == 0:
            return ((compressed - convert(bit, int256)) * _SPACING, False)
        return ((compressed - convert(bit - math._log2(masked, False), int256)) * _SPACING, True)
    start: int256 = compressed + 1
    word_up: int256 = self._floor_div(start, 256)
    bit_up: uint256 = convert(start - word_up * 256, uint256)
    # All the bits at or above `bit_up`.
    mask_up: uint256 = ~((1 << bit_up) - 1)
    masked_up: uint256 = (staticcall pool.tickBitmap(convert(word_up, int16))) & mask_up
    if masked_up == 0:
        return ((start + convert(255 - bit_up, int256)) * _SPACING, False)
    # The lowest set bit, isolated by x & -x (two's complement).
    lowest: uint256 = math._log2(masked_up & unsafe_sub(0, masked_up), False)
    return ((start + convert(lowest - bit_up, int256)) * _SPACING, True)


@internal
@pure
def _floor_div(x: int256, y: int256) -> int256:
    """
    @dev x / y rounded towards negative infinity (y > 0), as v3 compresses ticks.
    @param x The dividend.
    @param y The divisor, > 0.
    @return int256 The quotient.
    """
    q: int256 = x // y
    if x < 0 and x % y != 0:
        q -= 1
    return q


@internal
@pure
def _sqrt_ratio_at_tick(tick: int256) -> uint256:
    """
    @dev v3-core `TickMath.getSqrtRatioAtTick`: sqrt(1.0001 ** tick) * 2**96, rounded up.
         Every product is of two values below 2**128, so none overflows. The constants
         are TickMath's, in decimal (a Vyper hex literal is a bytesN).
    @param tick A tick in [MIN_TICK, MAX_TICK].
    @return uint256 The sqrt price, X96.
    """
    a: uint256 = convert(abs(tick), uint256)
    ratio: uint256 = 340282366920938463463374607431768211456
    if a & 1 != 0:
        ratio = 340265354078544963557816517032075149313
    if a & 2 != 0:
        ratio = (ratio * 340248342086729790484326174814286782778) >> 128
    if a & 4 != 0:
        ratio = (ratio * 340214320654664324051920982716015181260) >> 128
    if a & 8 != 0:
        ratio = (ratio * 340146287995602323631171512101879684304) >> 128
    if a & 16 != 0:
        ratio = (ratio * 340010263488231146823593991679159461444) >> 128
    if a & 32 != 0:
        ratio = (ratio * 339738377640345403697157401104375502016) >> 128
    if a & 64 != 0:
        ratio = (ratio * 339195258003219555707034227454543997025) >> 128
    if a & 128 != 0:
        ratio = (ratio * 338111622100601834656805679988414885971) >> 128
    if a & 256 != 0:
        ratio = (ratio * 335954724994790223023589805789778977700) >> 128
    if a & 512 != 0:
        ratio = (ratio * 331682121138379247127172139078559817300) >> 128
    if a & 1024 != 0:
        ratio = (ratio * 323299236684853023288211250268160618739) >> 128
    if a & 2048 != 0:
        ratio = (ratio * 307163716377032989948697243942600083929) >> 128
    if a & 4096 != 0:
        ratio = (ratio * 277268403626896220162999269216087595045) >> 128
    if a & 8192 != 0:
        ratio = (ratio * 225923453940442621947126027127485391333) >> 128
    if a & 16384 != 0:
        ratio = (ratio * 149997214084966997727330242082538205943) >> 128
    if a & 32768 != 0:
        ratio = (ratio * 66119101136024775622716233608466517926) >> 128
    if a & 65536 != 0:
        ratio = (ratio * 12847376061809297530290974190478138313) >> 128
    if a & 131072 != 0:
        ratio = (ratio * 485053260817066172746253684029974020) >> 128
    if a & 262144 != 0:
        ratio = (ratio * 691415978906521570653435304214168) >> 128
    if a & 524288 != 0:
        ratio = (ratio * 1404880482679654955896180642) >> 128
    if tick > 0:
        ratio = max_value(uint256) // ratio
    # Q128.128 to Q96, rounded up (so the tick of the result is always `tick`).
    rounded: uint256 = ratio >> 32
    if ratio % (1 << 32) != 0:
        rounded += 1
    return rounded


@internal
@view
def _swap_step(
    current: uint256, target: uint256, liquidity: uint256, remaining: uint256, exact_in: bool
) -> (uint256, uint256, uint256, uint256):
    """
    @dev v3-core `SwapMath.computeSwapStep`, in its rounding.
    @param current The sqrt price now, X96.
    @param target The sqrt price the step may reach at most, X96.
    @param liquidity The active liquidity, > 0.
    @param remaining The input (exact in) or output left, token wei.
    @param exact_in Whether `remaining` is input.
    @return (uint256, uint256, uint256, uint256) The sqrt price after, the input, the
            output and the fee, token wei.
    """
    zero_for_one: bool = current >= target
    next_price: uint256 = 0
    amount_in: uint256 = 0
    amount_out: uint256 = 0
    if exact_in:
        less_fee: uint256 = math._mul_div(remaining, PIPS - fee_pips, PIPS, False)
        if zero_for_one:
            amount_in = self._amount0_delta(target, current, liquidity, True)
        else:
            amount_in = self._amount1_delta(current, target, liquidity, True)
        if less_fee >= amount_in:
            next_price = target
        elif zero_for_one:
            next_price = self._next_from_amount0(current, liquidity, less_fee, True)
        else:
            next_price = self._next_from_amount1(current, liquidity, less_fee, True)
    else:
        if zero_for_one:
            amount_out = self._amount1_delta(target, current, liquidity, False)
        else:
            amount_out = self._amount0_delta(current, target, liquidity, False)
        if remaining >= amount_out:
            next_price = target
        elif zero_for_one:
            next_price = self._next_from_amount1(current, liquidity, remaining, False)
        else:
            next_price = self._next_from_amount0(current, liquidity, remaining, False)

    reached: bool = next_price == target
    if zero_for_one:
        if not (reached and exact_in):
            amount_in = self._amount0_delta(next_price, current, liquidity, True)
        if not (reached and not exact_in):
            amount_out = self._amount1_delta(next_price, current, liquidity, False)
    else:
        if not (reached and exact_in):
            amount_in = self._amount1_delta(current, next_price, liquidity, True)
        if not (reached and not exact_in):
            amount_out = self._amount0_delta(current, next_price, liquidity, False)
    if not exact_in and amount_out > remaining:
        amount_out = remaining
    fee: uint256 = 0
    if exact_in and not reached:
        # The target was not reached: the rest of the input is the fee.
        fee = remaining - amount_in
    else:
        fee = math._mul_div(amount_in, fee_pips, PIPS - fee_pips, True)
    return (next_price, amount_in, amount_out, fee)


@internal
@pure
def _amount0_delta(a: uint256, b: uint256, liquidity: uint256, round_up: bool) -> uint256:
    """
    @dev v3-core `SqrtPriceMath.getAmount0Delta`: L * (1/sqrt(a) - 1/sqrt(b)) of token0.
    @param a One sqrt price, X96, > 0.
    @param b The other, X96.
    @param liquidity The liquidity.
    @param round_up Round up (what the pool is owed) or down (what it pays).
    @return uint256 Token0 wei.
    """
    lo: uint256 = min(a, b)
    hi: uint256 = max(a, b)
    numerator: uint256 = liquidity << 96
    if round_up:
        return self._div_up(math._mul_div(numerator, hi - lo, hi, True), lo)
    return math._mul_div(numerator, hi - lo, hi, False) // lo


@internal
@pure
def _amount1_delta(a: uint256, b: uint256, liquidity: uint256, round_up: bool) -> uint256:
    """
    @dev v3-core `SqrtPriceMath.getAmount1Delta`: L * (sqrt(b) - sqrt(a)) of token1.
    @param a One sqrt price, X96.
    @param b The other, X96.
    @param liquidity The liquidity.
    @param round_up Round up (what the pool is owed) or down (what it pays).
    @return uint256 Token1 wei.
    """
    return math._mul_div(liquidity, max(a, b) - min(a, b), Q96, round_up)


@internal
@pure
def _next_from_amount0(price: uint256, liquidity: uint256, amount: uint256, add: bool) -> uint256:
    """
    @dev v3-core `SqrtPriceMath.getNextSqrtPriceFromAmount0RoundingUp`.
    @param price The sqrt price, X96.
    @param liquidity The liquidity.
    @param amount Token0 wei added (input) or removed (output).
    @param add Whether `amount` is added.
    @return uint256 The sqrt price after, X96, rounded up.
    """
    if amount == 0:
        return price
    numerator: uint256 = liquidity << 96
    fits: bool = amount <= max_value(uint256) // price
    if add:
        if fits:
            product: uint256 = amount * price
            if product <= max_value(uint256) - numerator:
                return math._mul_div(numerator, price, numerator + product, True)
        return self._div_up(numerator, numerator // price + amount)
    assert fits and numerator > amount * price, "pool: output beyond the pool's reserves"
    return math._mul_div(numerator, price, numerator - amount * price, True)


@internal
@pure
def _next_from_amount1(price: uint256, liquidity: uint256, amount: uint256, add: bool) -> uint256:
    """
    @dev v3-core `SqrtPriceMath.getNextSqrtPriceFromAmount1RoundingDown`.
    @param price The sqrt price, X96.
    @param liquidity The liquidity.
    @param amount Token1 wei added (input) or removed (output).
    @param add Whether `amount` is added.
    @return uint256 The sqrt price after, X96, rounded down.
    """
    if add:
        if amount <= convert(max_value(uint160), uint256):
            return price + (amount << 96) // liquidity
        return price + math._mul_div(amount, Q96, liquidity, False)
    quotient: uint256 = 0
    if amount <= convert(max_value(uint160), uint256):
        quotient = self._div_up(amount << 96, liquidity)
    else:
        quotient = math._mul_div(amount, Q96, liquidity, True)
    assert price > quotient, "pool: output beyond the pool's reserves"
    return price - quotient


@internal
@pure
def _div_up(x: uint256, y: uint256) -> uint256:
    """
    @dev x / y rounded up (v3-core `UnsafeMath.divRoundingUp`).
    @param x The dividend.
    @param y The divisor, > 0.
    @return uint256 The quotient.
    """
    q: uint256 = x // y
    if x % y != 0:
        q += 1
    return q
