"""Inbound webhooks: provider events (Stripe) stored once by their own id, and the door's security counts.

Not tenant-scoped: a Stripe event belongs to the platform's Stripe account; billing maps it to a tenant.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicIdMixin
from app.extensions import db

COUNT_KINDS = ("accepted", "duplicate", "signature_failed", "stale", "invalid")


class InboundWebhookEvent(PublicIdMixin, db.Model):
    """One provider event, received once (a replay of its id is acknowledged, never stored again).

    Status: processed (processed_at set), failed (last_error set, not processed), else pending.
    `next_attempt_at` is when the sweeper should (re-)enqueue it if it is still unprocessed: a minute
    after receipt (its job was lost), the end of a running job's lease, or the next retry after a
    failure; None once processed or given up. `locked_until` is the lease of the job processing it.
    """

    __tablename__ = "inbound_webhook_events"
    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id"),
        Index("ix_inbound_webhook_events_next_attempt_at", "next_attempt_at"),
        Index("ix_inbound_webhook_events_provider_received", "provider", "received_at"),
    )
    id_prefix = "iwh"

    provider: Mapped[str] = mapped_column(String(20))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(120), index=True)
    payload: Mapped[dict] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column()
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def status(self) -> str:
        if self.processed_at is not None:
            return "processed"
        return "failed" if self.last_error else "pending"


class InboundWebhookCount(db.Model):
    """How many inbound webhook requests of one provider had one outcome on one UTC day."""

    __tablename__ = "inbound_webhook_counts"
    __table_args__ = (UniqueConstraint("day", "provider", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    provider: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))  # one of COUNT_KINDS
    count: Mapped[int] = mapped_column(default=0)
