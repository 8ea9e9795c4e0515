"""The transactional outbox: domain events written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicIdMixin, TenantScopedMixin
from app.extensions import db


class OutboxEvent(PublicIdMixin, TenantScopedMixin, db.Model):
    """A domain event waiting to be fanned out (to webhooks, by the webhooks feature)."""

    __tablename__ = "outbox_events"
    id_prefix = "evt"

    type: Mapped[str] = mapped_column(String(80), index=True)
    payload: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
