"""Money as integer minor units plus an ISO 4217 currency code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor-unit exponents that differ from the default of 2.
_EXPONENTS: dict[str, int] = {
    # zero-decimal
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0,
    # three-decimal
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # four-decimal units of account
    "CLF": 4, "UYW": 4,
}

_SYMBOLS: dict[str, str] = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$",
                            "AUD": "A$"}


# Larger than any real order (a quintillion minor units): a value past it is a bad answer.
MAX_MINOR_UNITS = 10**18


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


def normalise_currency(code: str) -> str:
    """Return the upper-case ISO 4217 code, or raise MoneyError."""
    if not isinstance(code, str) or len(code.strip()) != 3 or not code.strip().isalpha():
        raise MoneyError(f"not an ISO 4217 currency code: {code!r}")
    return code.strip().upper()


def exponent(currency: str) -> int:
    """Number of minor-unit digits for a currency (JPY 0, USD 2, KWD 3)."""
    return _EXPONENTS.get(normalise_currency(currency), 2)


@dataclass(frozen=True, order=True)
class Money:
    """An exact amount: integer minor units in one currency."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise MoneyError(f"minor units must be an int, got {self.amount_minor!r}")
        if abs(self.amount_minor) > MAX_MINOR_UNITS:
            raise MoneyError("amount is too large to be real")
        object.__setattr__(self, "currency", normalise_currency(self.currency))

    @classmethod
    def from_decimal(cls, value: str | int | Decimal, currency: str) -> Money:
        """Convert a major-unit decimal ("25.00", Decimal) to minor units, rounding half up."""
        if isinstance(value, float):
            # Floats already lost exactness; callers must pass the upstream string.
            raise MoneyError("refusing a float amount; pass the decimal string")
        try:
            dec = Decimal(str(value).strip())
        except (InvalidOperation, ValueError) as exc:
            raise MoneyError(f"not a decimal amount: {value!r}") from exc
        if not dec.is_finite():
            raise MoneyError(f"not a finite amount: {value!r}")
        places = exponent(currency)
        if dec.adjusted() > 18:
            raise MoneyError("amount is too large to be real")
        try:
            minor = (dec.scaleb(places)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        except InvalidOperation as exc:
            raise MoneyError(f"amount can't be represented: {value!r}") from exc
        return cls(int(minor), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in the given currency."""
        return cls(0, currency)

    def to_decimal(self) -> Decimal:
        """Major-unit Decimal value (exact)."""
        return Decimal(self.amount_minor).scaleb(-exponent(self.currency))

    def _check(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise MoneyError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def format(self) -> str:
        """Human form for agents: "$25.00", "¥1,500", "12.500 KWD"."""
        places = exponent(self.currency)
        sign = "-" if self.amount_minor < 0 else ""
        body = f"{abs(self.to_decimal()):,.{places}f}"
        symbol = _SYMBOLS.get(self.currency)
        if symbol:
            return f"{sign}{symbol}{body}"
        return f"{sign}{body} {self.currency}"

    def __str__(self) -> str:
        return self.format()


def sum_in(currency: str, amounts: Iterable[Money]) -> Money:
    """Sum the amounts in `currency`, skipping others (a currency flag reports those)."""
    acc = Money.zero(currency)
    for amount in amounts:
        if amount.currency == acc.currency:
            acc = acc + amount
    return acc


def totals(amounts: Iterable[Money]) -> dict[str, Money]:
    """One total per currency, in currency-code order; amounts of different currencies never mix."""
    acc: dict[str, Money] = {}
    for amount in amounts:
        acc[amount.currency] = acc[amount.currency] + amount if amount.currency in acc else amount
    return dict(sorted(acc.items()))


def format_totals(amounts: Iterable[Money], joiner: str = " and ") -> str:
    """"$40.00" or "$5.00 and €5.00": a total per currency, never summed across them."""
    return joiner.join(total.format() for total in totals(amounts).values())
