"""Blocks of repeat offenders, and refusals counted per minute (never one row per request)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import ID_LENGTH, PublicIdMixin, TenantScopedMixin
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
    subject_type: Mapped[str] = mapped_column(String(10))
    subject_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    minute: Mapped[datetime] = mapped_column(index=True)
    count: Mapped[int] = mapped_column(default=0)
