"""The contracts' integer units and rounding, shared by the exact models and the keeper.

Sizes are 1e18 base units, prices carry 8 decimals (`*_e8`), funding rates are per second
and the mark's premium in 1e18 fixed point, fractions are basis points or parts per million,
money is asset wei.
`mul_div` and `value` reproduce the contracts' rounding, so whatever uses them agrees with
the chain to the wei. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

SIZE_UNIT = 10**18
PRICE_DECIMALS = 8
PRICE_UNIT = 100_000_000  # 10 ** PRICE_DECIMALS
RATE_UNIT = 10**18
BPS = 10_000
PPM = 1_000_000
MAX_FUNDING_RATE = 11_111_111_111_111  # PerpMarket's bound: 4 %/hour per second, 1e18 scale
PREMIUM_UNIT = 10**18  # the mark's premium over the index: 1e18 = 100 %
MAX_PREMIUM = 10**17  # PerpMarket's bound: |premium| <= 10 %


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


def mark_price(index_e8: int, premium: int) -> int:
    """`PerpMarket._mark`: index x (1 + premium), rounded down, 8 decimals."""
    return index_e8 * (PREMIUM_UNIT + premium) // PREMIUM_UNIT


class _Once:
    """`functools.cached_property` without its lock (Python 3.11 takes one on every first
    read, which costs more than most of these values): computed on first read, then a
    plain attribute of the (frozen, dict-backed) instance."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func
        self.name = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


if TYPE_CHECKING:
    from functools import cached_property as cached_property
else:
    cached_property = _Once


class TokenUnits:
    """`asset_unit` and `base_unit` (10 ** decimals, computed once) of anything that has
    `asset_decimals` and `base_decimals`."""

    asset_decimals: int
    base_decimals: int

    @cached_property
    def asset_unit(self) -> int:
        return int(10**self.asset_decimals)

    @cached_property
    def base_unit(self) -> int:
        return int(10**self.base_decimals)
