# pragma version 0.4.3
"""
@title PerpMarket
@custom:contract-name PerpMarket
@license MIT
@notice The reference perpetual-futures venue: one base asset (e.g. ETH), margined in one
        asset token (e.g. USDC), priced by a Chainlink-compatible index oracle.
        - Accounts hold isolated margin and one signed position (`size`, 1e18 = one whole
          base unit; + long, - short).
        - The mark price is the index moved by a signed premium the operator sets
          (`mark = index x (1 + premium)`): the perp's basis to spot. Trades fill at the
          mark moved against the taker by price impact (`notional / depth`) and pay a
          taker fee in ppm of notional; unrealised PnL, equity, margin and liquidation
          are all at the mark, as on real venues.
        - Funding: a signed rate per second (1e18 = 100 %), + = longs pay shorts, set
          by the operator (a CEX-style rate derived from the premium is the feeder's
          business, off chain). A cumulative per-unit index accrues
          `rate * seconds * index_price` (on the index, as Hyperliquid does) and every
          position settles against it whenever it is touched, so funding accrues by the
          second and `accrued_funding` always equals what settlement would book.
          The interval since the last accrual is charged at the index read at accrual:
          call `accrue_funding()` before pushing a new oracle price (the market feeder
          does) and the index integrates the pushed price path exactly.
        - The counterparty is a liquidity pool of the asset (a house pool, like
          Hyperliquid's HLP or GMX's GLP): it takes the other side of every position,
          pays profits and funding owed to traders, receives their losses, funding and
          fees, and is LP-able. It never promises what it cannot pay: a payout above its
          liquidity reverts, and LPs cannot withdraw what open positions may claim.
        - Initial margin is checked on every exposure increase and margin withdrawal;
          anyone may `liquidate` an account whose equity is below maintenance margin,
          closing it at the mark for a fee paid from the account's remaining equity.
        Every rounding goes against the trader and towards the pool, so rounding can never
        make the market insolvent.
"""

from ethereum.ercs import IERC165
implements: IERC165

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

from snekmate.auth.interfaces import IAccessControl
implements: IAccessControl

from ..interfaces import IAggregatorV3

from snekmate.auth import access_control
initializes: access_control

from snekmate.utils import math

exports: access_control.__interface__


# ============================================================================
#                                  CONSTANTS
# ============================================================================

# @dev May set the funding rate, the premium and the depth.
OPERATOR_ROLE: public(constant(bytes32)) = keccak256("OPERATOR_ROLE")

# @dev Position sizes: 1e18 = one whole base unit, whatever the base token's decimals.
SIZE_UNIT: public(constant(uint256)) = 10**18

# @dev Oracle prices carry 8 decimals (Chainlink USD feeds).
PRICE_UNIT: public(constant(uint256)) = 10**8

# @dev Funding rates: 1e18 = 100 % per second.
RATE_UNIT: public(constant(uint256)) = 10**18

# @dev The funding index is in RATE_UNIT * PRICE_UNIT per whole base unit; settling
#      `size * d_index` in asset wei divides by this (times ASSET_UNIT on top).
_FUNDING_DENOMINATOR: constant(uint256) = SIZE_UNIT * RATE_UNIT * PRICE_UNIT

# @dev Basis points and parts per million.
BPS: constant(uint256) = 10_000
PPM: constant(uint256) = 1_000_000

# @dev |funding rate| cap: 4 % per hour (Hyperliquid's cap), per second, 1e18 scale.
MAX_FUNDING_RATE: public(constant(int256)) = 11_111_111_111_111

# @dev Premiums: 1e18 = 100 %.
PREMIUM_UNIT: public(constant(uint256)) = 10**18

# @dev |premium| cap: 10 %.
MAX_PREMIUM: public(constant(int256)) = 10**17

# @dev Counterparty-pool shares locked at the first deposit.
MINIMUM_LIQUIDITY: public(constant(uint256)) = 1_000

# @dev Holds the locked MINIMUM_LIQUIDITY shares.
_DEAD: constant(address) = 0x000000000000000000000000000000000000dEaD

# @dev Taker fee cap: 1 % (10,000 ppm).
MAX_TAKER_FEE_PPM: public(constant(uint256)) = 10_000


# ============================================================================
#                                 IMMUTABLES
# ============================================================================

# @dev The margin token (e.g. USDC).
asset: public(immutable(IERC20))

# @dev The index-price oracle (Chainlink AggregatorV3, 8 decimals).
oracle: public(immutable(IAggregatorV3))

# @dev 10 ** asset.decimals().
ASSET_UNIT: public(immutable(uint256))

# @dev Taker fee in parts per million of the filled notional (450 = 4.5 bps).
taker_fee_ppm: public(immutable(uint256))

# @dev Initial margin in bps of notional: 500 = 5 % = 20x max leverage.
initial_margin_bps: public(immutable(uint256))

# @dev Maintenance margin in bps of notional; below it anyone may liquidate.
maintenance_margin_bps: public(immutable(uint256))

# @dev The liquidator's fee in bps of the liquidated notional, paid from the account's
#      remaining equity (never from the pool).
liquidation_fee_bps: public(immutable(uint256))

