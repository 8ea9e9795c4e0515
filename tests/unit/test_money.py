"""Money: integer minor units, Decimal factors with stated rounding, never float."""

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.money import CURRENCIES, EXPONENTS, Money


class TestParse:
    @pytest.mark.parametrize(
        ("text", "currency", "minor"),
        [
            ("49.00", "USD", 4900),
            ("49", "USD", 4900),
            ("0.01", "EUR", 1),
            ("1,234.50", "GBP", 123450),
            ("  7.5 ", "USD", 750),
            ("-3.25", "USD", -325),
            ("500", "JPY", 500),
        ],
    )
    def test_major_units_become_minor_units(self, text, currency, minor):
        assert Money.parse(text, currency) == Money(minor, currency)

    @pytest.mark.parametrize(("text", "currency"), [("49.001", "USD"), ("0.5", "JPY"), ("1.999", "EUR")])
    def test_more_decimals_than_the_currency_has_is_an_error(self, text, currency):
        with pytest.raises(ValueError, match="decimal places"):
            Money.parse(text, currency)

    @pytest.mark.parametrize("text", ["", "  ", "abc", "12,3a", "NaN", "Infinity", "-inf", "1e999999"])
    def test_garbage_is_a_value_error(self, text):
        with pytest.raises(ValueError):
            Money.parse(text, "USD")

    def test_unknown_currency_is_refused(self):
        with pytest.raises(ValueError):
            Money.parse("1.00", "XYZ")


class TestConstruction:
    def test_amount_must_be_int_minor_units(self):
        for bad in (1.5, Decimal("1"), "100", True):
            with pytest.raises(TypeError):
                Money(bad, "USD")

    def test_currency_must_be_supported(self):
        with pytest.raises(ValueError, match="unsupported currency"):
            Money(100, "usd")


class TestArithmetic:
    def test_add_and_subtract_same_currency(self):
        assert Money(4900, "USD") + Money(101, "USD") == Money(5001, "USD")
        assert Money(4900, "USD") - Money(5000, "USD") == Money(-100, "USD")
        assert -Money(5, "EUR") == Money(-5, "EUR")

    def test_mixing_currencies_is_refused(self):
        with pytest.raises(ValueError, match="USD and EUR"):
            Money(1, "USD") + Money(1, "EUR")
        with pytest.raises(ValueError):
            Money(1, "USD") - Money(1, "GBP")

    def test_times_rounds_half_even_by_default(self):
        # 0.1 cent per call: 5 calls = 0.5 cent → 0 (even); 15 calls = 1.5 cents → 2 (even).
        rate = Money(1, "USD")
        assert rate.times(Decimal("0.5")) == Money(0, "USD")
        assert Money(15, "USD").times(Decimal("0.1")) == Money(2, "USD")
        assert Money(25, "USD").times(Decimal("0.1")) == Money(2, "USD")

    @pytest.mark.parametrize(
        ("rounding", "expected"), [(ROUND_HALF_UP, 3), (ROUND_HALF_EVEN, 2), (ROUND_DOWN, 2), (ROUND_UP, 3)]
    )
    def test_times_uses_the_rounding_it_is_given(self, rounding, expected):
        assert Money(5, "USD").times(Decimal("0.5"), rounding=rounding) == Money(expected, "USD")

    def test_times_is_exact_for_decimal_fractions(self):
        # 1/3 of a month of $49.00, rounded once at the end.
        assert Money(4900, "USD").times(Decimal(1) / Decimal(3)) == Money(1633, "USD")
        assert Money(4900, "USD").times(3) == Money(14700, "USD")

    def test_times_refuses_float(self):
        with pytest.raises(TypeError, match="Decimal"):
            Money(4900, "USD").times(0.5)


class TestFormat:
    def test_display(self):
        assert Money(4900, "USD").format() == "$49.00"
        assert str(Money(-123456, "USD")) == "-$1,234.56"
        assert Money(50000, "CHF").format() == "500.00 CHF"
        assert Money(1500, "JPY").format() == "¥1,500"
        assert Money(5, "EUR").major() == Decimal("0.05")


money = st.builds(
    Money,
    st.integers(min_value=-(10**15), max_value=10**15),
    st.sampled_from(CURRENCIES),
)


@given(money)
def test_parse_reads_back_what_major_and_format_write(m):
    assert Money.parse(str(m.major()), m.currency) == m
    # The number part of the display (thousand separators included) parses back too.
    number = f"{m.major():,.{EXPONENTS[m.currency]}f}"
    assert Money.parse(number, m.currency) == m


@given(money, st.integers(min_value=-(10**15), max_value=10**15))
def test_adding_then_subtracting_is_identity(a, b_amount):
    b = Money(b_amount, a.currency)
    assert a + b - b == a
    assert a + b == b + a


@given(money, st.decimals(min_value=0, max_value=1000, allow_nan=False, allow_infinity=False, places=6))
def test_times_is_within_half_a_minor_unit_of_the_exact_product(m, factor):
    result = m.times(factor)
    assert isinstance(result.amount, int)
    assert abs(Decimal(result.amount) - Decimal(m.amount) * factor) <= Decimal("0.5")
