"""Rolled-up usage: API calls per hour (by key, route and status class) and per day, and the batches
already applied (so a retried rollup never counts twice)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import ID_LENGTH, TenantScopedMixin
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
    """A metric's total for one tenant and day (api_calls counts 2xx answers: what is billed)."""

    __tablename__ = "usage_daily"
    __table_args__ = (UniqueConstraint("tenant_id", "day", "metric"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    metric: Mapped[str] = mapped_column(String(40))
    value: Mapped[int] = mapped_column(default=0)


class RollupBatch(db.Model):
    """A batch of counters taken from Redis and applied; its id makes the rollup exactly-once."""

    __tablename__ = "usage_rollup_batches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    applied_at: Mapped[datetime] = mapped_column()
