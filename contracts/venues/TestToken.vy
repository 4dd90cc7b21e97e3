# pragma version 0.4.3
"""
@title TestToken
@custom:contract-name TestToken
@license MIT
@notice A testnet ERC-20 (snekmate `erc20`) with an open faucet: anyone may mint up to
        `mint_cap` per call. Stands in for USDC (6 decimals) and WETH (18 decimals) on
        local chains and public testnets. Never deploy it where the token must have value.
"""

from ethereum.ercs import IERC20
implements: IERC20

from ethereum.ercs import IERC20Detailed
implements: IERC20Detailed

from snekmate.auth import ownable
initializes: ownable

from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]

# The faucet replaces snekmate's minter-gated `mint`; ownership and minter
# management are not exported, so the deployer keeps no power over the token.
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
    erc20.burn,
    erc20.burn_from,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
)


# @dev The most a single `mint` call may create, in token wei.
mint_cap: public(immutable(uint256))


@deploy
def __init__(
    name_: String[25],
    symbol_: String[5],
    decimals_: uint8,
    mint_cap_: uint256,
    initial_supply_: uint256,
):
    """
    @dev Deploys the token and mints `initial_supply_` to the deployer (venue seeding).
         The deployer keeps no power over the token.
    @param name_ Token name, at most 25 characters.
    @param symbol_ Token symbol, at most 5 characters.
    @param decimals_ Decimal places (e.g. 6 for a USDC stand-in, 18 for WETH).
    @param mint_cap_ Per-call faucet cap in token wei; must be non-zero.
    @param initial_supply_ Amount minted to the deployer at deploy, in token wei.
    """
    assert decimals_ <= 36, "token: decimals above 36"
    assert mint_cap_ != 0, "token: zero mint cap"
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")
    mint_cap = mint_cap_
    if initial_supply_ != 0:
        erc20._mint(msg.sender, initial_supply_)


@external
def mint(to: address, amount: uint256):
    """
    @dev Testnet faucet: anyone may mint up to `mint_cap` tokens per call.
         Emits `Transfer(empty(address), to, amount)`.
    @param to The receiver (not the zero address).
    @param amount Token wei to mint, 0 < amount <= mint_cap.
    """
    assert amount != 0, "token: zero amount"
    assert amount <= mint_cap, "token: amount above mint cap"
    erc20._mint(to, amount)
