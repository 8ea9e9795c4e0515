"""Stored responses for Idempotency-Key on API POSTs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import ID_LENGTH, PublicIdMixin, TenantScopedMixin
from app.extensions import db


class IdempotencyKey(PublicIdMixin, TenantScopedMixin, db.Model):
    """A POST seen with an Idempotency-Key: its body's hash and, once done, its response."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "key"),)
    id_prefix = "idk"

    key: Mapped[str] = mapped_column(String(255))
    route: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(index=True)


class PlatformIdempotencyKey(PublicIdMixin, db.Model):
    """The same for the staff API, per platform key (no tenant owns these requests)."""

    __tablename__ = "platform_idempotency_keys"
    __table_args__ = (UniqueConstraint("platform_key_id", "key"),)
    id_prefix = "pidk"

    platform_key_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("platform_api_keys.id"))
    key: Mapped[str] = mapped_column(String(255))
    route: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(index=True)
