"""Conversions between what people type and what contracts take."""

from decimal import Decimal

import pytest

from keeper.core.errors import UserError
from keeper.core.fixed import MAX_FUNDING_RATE
from keeper.core.units import (
    apr,
    fmt_units,
    parse_amount,
    parse_rate,
    price_to_e8,
    rate_per_hour,
    rate_per_second_e18,
)


@pytest.mark.parametrize(
    ("text", "wei"), [("1", 10**6), ("12.5", 12_500_000), ("0.000001", 1), (" 7 ", 7 * 10**6)]
)
def test_parse_amount__whole_units_to_wei(text, wei):
    assert parse_amount(text, 6) == wei


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "amount must be positive, got 0"),
        ("-5", "amount must be positive, got -5"),
        ("0.0000001", "amount 1E-7 has more than 6 decimals"),
        ("1,000", "amount '1,000' is not a number"),
        ("abc", "amount 'abc' is not a number"),
        ("NaN", "amount 'NaN' is not a finite number"),
        ("Infinity", "amount 'Infinity' is not a finite number"),
    ],
)
def test_parse_amount__refuses_bad_input(text, message):
    with pytest.raises(UserError) as info:
        parse_amount(text, 6)
    assert str(info.value) == message


def test_rates__per_8h_and_percent_forms_agree():
    assert parse_rate("0.01%") == parse_rate("0.0001") == Decimal("0.0001")
    assert parse_rate("1bps") == parse_rate(" -2.5BPS ") * -Decimal("0.4") == Decimal("0.0001")
    per_second = rate_per_second_e18(Decimal("0.0001"), 8 * 3_600)
    assert per_second == 3_472_222_222  # 0.01 % / 28,800 s, truncated
    assert rate_per_hour(per_second) == Decimal("0.0000124999999992")
    assert rate_per_second_e18(Decimal("-0.0001"), 8 * 3_600) == -per_second  # truncated toward zero
    assert (
        rate_per_second_e18(Decimal("0.04"), 3_600) == MAX_FUNDING_RATE
    )  # Hyperliquid's cap is the market's
    assert apr(Decimal("0.0000125")) == Decimal("0.1095")


def test_price_to_e8__rounds_to_the_feed_precision():
    assert price_to_e8(Decimal("3124.6")) == 312_460_000_000
    assert price_to_e8(Decimal("0.000000015")) == 2  # half-even
    with pytest.raises(UserError, match="price must be positive"):
        price_to_e8(Decimal(0))


def test_fmt_units__rounds_down():
    assert fmt_units(1_234_567_891, 6) == "1,234.56"
    assert fmt_units(-1_500_000, 6) == "-1.50"
