"""Blocks of repeat offenders, refusals counted per minute (never one row per request), staff's
overrides of a tenant's or key's limits, and exemptions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import ID_LENGTH, PublicIdMixin, TenantScopedMixin, TimestampMixin
from app.extensions import db


class RateLimitBlock(PublicIdMixin, TenantScopedMixin, db.Model):
    """An API key blocked for refusing too often; the block itself lives in Redis, this is its record."""

    __tablename__ = "rate_limit_blocks"
    id_prefix = "blk"

    subject_type: Mapped[str] = mapped_column(String(10))  # "key"
    subject_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    subject_name: Mapped[str] = mapped_column(String(120), default="")
    level: Mapped[int] = mapped_column()
    started_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime] = mapped_column()
    lifted_at: Mapped[datetime | None] = mapped_column(default=None)
    lifted_by: Mapped[str] = mapped_column(String(254), default="")


class RateLimitViolation(TenantScopedMixin, db.Model):
    """How many requests of one subject were refused in one minute."""

    __tablename__ = "rate_limit_violations"
    __table_args__ = (UniqueConstraint("tenant_id", "subject_type", "subject_id", "minute"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    subject_type: Mapped[str] = mapped_column(String(10))  # key | ip
    subject_id: Mapped[str] = mapped_column(String(64))  # a key id or an IP address (IPv6 up to 45 chars)
    minute: Mapped[datetime] = mapped_column(index=True)
    count: Mapped[int] = mapped_column(default=0)


class RateLimitOverride(PublicIdMixin, TimestampMixin, TenantScopedMixin, db.Model):
    """Staff's limits for one tenant (api_key_id "") or one of its API keys, instead of (tenant) or on
    top of (key) the plan's. A blank limit keeps the plan's; the per-minute limit may use a window
    strategy instead of GCRA, and a daily cap is a fixed window that resets at 00:00 UTC."""

    __tablename__ = "rate_limit_overrides"
    __table_args__ = (UniqueConstraint("tenant_id", "api_key_id"),)
    id_prefix = "rlo"

    api_key_id: Mapped[str] = mapped_column(String(ID_LENGTH), default="")
    per_second: Mapped[int | None] = mapped_column(default=None)
    per_minute: Mapped[int | None] = mapped_column(default=None)
    per_day: Mapped[int | None] = mapped_column(default=None)
    minute_strategy: Mapped[str] = mapped_column(String(20), default="gcra")
    reason: Mapped[str] = mapped_column(String(300), default="")
    created_by: Mapped[str] = mapped_column(String(254), default="")


class RateLimitExemption(PublicIdMixin, TimestampMixin, db.Model):
    """A client IP network, an API key or a whole tenant that no rate limit applies to (quotas still do)."""

    __tablename__ = "rate_limit_exemptions"
    __table_args__ = (UniqueConstraint("kind", "value"),)
    id_prefix = "rle"

    kind: Mapped[str] = mapped_column(String(10))  # ip | key | tenant
    value: Mapped[str] = mapped_column(String(64))  # a network (CIDR), a key id or a tenant id
    tenant_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None, index=True)
    label: Mapped[str] = mapped_column(String(200), default="")  # what the value names, for the page
    reason: Mapped[str] = mapped_column(String(300), default="")
    created_by: Mapped[str] = mapped_column(String(254), default="")
