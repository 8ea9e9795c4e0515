"""Billing periods and proration, as pure functions (no database).

Periods run from a billing anchor in whole months (annual: 12 months), each end computed from the anchor,
not from the previous end, so a month-end anchor never drifts (Jan 31 → Feb 28 → Mar 31).

Proration is by the second, as Stripe computes it: the share of a price for [a, b) within the period
[start, end) is price × (b − a) / (end − start). Rounding (half-even, to a whole minor unit) is applied to
the cumulative share from the period start, and a share is the difference of two cumulative values:
each share is its exact value rounded once, and the shares of any split of a period add up to exactly
the price, so splitting never creates or loses a minor unit.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

MONTHS = {"monthly": 1, "annual": 12}


def add_months(anchor: datetime, months: int) -> datetime:
    """anchor + months, the day clamped to the target month's length (Jan 31 + 1 → Feb 28/29)."""
    index = anchor.month - 1 + months
    year, month = anchor.year + index // 12, index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def boundary(anchor: datetime, interval: str, n: int) -> datetime:
    """The n-th period boundary after the anchor (n = 0 is the anchor)."""
    return add_months(anchor, MONTHS[interval] * n)


def next_boundary(anchor: datetime, interval: str, after: datetime) -> datetime:
    """The first period boundary strictly after `after`."""
    step = MONTHS[interval]
    n = max(0, ((after.year - anchor.year) * 12 + after.month - anchor.month) // step - 1)
    while boundary(anchor, interval, n) <= after:
        n += 1
    return boundary(anchor, interval, n)


def fraction(start: datetime, end: datetime, a: datetime, b: datetime) -> Decimal:
    """The exact fraction of [start, end) that [a, b) covers, by the second (microseconds ignored)."""
    whole = int((end - start).total_seconds())
    if whole <= 0:
        raise ValueError("a period must have a positive length")
    part = int((b - a).total_seconds())
    return Decimal(part) / Decimal(whole)


def _cumulative(price: int, start: datetime, end: datetime, at: datetime) -> int:
    """round_half_even(price × (at − start) / (end − start)) with the clamps at both ends exact."""
    if at <= start:
        return 0
    if at >= end:
        return price
    seconds = int((at - start).total_seconds())
    whole = int((end - start).total_seconds())
    return int((Decimal(price) * seconds / whole).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def share(price: int, start: datetime, end: datetime, a: datetime, b: datetime) -> int:
    """The part of `price` (minor units) for [a, b) inside the period [start, end)."""
    return _cumulative(price, start, end, b) - _cumulative(price, start, end, a)


@dataclass(frozen=True)
class Proration:
    """The two lines of a mid-period change at `at`: a credit (≤ 0) for the unused part of the old
    price and a charge (≥ 0) for the same part of the new price."""

    at: datetime
    fraction: Decimal  # the remaining part of the period, exact
    credit: int
    debit: int

    @property
    def net(self) -> int:
        return self.credit + self.debit


def prorate(old_price: int, new_price: int, start: datetime, end: datetime, at: datetime) -> Proration:
    """Stripe's proration by the second: credit −old × (end − at)/(end − start), charge +new × the same."""
    if not start <= at <= end:
        raise ValueError("the change must fall within the period")
    return Proration(at, fraction(start, end, at, end), -share(old_price, start, end, at, end),
                     share(new_price, start, end, at, end))