# @dev Oracle answers older than this (seconds) halt trading, withdrawals with an open
#      position, LP flows and liquidations.
max_oracle_age: public(immutable(uint256))


# ============================================================================
#                                  STORAGE
# ============================================================================

# @dev One account's isolated margin and position.
struct Account:
    margin: uint256
    size: int256
    # signed asset-wei value paid (+, long) or received (-, short) for the open size
    cost: int256
    # funding index at the last settlement
    funding_entry: int256


# @dev What `position` returns (see there).
struct PositionView:
    size: int256
    entry_price_e8: uint256
    margin: uint256
    unrealized_pnl: int256
    accrued_funding: int256
    equity: int256
    notional: uint256
    margin_ratio_bps: uint256


# @dev Every account's margin and position.
_accounts: HashMap[address, Account]

# @dev Funding rate per second, 1e18 = 100 %; + = longs pay shorts.
funding_rate: public(int256)

# @dev Cumulative funding per whole base unit, in RATE_UNIT * PRICE_UNIT, as of
#      `last_funding_time` (see `current_funding_index` for the live value).
funding_index: public(int256)

# @dev When `funding_index` was last checkpointed.
last_funding_time: public(uint256)

# @dev The mark's premium over the index, signed, 1e18 = 100 %: mark = index x
#      (1 + premium); + = the perp trades rich to spot. |premium| <= MAX_PREMIUM.
premium: public(int256)

# @dev Price-impact depth in asset wei: a trade of notional N fills N / depth away from
#      the mark (linear impact, like walking a uniform order book).
depth: public(uint256)

# @dev Aggregates over all accounts, for the pool's liability.
net_size: public(int256)
total_cost: public(int256)
open_interest_long: public(uint256)
open_interest_short: public(uint256)
_sum_size_funding_entry: int256

# @dev Sum of all accounts' margin, asset wei.
total_margin: public(uint256)

# @dev The counterparty pool's asset, asset wei.
pool_liquidity: public(uint256)

# @dev Counterparty-pool LP shares.
lp_shares: public(HashMap[address, uint256])
# @dev All LP shares, the locked MINIMUM_LIQUIDITY included.
lp_total_shares: public(uint256)

# @dev Equity and notional an account had before its first size reduction in the current
#      transaction (equity + 1, so 0 means "none yet"). A margin withdrawal in the same
#      transaction may go below initial margin as long as it leaves the margin ratio no
#      lower than this (GMX-style "decrease with collateral"): a pro-rata exit from a
#      position between maintenance and initial margin must be possible.
_reduce_floor_equity: transient(HashMap[address, int256])
_reduce_floor_notional: transient(HashMap[address, uint256])


# ============================================================================
#                                   EVENTS
# ============================================================================

# @dev `account` added `amount` asset to its margin.
event MarginDeposited:
    account: indexed(address)
    amount: uint256


# @dev `account` withdrew `amount` asset of its margin.
event MarginWithdrawn:
    account: indexed(address)
    amount: uint256


# @dev A trade: the fill (the mark moved by impact), the index and the mark, the fee and
#      realised PnL, and the account's size, cost and margin after it.
event PositionModified:
    account: indexed(address)
    size_delta: int256
    fill_price_e8: uint256
    index_price_e8: uint256
    mark_price_e8: uint256
    fee: uint256
    realized_pnl: int256
    size: int256
    cost: int256
    margin: uint256


# @dev Funding booked to `account` (+ = paid to it) at `funding_index`.
event FundingSettled:
    account: indexed(address)
    amount: int256
    funding_index: int256


# @dev The operator changed the funding rate; the index was accrued at the old one.
event FundingRateUpdated:
    old_rate: int256
    new_rate: int256
    funding_index: int256


# @dev The operator changed the premium (the mark moves with it; funding does not).
event PremiumUpdated:
    old_premium: int256
    new_premium: int256


# @dev The price-impact depth changed (also emitted by the constructor).
event DepthUpdated:
    old_depth: uint256
    new_depth: uint256


# @dev `liquidator` closed `account`'s position at the mark: its equity then, the
#      fee paid to the liquidator and any bad debt the pool absorbed.
event Liquidated:
    account: indexed(address)
    liquidator: indexed(address)
    size: int256
    index_price_e8: uint256
    mark_price_e8: uint256
    equity: int256
    liquidator_fee: uint256
    bad_debt: uint256


# @dev `account` added `amount` asset to the counterparty pool for `shares`.
event PoolDeposit:
    account: indexed(address)
    amount: uint256
    shares: uint256


# @dev `account` burned `shares` for `amount` asset of the counterparty pool.
event PoolWithdraw:
    account: indexed(address)
    amount: uint256
    shares: uint256


# ============================================================================
#                                CONSTRUCTOR
# ============================================================================

