"""The contracts' integer units and rounding, shared by the exact models and the keeper.

Sizes are 1e18 base units, prices carry 8 decimals (`*_e8`), funding rates are per second
in 1e18 fixed point, fractions are basis points or parts per million, money is asset wei.
`mul_div` and `value` reproduce the contracts' rounding, so whatever uses them agrees with
the chain to the wei. No I/O.
"""

from __future__ import annotations

SIZE_UNIT = 10**18
PRICE_DECIMALS = 8
PRICE_UNIT = 100_000_000  # 10 ** PRICE_DECIMALS
RATE_UNIT = 10**18
BPS = 10_000
PPM = 1_000_000
MAX_FUNDING_RATE = 11_111_111_111_111  # PerpMarket's bound: 4 %/hour per second, 1e18 scale


def mul_div(x: int, y: int, d: int, round_up: bool) -> int:
    """snekmate `math._mul_div` for non-negative integers."""
    return -(-x * y // d) if round_up else x * y // d


def mul_div_signed(x: int, y: int, d: int, round_up: bool) -> int:
    """`PerpMarket._mul_div_signed`: x * y / d rounded towards +inf (round_up) or -inf."""
    negative = (x < 0) != (y < 0)
    product = abs(x) * abs(y)  # `mul_div` inlined (the models call this in every view)
    mag = -(-product // d) if negative != round_up else product // d
    return -mag if negative else mag


_SIZE_PRICE = SIZE_UNIT * PRICE_UNIT


def value(size: int, price_e8: int, asset_unit: int, round_up: bool) -> int:
    """`PerpMarket._value`: signed asset-wei value of `size` at `price_e8`."""
    product = abs(size) * (price_e8 * asset_unit)  # `mul_div` inlined
    mag = -(-product // _SIZE_PRICE) if (size > 0) == round_up else product // _SIZE_PRICE
    return -mag if size < 0 else mag
