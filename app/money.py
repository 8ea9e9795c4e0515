"""Money: integer minor units with an ISO 4217 currency; Decimal for rates; explicit rounding."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, DecimalException

# Minor-unit exponents for the currencies we accept; anything else is rejected.
EXPONENTS = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "CHF": 2, "SEK": 2, "JPY": 0}
CURRENCIES = tuple(sorted(EXPONENTS))
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


_GROUPED = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


def _ungroup(text: str) -> str:
    """Drop thousands separators written the usual way ("1,234.50"); any other comma is an error."""
    if "," not in text:
        return text
    if not _GROUPED.match(text):
        raise ValueError(f"{text!r} is not an amount")
    return text.replace(",", "")


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units (cents) of a currency."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("Money.amount must be an int of minor units")
        if self.currency not in EXPONENTS:
            raise ValueError(f"unsupported currency {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} and {other.currency}")

    def times(self, factor: Decimal | int, rounding: str = ROUND_HALF_EVEN) -> Money:
        """Multiply by a Decimal factor, rounding to a whole minor unit (banker's rounding by default)."""
        if isinstance(factor, float):
            raise TypeError("use Decimal, never float, for money factors")
        exact = Decimal(self.amount) * Decimal(factor)
        return Money(int(exact.quantize(Decimal(1), rounding=rounding)), self.currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Parse a major-unit string like "49.00" into minor units; more decimals than the currency has is an error."""
        if currency not in EXPONENTS:
            raise ValueError(f"unsupported currency {currency!r}")
        exponent = EXPONENTS[currency]
        try:
            value = Decimal(_ungroup(text.strip()))
            minor = value.scaleb(exponent)
        except DecimalException:
            raise ValueError(f"not an amount: {text!r}") from None
        if not minor.is_finite():
            raise ValueError(f"not an amount: {text!r}")
        if minor != minor.to_integral_value():
            raise ValueError(f"{currency} has {exponent} decimal places")
        return cls(int(minor), currency)

    def major(self) -> Decimal:
        """The amount in major units, exact."""
        return Decimal(self.amount).scaleb(-EXPONENTS[self.currency])

    def format(self) -> str:
        """Human display, e.g. $49.00 or 500.00 CHF."""
        exponent = EXPONENTS[self.currency]
        number = f"{abs(self.major()):,.{exponent}f}"
        sign = "-" if self.amount < 0 else ""
        symbol = SYMBOLS.get(self.currency)
        return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {self.currency}"

    def __str__(self) -> str:
        return self.format()