@deploy
def __init__(
    asset_: IERC20,
    oracle_: IAggregatorV3,
    taker_fee_ppm_: uint256,
    initial_margin_bps_: uint256,
    maintenance_margin_bps_: uint256,
    liquidation_fee_bps_: uint256,
    max_oracle_age_: uint256,
    depth_: uint256,
):
    """
    @dev The deployer gets `DEFAULT_ADMIN_ROLE` and `OPERATOR_ROLE`.
    @param asset_ The margin token.
    @param oracle_ The index oracle; must report 8 decimals.
    @param taker_fee_ppm_ Taker fee, ppm of notional (450 = 4.5 bps), <= MAX_TAKER_FEE_PPM.
    @param initial_margin_bps_ Initial margin, bps (500 = 20x), in (maintenance, 10_000].
    @param maintenance_margin_bps_ Maintenance margin, bps, > 0.
    @param liquidation_fee_bps_ Liquidator's fee, bps of notional, <= maintenance margin.
    @param max_oracle_age_ Oracle staleness bound in seconds, > 0.
    @param depth_ Price-impact depth in asset wei, > 0.
    """
    assert asset_.address != empty(address), "perp: zero asset"
    assert staticcall IERC20Detailed(asset_.address).decimals() <= 36, "perp: asset decimals above 36"
    assert staticcall oracle_.decimals() == 8, "perp: oracle must have 8 decimals"
    assert taker_fee_ppm_ <= MAX_TAKER_FEE_PPM, "perp: taker fee above maximum"
    assert maintenance_margin_bps_ != 0, "perp: zero maintenance margin"
    assert initial_margin_bps_ > maintenance_margin_bps_, "perp: initial margin <= maintenance"
    assert initial_margin_bps_ <= BPS, "perp: initial margin above 100%"
    assert liquidation_fee_bps_ <= maintenance_margin_bps_, "perp: liquidation fee above maintenance"
    assert max_oracle_age_ != 0, "perp: zero oracle age"
    access_control.__init__()
    access_control._grant_role(OPERATOR_ROLE, msg.sender)
    asset = asset_
    oracle = oracle_
    ASSET_UNIT = 10 ** convert(staticcall IERC20Detailed(asset_.address).decimals(), uint256)
    taker_fee_ppm = taker_fee_ppm_
    initial_margin_bps = initial_margin_bps_
    maintenance_margin_bps = maintenance_margin_bps_
    liquidation_fee_bps = liquidation_fee_bps_
    max_oracle_age = max_oracle_age_
    self.last_funding_time = block.timestamp
    self._set_depth(depth_)


# ============================================================================
#                                   MARGIN
# ============================================================================

@external
@nonreentrant
def deposit_margin(amount: uint256):
    """
    @dev Adds `amount` asset to the caller's margin (pending funding is settled first).
    @param amount Asset wei, > 0.
    """
    assert amount != 0, "perp: zero amount"
    self._accrue(self._index_price(False))
    # Credit first, so a top-up can rescue an account whose funding debt exceeds margin.
    self._accounts[msg.sender].margin += amount
    self.total_margin += amount
    self._settle_funding(msg.sender)
    self._pull(amount)
    log MarginDeposited(account=msg.sender, amount=amount)


@external
@nonreentrant
def withdraw_margin(amount: uint256):
    """
    @dev Withdraws `amount` of the caller's margin. With an open position the account
         must still meet initial margin at the mark afterwards (and the oracle must be
         fresh), or, after reducing its size earlier in the same transaction, keep a
         margin ratio no lower than it had before that reduction.
    @param amount Asset wei, > 0.
    """
    assert amount != 0, "perp: zero amount"
    acct: Account = self._accounts[msg.sender]
    price: uint256 = self._index_price(acct.size != 0)
    self._accrue(price)
    self._settle_funding(msg.sender)
    margin: uint256 = self._accounts[msg.sender].margin
    assert amount <= margin, "perp: amount above margin"
    self._accounts[msg.sender].margin = margin - amount
    self.total_margin -= amount
    if acct.size != 0:
        mark: uint256 = self._mark(price)
        equity: int256 = self._equity(msg.sender, price, mark)
        if equity < convert(self._margin_requirement(acct.size, mark, initial_margin_bps), int256):
            # Below initial margin only when the ratio stays at least what it was before
            # this transaction's reduction: equity / notional >= floor_e / floor_n.
            floor_e: int256 = self._reduce_floor_equity[msg.sender] - 1
            notional: uint256 = convert(abs(self._value(acct.size, mark, False)), uint256)
            assert floor_e >= 0 and equity > 0, "perp: below initial margin"
            assert convert(equity, uint256) * self._reduce_floor_notional[msg.sender] >= convert(
                floor_e, uint256
            ) * notional, "perp: below initial margin"
    self._push(msg.sender, amount)
    log MarginWithdrawn(account=msg.sender, amount=amount)


# ============================================================================
#                                  TRADING
# ============================================================================

