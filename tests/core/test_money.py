"""Money: exact minor units, zero- and three-decimal currencies, no floats."""

from decimal import Decimal

import pytest

from plugin.core.money import Money, MoneyError, exponent


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [("25.00", "USD", 2500), ("0.1", "usd", 10), ("4500", "JPY", 4500), ("12.345", "KWD", 12345),
     ("19.995", "EUR", 2000), (Decimal("7"), "GBP", 700), ("-3.50", "USD", -350)],
)
def test_from_decimal(value, currency, minor):
    assert Money.from_decimal(value, currency).amount_minor == minor


@pytest.mark.parametrize("bad", ["", "abc", "NaN", "Infinity", "1,000.00"])
def test_from_decimal_rejects_garbage(bad):
    with pytest.raises(MoneyError):
        Money.from_decimal(bad, "USD")


def test_refuses_float():
    with pytest.raises(MoneyError):
        Money.from_decimal(0.1, "USD")  # type: ignore[arg-type]


def test_rejects_bad_currency():
    with pytest.raises(MoneyError):
        Money(100, "US")


def test_arithmetic_refuses_mixed_currencies():
    with pytest.raises(MoneyError):
        Money(100, "USD") + Money(100, "EUR")


@pytest.mark.parametrize(
    ("money", "text"),
    [(Money(2500, "USD"), "$25.00"), (Money(450000, "JPY"), "¥450,000"),
     (Money(12345, "KWD"), "12.345 KWD"), (Money(-150, "EUR"), "-€1.50")],
)
def test_format(money, text):
    assert money.format() == text


def test_exponents():
    assert (exponent("jpy"), exponent("USD"), exponent("BHD")) == (0, 2, 3)
