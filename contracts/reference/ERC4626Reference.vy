# pragma version 0.4.3
"""
@title ERC4626Reference
@custom:contract-name ERC4626Reference
@license MIT
@notice snekmate's `erc4626` module as-is, compiled in this project only as the gas baseline
        `make bench` sets the BasisVault against. A plain balance-valued vault: never deploy
        it for users.
"""

from ethereum.ercs import IERC20

from snekmate.extensions import erc4626
initializes: erc4626

exports: erc4626.__interface__


@deploy
def __init__(asset_: IERC20):
    """
    @dev snekmate's `erc4626` constructor with this project's share-decimals offset.
    @param asset_ The underlying token; shares get the same 6-decimal offset as the vault.
    """
    erc4626.__init__("Reference 4626", "R4626", asset_, 6, "Reference 4626", "1")
