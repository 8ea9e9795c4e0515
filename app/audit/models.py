"""The append-only, hash-chained audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import ID_LENGTH, PublicIdMixin
from app.extensions import db

PLATFORM_CHAIN = "platform"
OUTCOMES = ("success", "denied", "error")
SEVERITIES = ("info", "warning", "critical")
ACTOR_TYPES = ("user", "api_key", "staff", "system", "platform_key")


class AuditEvent(PublicIdMixin, db.Model):
    """One audit event. UPDATE and DELETE are rejected by a database trigger (see the migration)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        Index("ix_audit_events_tenant_time", "tenant_id", "occurred_at"),
    )
    id_prefix = "aud"

    chain: Mapped[str] = mapped_column(String(ID_LENGTH))  # tenant id, or "platform"
    seq: Mapped[int] = mapped_column()
    tenant_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(80), index=True)
    outcome: Mapped[str] = mapped_column(String(10), default="success")
    severity: Mapped[str] = mapped_column(String(10), default="info")
    actor_type: Mapped[str] = mapped_column(String(20))  # user | api_key | staff | system | platform_key
    actor_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None, index=True)
    actor_display: Mapped[str] = mapped_column(String(254), default="")
    targets: Mapped[list] = mapped_column(default=list)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(400), default=None)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    changes: Mapped[dict] = mapped_column(default=dict)
    meta: Mapped[dict] = mapped_column("metadata", default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChain(db.Model):
    """The head of each hash chain (locked FOR UPDATE while appending, so sequences never collide)."""

    __tablename__ = "audit_chains"

    chain: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    hash: Mapped[str] = mapped_column(String(64), default="0" * 64)