@external
@nonreentrant
def modify_position(size_delta: int256, acceptable_price: uint256) -> uint256:
    """
    @dev Buys (`size_delta` > 0) or sells (< 0) `|size_delta|` base at the mark price
         moved by impact; settles funding first, realises PnL on any reduced part, charges
         the taker fee, and checks initial margin (at the mark) when exposure grows.
    @param size_delta Signed base amount, 1e18 = one whole unit; non-zero.
    @param acceptable_price Worst fill accepted (8 decimals): a maximum for buys, a
           minimum for sells.
    @return uint256 The fill price, 8 decimals.
    """
    assert size_delta != 0, "perp: zero size"
    price: uint256 = self._index_price(True)
    self._accrue(price)
    self._settle_funding(msg.sender)
    mark: uint256 = self._mark(price)

    fill: uint256 = self._fill_price(size_delta, mark)
    if size_delta > 0:
        assert fill <= acceptable_price, "perp: price above acceptable"
    else:
        assert fill >= acceptable_price, "perp: price below acceptable"

    acct: Account = self._accounts[msg.sender]
    old_size: int256 = acct.size
    new_size: int256 = old_size + size_delta

    # Split the trade into the part that closes existing size and the part that opens.
    close_delta: int256 = 0
    if old_size != 0 and (old_size > 0) != (size_delta > 0):
        close_delta = size_delta
        if abs(size_delta) > abs(old_size):
            close_delta = -old_size
    open_delta: int256 = size_delta - close_delta

    realized: int256 = 0
    closed_cost: int256 = 0
    notional_traded: uint256 = 0
    if close_delta != 0:
        if self._reduce_floor_notional[msg.sender] == 0:
            self._reduce_floor_equity[msg.sender] = max(self._equity(msg.sender, price, mark), -1) + 1
            self._reduce_floor_notional[msg.sender] = convert(abs(self._value(old_size, mark, False)), uint256)
        close_value: int256 = self._value(close_delta, fill, True)
        closed_cost = acct.cost
        if close_delta != -old_size:
            # Pro-rata cost of the closed part, rounded towards +inf (against the trader);
            # the final close takes whatever cost remains, so no wei is ever lost.
            closed_cost = self._mul_div_signed(acct.cost, abs(close_delta), convert(abs(old_size), uint256), True)
        realized = -(close_value + closed_cost)
        notional_traded += convert(abs(close_value), uint256)
    open_value: int256 = 0
    if open_delta != 0:
        open_value = self._value(open_delta, fill, True)
        notional_traded += convert(abs(open_value), uint256)
    fee: uint256 = math._mul_div(notional_traded, taker_fee_ppm, PPM, True)
    new_cost: int256 = acct.cost - closed_cost + open_value

    self._book(msg.sender, realized - convert(fee, int256))
    self._set_position(msg.sender, old_size, acct.cost, new_size, new_cost)

    # Initial margin on any exposure increase (a flip counts as one).
    if open_delta != 0:
        assert self._equity(msg.sender, price, mark) >= convert(
            self._margin_requirement(new_size, mark, initial_margin_bps), int256
        ), "perp: below initial margin"

    log PositionModified(
        account=msg.sender,
        size_delta=size_delta,
        fill_price_e8=fill,
        index_price_e8=price,
        mark_price_e8=mark,
        fee=fee,
        realized_pnl=realized,
        size=new_size,
        cost=new_cost,
        margin=self._accounts[msg.sender].margin,
    )
    return fill


