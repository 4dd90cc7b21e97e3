"""Unit conversions at the boundary between people, files and contracts.

People type decimal strings ("1500.25" USDC, "3100" USD, "0.01%" funding, "20bps"
premium); contracts take integers (asset wei, 8-decimal prices, 1e18-per-second funding
rates, 1e18 = 100 % premiums). Everything here is
exact `Decimal` arithmetic; nothing goes through float.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation

from keeper.core.errors import UserError

PRICE_DECIMALS = 8
RATE_UNIT = 10**18  # PerpMarket funding rate: 1e18 = 100 % per second
PREMIUM_UNIT = 10**18  # PerpMarket premium (mark over index): 1e18 = 100 %
SECONDS_PER_HOUR = 3_600
HOURS_PER_YEAR = 24 * 365
FUNDING_INTERVALS = {"1h": 3_600, "8h": 8 * 3_600}


def parse_decimal(text: str, what: str) -> Decimal:
    """A finite decimal from user text ("1,000.5" is refused: no thousands separators)."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise UserError(f"{what} '{text}' is not a number") from None
    if not value.is_finite():
        raise UserError(f"{what} '{text}' is not a finite number")
    return value


def to_wei(amount: Decimal, decimals: int, what: str = "amount") -> int:
    """Whole-unit decimal to integer wei; refuses more precision than the token has."""
    scaled = amount.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise UserError(f"{what} {amount} has more than {decimals} decimals")
    return int(scaled)


def parse_amount(text: str, decimals: int, what: str = "amount") -> int:
    """A strictly positive token amount typed in whole units, as wei."""
    value = parse_decimal(text, what)
    if value <= 0:
        raise UserError(f"{what} must be positive, got {text}")
    wei = to_wei(value, decimals, what)
    return wei


def from_wei(wei: int, decimals: int) -> Decimal:
    return Decimal(wei).scaleb(-decimals)


def fmt_units(wei: int, decimals: int, places: int = 2) -> str:
    """`1234567891, 6` -> '1,234.56' (rounded down, never overstating a balance)."""
    value = from_wei(wei, decimals).quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
    return f"{value:,.{places}f}"


def price_to_e8(usd: Decimal) -> int:
    """A USD price as the feed's 8-decimal integer (rounded half-even to 1e-8)."""
    if usd <= 0:
        raise UserError(f"price must be positive, got {usd}")
    return int(usd.scaleb(PRICE_DECIMALS).to_integral_value(rounding=ROUND_HALF_EVEN))


def price_from_e8(price_e8: int) -> Decimal:
    return Decimal(price_e8).scaleb(-PRICE_DECIMALS)


def parse_rate(text: str, what: str = "funding rate") -> Decimal:
    """A signed decimal rate; a trailing '%' divides by 100 and a trailing 'bps' by 10,000
    ("0.01%" == "1bps" == "0.0001")."""
    raw = text.strip()
    if raw.endswith("%"):
        return parse_decimal(raw[:-1], what) / 100
    if raw.lower().endswith("bps"):
        return parse_decimal(raw[:-3], what) / 10_000
    return parse_decimal(raw, what)


def premium_to_e18(premium: Decimal) -> int:
    """A decimal premium (0.002 = +0.2 %) as PerpMarket's 1e18 = 100 % integer, truncated
    toward zero."""
    return int((premium * PREMIUM_UNIT).to_integral_value(rounding=ROUND_DOWN))


def premium_from_e18(premium_e18: int) -> Decimal:
    """PerpMarket's 1e18 = 100 % premium as a decimal fraction."""
    return Decimal(premium_e18) / PREMIUM_UNIT


def rate_per_second_e18(rate: Decimal, interval_seconds: int) -> int:
    """A rate per `interval_seconds` (decimal) as PerpMarket's 1e18-per-second integer,
    truncated toward zero (the market never charges more than was asked)."""
    return int((rate * RATE_UNIT / interval_seconds).to_integral_value(rounding=ROUND_DOWN))


def rate_per_hour(rate_per_second_e18_: int) -> Decimal:
    """PerpMarket's 1e18-per-second rate as a decimal rate per hour."""
    return Decimal(rate_per_second_e18_) * SECONDS_PER_HOUR / RATE_UNIT


def apr(rate_per_hour_: Decimal) -> Decimal:
    """Simple annualised rate (no compounding) from a rate per hour."""
    return rate_per_hour_ * HOURS_PER_YEAR
