"""Rolled-up usage: API calls per hour (by key, route and status class), every metric per day, the
distinct values behind unique_count metrics, the batches already applied (so a retried rollup never
counts twice), and the catalogue of metrics staff define."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import ID_LENGTH, PublicIdMixin, TenantScopedMixin, TimestampMixin
from app.extensions import db


class UsageHourly(TenantScopedMixin, db.Model):
    """API calls in one hour, per API key, route and status class (2xx, 4xx, 5xx)."""

    __tablename__ = "usage_hourly"
    __table_args__ = (UniqueConstraint("tenant_id", "hour", "api_key_id", "route", "status_class"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    hour: Mapped[datetime] = mapped_column(index=True)
    api_key_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    route: Mapped[str] = mapped_column(String(120))
    status_class: Mapped[str] = mapped_column(String(3))
    count: Mapped[int] = mapped_column(default=0)


class UsageDaily(TenantScopedMixin, db.Model):
    """A metric's value for one tenant and day (api_calls counts 2xx answers: what is billed).

    `value` is in the metric's smallest unit (10^-decimals): the day's count, sum, maximum, number of
    distinct values, or the latest value, whose event time is `observed_at`.
    """

    __tablename__ = "usage_daily"
    __table_args__ = (UniqueConstraint("tenant_id", "day", "metric"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    metric: Mapped[str] = mapped_column(String(40))
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    observed_at: Mapped[datetime | None] = mapped_column(default=None)


class UsageUniqueValue(TenantScopedMixin, db.Model):
    """One distinct value of a unique_count metric on one day: the period's count is exact
    (COUNT DISTINCT over the period), never a sum of daily counts."""

    __tablename__ = "usage_unique_values"
    __table_args__ = (UniqueConstraint("tenant_id", "metric", "day", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    metric: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(200))


class RollupBatch(db.Model):
    """A batch of counters taken from Redis and applied; its id makes the rollup exactly-once."""

    __tablename__ = "usage_rollup_batches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    applied_at: Mapped[datetime] = mapped_column()


AGGREGATIONS = {
    "count": "Count of events",
    "sum": "Sum of a property",
    "max": "Maximum of a property",
    "unique_count": "Distinct values of a property",
    "latest": "Latest value of a property",
}


class UsageMetric(PublicIdMixin, TimestampMixin, db.Model):
    """A billable metric staff define: how the events reported for `code` become one number a period.

    `field` names the property of the event that sum, max, unique_count and latest aggregate (count
    ignores it). Numeric values may carry up to `decimals` places and are kept as integers of
    10^-decimals, so sums are exact. Aggregation, field and decimals are fixed once events exist.
    """

    __tablename__ = "usage_metrics"
    id_prefix = "met"

    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    unit: Mapped[str] = mapped_column(String(20), default="")
    aggregation: Mapped[str] = mapped_column(String(16))
    field: Mapped[str | None] = mapped_column(String(64), default=None)
    decimals: Mapped[int] = mapped_column(default=0)
    archived_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def archived(self) -> bool:
        return self.archived_at is not None