@external
@nonreentrant
def liquidate(account: address) -> uint256:
    """
    @dev Closes `account`'s whole position at the mark price when its equity at the mark
         is below maintenance margin. The caller earns `liquidation_fee_bps` of the notional, paid
         from the account's remaining equity; what is left stays the account's margin; a
         negative equity is bad debt the pool absorbs.
    @param account The account to liquidate.
    @return uint256 The fee paid to the caller, asset wei.
    """
    price: uint256 = self._index_price(True)
    self._accrue(price)
    acct: Account = self._accounts[account]
    assert acct.size != 0, "perp: no position"
    mark: uint256 = self._mark(price)
    equity: int256 = self._equity(account, price, mark)
    assert equity < convert(
        self._margin_requirement(acct.size, mark, maintenance_margin_bps), int256
    ), "perp: account not liquidatable"

    notional: uint256 = convert(abs(self._value(acct.size, mark, False)), uint256)
    # `equity` is exactly margin + funding + PnL of a close at the mark, both rounded
    # against the account, so it is what the account is worth after the close.
    fee: uint256 = 0
    remaining: uint256 = 0
    bad_debt: uint256 = 0
    if equity > 0:
        fee = min(convert(equity, uint256), notional * liquidation_fee_bps // BPS)
        remaining = convert(equity, uint256) - fee
    else:
        bad_debt = convert(-equity, uint256)

    # The pool receives what the account lost; it pays only if the account was worth
    # more than its margin (possible when PnL and funding were positive).
    pool_delta: int256 = convert(acct.margin, int256) - convert(remaining + fee, int256)
    if pool_delta >= 0:
        self.pool_liquidity += convert(pool_delta, uint256)
    else:
        self._pool_pay(convert(-pool_delta, uint256))
    self.total_margin = self.total_margin - acct.margin + remaining
    # Funding is booked inside `equity`; move the entry to the index as a settlement would.
    self._sum_size_funding_entry += acct.size * (self.funding_index - acct.funding_entry)
    self._set_position(account, acct.size, acct.cost, 0, 0)
    self._accounts[account] = Account(margin=remaining, size=0, cost=0, funding_entry=self.funding_index)
    if fee != 0:
        self._push(msg.sender, fee)
    log Liquidated(
        account=account,
        liquidator=msg.sender,
        size=acct.size,
        index_price_e8=price,
        mark_price_e8=mark,
        equity=equity,
        liquidator_fee=fee,
        bad_debt=bad_debt,
    )
    return fee


@external
def accrue_funding():
    """
    @dev Checkpoints the funding index at the current index price. Permissionless; the
         feeder calls it right before pushing a new oracle price.
    """
    self._accrue(self._index_price(False))


# ============================================================================
#                              COUNTERPARTY POOL
# ============================================================================

@external
@nonreentrant
def add_liquidity(amount: uint256, min_shares: uint256) -> uint256:
    """
    @dev Deposits asset into the counterparty pool for LP shares priced at the pool's
         value (liquidity minus what open positions may claim), rounded down.
    @param amount Asset wei, > 0.
    @param min_shares The least shares accepted.
    @return uint256 Shares minted.
    """
    assert amount != 0, "perp: zero amount"
    price: uint256 = self._index_price(True)
    self._accrue(price)
    supply: uint256 = self.lp_total_shares
    shares: uint256 = amount
    if supply == 0:
        # Lock the first MINIMUM_LIQUIDITY shares forever (Uniswap V2), so the share
        # price cannot be inflated to make later deposits round to nothing.
        assert amount > MINIMUM_LIQUIDITY, "perp: initial liquidity too small"
        self.lp_shares[_DEAD] = MINIMUM_LIQUIDITY
        supply = MINIMUM_LIQUIDITY
        shares = amount - MINIMUM_LIQUIDITY
    else:
        value: int256 = self._pool_value(price, self._mark(price))
        assert value > 0, "perp: pool value not positive"
        shares = math._mul_div(amount, supply, convert(value, uint256), False)
    assert shares != 0, "perp: zero shares"
    assert shares >= min_shares, "perp: shares below minimum"
    self.lp_shares[msg.sender] += shares
    self.lp_total_shares = supply + shares
    self.pool_liquidity += amount
    self._pull(amount)
    log PoolDeposit(account=msg.sender, amount=amount, shares=shares)
    return shares


@external
@nonreentrant
def remove_liquidity(shares: uint256, min_amount: uint256) -> uint256:
    """
    @dev Burns LP shares for their slice of the pool's value (rounded down), as long as
         the pool keeps enough to pay every open position's claim.
    @param shares Shares to burn, > 0.
    @param min_amount The least asset accepted.
    @return uint256 Asset wei paid.
    """
    assert shares != 0, "perp: zero shares"
    assert shares <= self.lp_shares[msg.sender], "perp: shares above balance"
    price: uint256 = self._index_price(True)
    self._accrue(price)
    value: int256 = self._pool_value(price, self._mark(price))
    assert value > 0, "perp: pool value not positive"
    amount: uint256 = math._mul_div(shares, convert(value, uint256), self.lp_total_shares, False)
    assert amount != 0, "perp: zero amount"
    assert amount >= min_amount, "perp: amount below minimum"
    # value = liquidity - claim, so amount <= value keeps liquidity >= claim.
    assert amount <= self.pool_liquidity, "perp: pool liquidity insufficient"
    self.lp_shares[msg.sender] -= shares
    self.lp_total_shares -= shares
    self.pool_liquidity -= amount
    self._push(msg.sender, amount)
    log PoolWithdraw(account=msg.sender, amount=amount, shares=shares)
    return amount


# ============================================================================
#                                  OPERATOR
# ============================================================================

@external
def set_funding_rate(rate: int256):
    """
    @dev Sets the funding rate after accruing the index at the old one. Only OPERATOR_ROLE.
    @param rate Per second, 1e18 = 100 %; + = longs pay shorts; |rate| <= MAX_FUNDING_RATE.
    """
    access_control._check_role(OPERATOR_ROLE, msg.sender)
    self._set_funding_rate(rate)


@external
def set_premium(premium_: int256):
    """
    @dev Sets the mark's premium over the index; the mark, and with it every position's
         PnL, equity and margin ratio, moves at once (funding does not: it accrues on the
         index). Only OPERATOR_ROLE.
    @param premium_ Signed, 1e18 = 100 %; + = the perp trades rich to spot;
           |premium_| <= MAX_PREMIUM.
    """
    access_control._check_role(OPERATOR_ROLE, msg.sender)
    self._set_premium(premium_)


@external
def set_depth(depth_: uint256):
    """
    @dev Sets the price-impact depth. Only OPERATOR_ROLE.
    @param depth_ Asset wei, > 0.
    """
    access_control._check_role(OPERATOR_ROLE, msg.sender)
    self._set_depth(depth_)


# ============================================================================
#                                    VIEW
# ============================================================================

@external
@view
def position(account: address) -> PositionView:
    """
    @dev Everything an integrator needs about `account`, live at the latest oracle
         answer (fresh or not): size (1e18 base), entry price (8 decimals, 0 when flat),
         margin, unrealised PnL at the mark, accrued unsettled funding, equity (all asset
         wei), notional at the mark and margin ratio in bps (equity / notional; 0 when
         equity <= 0, max_value(uint256) when flat).
    @param account The account.
    @return PositionView The account's position.
    """
    price: uint256 = self._index_price(False)
    mark: uint256 = self._mark(price)
    acct: Account = self._accounts[account]
    upnl: int256 = 0
    notional: uint256 = 0
    entry: uint256 = 0
    if acct.size != 0:
        upnl = self._value(acct.size, mark, False) - acct.cost
        notional = convert(abs(upnl + acct.cost), uint256)
        entry = math._mul_div(convert(abs(acct.cost), uint256), SIZE_UNIT * PRICE_UNIT, convert(abs(acct.size), uint256) * ASSET_UNIT, False)
    funding: int256 = self._accrued_funding(acct, self._current_funding_index(price))
    equity: int256 = convert(acct.margin, int256) + upnl + funding
    return PositionView(
        size=acct.size,
        entry_price_e8=entry,
        margin=acct.margin,
        unrealized_pnl=upnl,
        accrued_funding=funding,
        equity=equity,
        notional=notional,
        margin_ratio_bps=self._margin_ratio_bps(equity, notional),
    )


@external
@view
def accrued_funding(account: address) -> int256:
    """
    @dev Funding `account` has accrued since it was last settled, asset wei; + = owed to
         the account. Exactly what the next settlement books.
    @param account The account.
    @return int256 Asset wei.
    """
    return self._accrued_funding(self._accounts[account], self._current_funding_index(self._index_price(False)))


@external
@view
def equity(account: address) -> int256:
    """
    @dev Margin + unrealised PnL at the mark + accrued funding, asset wei.
    @param account The account.
    @return int256 Asset wei.
    """
    price: uint256 = self._index_price(False)
    return self._equity(account, price, self._mark(price))


@external
@view
def margin_ratio_bps(account: address) -> uint256:
    """
    @dev Equity / notional at the mark, bps; max_value(uint256) when flat, 0 when
         equity <= 0.
    @param account The account.
    @return uint256 Bps.
    """
    price: uint256 = self._index_price(False)
    mark: uint256 = self._mark(price)
    acct: Account = self._accounts[account]
    notional: uint256 = convert(abs(self._value(acct.size, mark, False)), uint256)
    return self._margin_ratio_bps(self._equity(account, price, mark), notional)


@external
@view
def is_liquidatable(account: address) -> bool:
    """
    @dev True when `account` has a position and equity below maintenance margin, both at
         the mark.
    @param account The account.
    @return bool Whether `liquidate(account)` would succeed at a fresh price.
    """
    price: uint256 = self._index_price(False)
    mark: uint256 = self._mark(price)
    size: int256 = self._accounts[account].size
    if size == 0:
        return False
    return self._equity(account, price, mark) < convert(self._margin_requirement(size, mark, maintenance_margin_bps), int256)


@external
@view
def current_funding_index() -> int256:
    """
    @dev The funding index accrued up to now at the latest oracle answer.
    @return int256 RATE_UNIT * PRICE_UNIT per whole base unit.
    """
    return self._current_funding_index(self._index_price(False))


@external
@view
def quote_fill_price(size_delta: int256) -> uint256:
    """
    @dev The fill price `modify_position(size_delta, ...)` would get now (the mark moved
         by impact), 8 decimals.
    @param size_delta Signed base amount, 1e18 = one whole unit.
    @return uint256 The fill price, 8 decimals.
    """
    return self._fill_price(size_delta, self._mark(self._index_price(False)))


@external
@view
def pool_value() -> int256:
    """
    @dev The counterparty pool's value: liquidity minus open positions' claim (their
         unrealised PnL at the mark plus funding owed to them, rounded up), asset wei.
    @return int256 Asset wei (negative if the claim exceeds the liquidity).
    """
    price: uint256 = self._index_price(False)
    return self._pool_value(price, self._mark(price))


@external
@view
def index_price() -> uint256:
    """
    @dev The latest oracle answer, 8 decimals (no staleness check).
    @return uint256 The index price, 8 decimals.
    """
    return self._index_price(False)


@external
@view
def mark_price() -> uint256:
    """
    @dev The mark price, index x (1 + premium) rounded down, 8 decimals (no staleness
         check): the price trades fill around and positions are valued at.
    @return uint256 The mark price, 8 decimals.
    """
    return self._mark(self._index_price(False))


# ============================================================================
#                                  INTERNAL
# ============================================================================

@internal
@view
def _index_price(require_fresh: bool) -> uint256:
    """
    @dev The oracle's latest answer; reverts on a non-positive answer and, when
         `require_fresh`, on one older than `max_oracle_age`.
    @param require_fresh Whether a stale answer reverts.
    @return uint256 The index price, 8 decimals.
    """
    round_id: uint80 = 0
    answer: int256 = 0
    started_at: uint256 = 0
    updated_at: uint256 = 0
    answered_in: uint80 = 0
    round_id, answer, started_at, updated_at, answered_in = staticcall oracle.latestRoundData()
    assert answer > 0, "perp: invalid oracle answer"
    if require_fresh:
        assert block.timestamp - updated_at <= max_oracle_age, "perp: stale oracle"
    return convert(answer, uint256)


@internal
@view
def _mark(price: uint256) -> uint256:
    """
    @dev The mark at index `price`: price x (1 + premium), rounded down to 1e-8 USD.
         One price for longs and shorts alike; every figure valued at it rounds against
         the trader on its own.
    @param price The index price, 8 decimals.
    @return uint256 The mark price, 8 decimals.
    """
    return math._mul_div(price, convert(convert(PREMIUM_UNIT, int256) + self.premium, uint256), PREMIUM_UNIT, False)


@internal
@view
def _current_funding_index(price: uint256) -> int256:
    """
    @dev The funding index accrued from `last_funding_time` to now at `price`.
    @param price The index price, 8 decimals.
    @return int256 RATE_UNIT * PRICE_UNIT per whole base unit.
    """
    elapsed: uint256 = block.timestamp - self.last_funding_time
    return self.funding_index + self.funding_rate * convert(elapsed * price, int256)


@internal
def _accrue(price: uint256):
    """
    @dev Checkpoints the funding index at `price` (once per block).
    @param price The index price, 8 decimals.
    """
    if block.timestamp == self.last_funding_time:
        return
    self.funding_index = self._current_funding_index(price)
    self.last_funding_time = block.timestamp


@internal
@view
def _accrued_funding(acct: Account, index: int256) -> int256:
    """
    @dev Funding owed to an account since its last settlement: -size * (index - entry),
         rounded towards -inf (against the account).
    @param acct The account's record.
    @param index The funding index to settle against.
    @return int256 Asset wei; + = owed to the account.
    """
    if acct.size == 0:
        return 0
    return self._mul_div_signed(-acct.size, index - acct.funding_entry, _FUNDING_DENOMINATOR // ASSET_UNIT, False)


@internal
def _settle_funding(account: address):
    """
    @dev Books `account`'s accrued funding against the pool at the current
         `funding_index` (logging `FundingSettled` when non-zero) and moves its entry
         there.
    @param account The account.
    """
    acct: Account = self._accounts[account]
    index: int256 = self.funding_index
    if acct.size != 0:
        amount: int256 = self._accrued_funding(acct, index)
        self._book(account, amount)
        self._sum_size_funding_entry += acct.size * (index - acct.funding_entry)
        if amount != 0:
            log FundingSettled(account=account, amount=amount, funding_index=index)
    self._accounts[account].funding_entry = index


@internal
def _book(account: address, amount: int256):
    """
    @dev Moves `amount` between the counterparty pool and the account's margin.
    @param account The account.
    @param amount Asset wei; + = the pool pays the account, - = the account pays the
           pool (at most its margin).
    """
    if amount > 0:
        self._pool_pay(convert(amount, uint256))
        self._accounts[account].margin += convert(amount, uint256)
        self.total_margin += convert(amount, uint256)
    elif amount < 0:
        loss: uint256 = convert(-amount, uint256)
        margin: uint256 = self._accounts[account].margin
        assert loss <= margin, "perp: loss exceeds margin"
        self._accounts[account].margin = margin - loss
        self.total_margin -= loss
        self.pool_liquidity += loss


@internal
def _pool_pay(amount: uint256):
    """
    @dev Takes `amount` out of the counterparty pool's liquidity; reverts if the pool
         cannot pay.
    @param amount Asset wei.
    """
    assert amount <= self.pool_liquidity, "perp: counterparty pool cannot pay"
    self.pool_liquidity -= amount


@internal
def _set_position(account: address, old_size: int256, old_cost: int256, new_size: int256, new_cost: int256):
    """
    @dev Writes an account's size and cost and keeps the aggregates exact (net size,
         total cost, open interest, sum(size * funding entry)). Funding was settled at
         the current index, so the account's funding entry equals `funding_index`.
    @param account The account.
    @param old_size The size before, 1e18 base.
    @param old_cost The cost before, asset wei.
    @param new_size The size after, 1e18 base.
    @param new_cost The cost after, asset wei.
    """
    index: int256 = self.funding_index
    self._sum_size_funding_entry += (new_size - old_size) * index
    self.net_size += new_size - old_size
    self.total_cost += new_cost - old_cost
    if old_size > 0:
        self.open_interest_long -= convert(old_size, uint256)
    elif old_size < 0:
        self.open_interest_short -= convert(-old_size, uint256)
    if new_size > 0:
        self.open_interest_long += convert(new_size, uint256)
    elif new_size < 0:
        self.open_interest_short += convert(-new_size, uint256)
    self._accounts[account].size = new_size
    self._accounts[account].cost = new_cost
    self._accounts[account].funding_entry = index


@internal
@view
def _fill_price(size_delta: int256, price: uint256) -> uint256:
    """
    @dev The mark price moved against the taker by linear impact: notional (at the
         mark) / depth.
    @param size_delta Signed base amount, 1e18 = one whole unit.
    @param price The mark price, 8 decimals.
    @return uint256 The fill price, 8 decimals (rounded against the taker).
    """
    if size_delta == 0:
        return price
    notional: uint256 = convert(abs(self._value(size_delta, price, False)), uint256)
    d: uint256 = self.depth
    if size_delta > 0:
        return math._mul_div(price, d + notional, d, True)
    assert notional < d, "perp: trade larger than depth"
    return math._mul_div(price, d - notional, d, False)


@internal
@view
def _value(size: int256, price: uint256, round_up: bool) -> int256:
    """
    @dev Signed asset-wei value of `size` at `price`.
    @param size Signed base amount, 1e18 = one whole unit.
    @param price The price, 8 decimals.
    @param round_up Round towards +inf (true) or -inf.
    @return int256 Asset wei.
    """
    mag: uint256 = math._mul_div(convert(abs(size), uint256), price * ASSET_UNIT, SIZE_UNIT * PRICE_UNIT, (size > 0) == round_up)
    if size < 0:
        return -convert(mag, int256)
    return convert(mag, int256)


@internal
@pure
def _mul_div_signed(x: int256, y: int256, d: uint256, round_up: bool) -> int256:
    """
    @dev x * y / d in 512-bit precision.
    @param x A signed factor.
    @param y A signed factor.
    @param d The divisor, > 0.
    @param round_up Round towards +inf (true) or -inf.
    @return int256 The quotient.
    """
    negative: bool = (x < 0) != (y < 0)
    mag: uint256 = math._mul_div(convert(abs(x), uint256), convert(abs(y), uint256), d, negative != round_up)
    if negative:
        return -convert(mag, int256)
    return convert(mag, int256)


@internal
@view
def _equity(account: address, price: uint256, mark: uint256) -> int256:
    """
    @dev Margin + unrealised PnL at `mark` + funding accrued on the index `price`.
    @param account The account.
    @param price The index price, 8 decimals.
    @param mark The mark price, 8 decimals.
    @return int256 Asset wei.
    """
    acct: Account = self._accounts[account]
    result: int256 = convert(acct.margin, int256) + self._accrued_funding(acct, self._current_funding_index(price))
    if acct.size != 0:
        result += self._value(acct.size, mark, False) - acct.cost
    return result


@internal
@view
def _margin_requirement(size: int256, price: uint256, bps: uint256) -> uint256:
    """
    @dev `bps` of the notional of `size` at `price`, rounded up.
    @param size Signed base amount, 1e18 = one whole unit.
    @param price The mark price, 8 decimals.
    @param bps The margin rate, bps.
    @return uint256 Asset wei.
    """
    notional: uint256 = convert(abs(self._value(size, price, False)), uint256)
    return math._mul_div(notional, bps, BPS, True)


@internal
@pure
def _margin_ratio_bps(equity: int256, notional: uint256) -> uint256:
    """
    @dev Equity / notional, bps.
    @param equity Asset wei.
    @param notional Asset wei.
    @return uint256 Bps; max_value(uint256) when `notional` is 0, 0 when equity <= 0.
    """
    if notional == 0:
        return max_value(uint256)
    if equity <= 0:
        return 0
    return convert(equity, uint256) * BPS // notional


@internal
@view
def _pool_value(price: uint256, mark: uint256) -> int256:
    """
    @dev The pool's liquidity minus open positions' claim on it, rounded up (a
         liability): their unrealised PnL at the mark plus the funding owed to them.
         Per-account figures round against each account, so this bounds what they can
         ever settle.
    @param price The index price, 8 decimals.
    @param mark The mark price, 8 decimals.
    @return int256 Asset wei.
    """
    index: int256 = self._current_funding_index(price)
    claim: int256 = self._value(self.net_size, mark, True) - self.total_cost
    owed: int256 = -(self.net_size * index - self._sum_size_funding_entry)
    claim += self._mul_div_signed(owed, 1, _FUNDING_DENOMINATOR // ASSET_UNIT, True)
    return convert(self.pool_liquidity, int256) - claim


@internal
def _set_depth(depth_: uint256):
    """
    @dev Sets the price-impact depth and logs `DepthUpdated`; the constructor and
         `set_depth` both come here.
    @param depth_ Asset wei, > 0.
    """
    assert depth_ != 0, "perp: zero depth"
    old: uint256 = self.depth
    self.depth = depth_
    log DepthUpdated(old_depth=old, new_depth=depth_)


@internal
def _set_funding_rate(rate: int256):
    """
    @dev Checks the bound, accrues the index at the old rate, then sets the rate and
         logs `FundingRateUpdated`. Only `set_funding_rate` comes here: the market starts
         at a zero rate.
    @param rate Per second, 1e18 = 100 %; + = longs pay shorts; |rate| <= MAX_FUNDING_RATE.
    """
    assert abs(rate) <= MAX_FUNDING_RATE, "perp: funding rate above bound"
    self._accrue(self._index_price(False))
    old: int256 = self.funding_rate
    self.funding_rate = rate
    log FundingRateUpdated(old_rate=old, new_rate=rate, funding_index=self.funding_index)


@internal
def _set_premium(premium_: int256):
    """
    @dev Checks the bound, sets the premium and logs `PremiumUpdated`. Only
         `set_premium` comes here: the market starts at a zero premium (mark = index).
    @param premium_ Signed, 1e18 = 100 %; |premium_| <= MAX_PREMIUM.
    """
    assert abs(premium_) <= MAX_PREMIUM, "perp: premium out of range"
    old: int256 = self.premium
    self.premium = premium_
    log PremiumUpdated(old_premium=old, new_premium=premium_)


@internal
def _pull(amount: uint256):
    """
    @dev Pulls `amount` asset from the caller.
    @param amount Asset wei.
    """
    assert extcall asset.transferFrom(msg.sender, self, amount, default_return_value=True), "perp: transferFrom failed"


@internal
def _push(to: address, amount: uint256):
    """
    @dev Sends `amount` asset to `to`.
    @param to The receiver.
    @param amount Asset wei.
    """
    assert extcall asset.transfer(to, amount, default_return_value=True), "perp: transfer failed"
