"""Outbound webhooks: tenants' endpoints, the event-type catalogue, messages, deliveries and attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import ID_LENGTH, PublicIdMixin, TenantScopedMixin
from app.extensions import db

ENDPOINT_STATUSES = ("enabled", "disabled")
CIRCUIT_STATES = ("closed", "open", "half_open")
DELIVERY_STATUSES = ("pending", "succeeded", "failed", "dead")  # failed: the last attempt failed, more to come
MAX_RESPONSE_BYTES = 20_000  # response bodies and headers are cut here when stored (as Svix does)


class WebhookEndpoint(PublicIdMixin, TenantScopedMixin, db.Model):
    """A tenant's URL that receives the events it subscribes to (`event_types` empty or None: all).

    The signing secret is stored encrypted (app.webhooks.secrets); after a rotation the previous one
    keeps signing too until `previous_secret_expires_at`. `rate_limit` caps deliveries per second.
    Circuit breaker state and the start of an unbroken run of failures (`failing_since`, for the
    auto-disable) live here too.
    """

    __tablename__ = "webhook_endpoints"
    id_prefix = "ep"

    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list | None] = mapped_column(default=None)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(20), default="enabled")
    disabled_reason: Mapped[str] = mapped_column(String(500), default="")
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)
    rate_limit: Mapped[int | None] = mapped_column(default=None)  # messages per second; None: unlimited
    circuit_state: Mapped[str] = mapped_column(String(20), default="closed")
    circuit_opened_at: Mapped[datetime | None] = mapped_column(default=None)
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookEventType(db.Model):
    """The catalogue of event types tenants can subscribe to (platform-wide, not tenant-owned)."""

    __tablename__ = "webhook_event_types"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)  # e.g. invoice.paid
    description: Mapped[str] = mapped_column(String(500), default="")
    example: Mapped[dict] = mapped_column(default=dict)
    deprecated: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column()


class WebhookTenantEventType(PublicIdMixin, TenantScopedMixin, db.Model):
    """An event type a tenant defined for the events it publishes itself (`POST /api/v1/events`); its
    endpoints subscribe to it like to the catalogue's. Names never shadow the catalogue's."""

    __tablename__ = "webhook_tenant_event_types"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)
    id_prefix = "etp"

    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(500), default="")
    example: Mapped[dict] = mapped_column(default=dict)
    deprecated: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class WebhookMessage(PublicIdMixin, TenantScopedMixin, db.Model):
    """One event to send: its id is the `webhook-id` on every attempt to every endpoint."""

    __tablename__ = "webhook_messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_webhook_messages_tenant_created", "tenant_id", "created_at"),
    )
    id_prefix = "msg"

    event_type: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict] = mapped_column(default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column()


class WebhookDelivery(PublicIdMixin, TenantScopedMixin, db.Model):
    """The state of one message to one endpoint. `next_attempt_at` is when it is due (None once it
    succeeded or died); `queued_until` marks a job already enqueued for it (the sweeper waits until then);
    `locked_until` is the lease of the job sending it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("message_id", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    )
    id_prefix = "dlv"

    message_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("webhook_messages.id"))
    endpoint_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("webhook_endpoints.id"))
    event_type: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    queued_until: Mapped[datetime | None] = mapped_column(default=None)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column()
    # Not read anywhere: it tells the session that messages are inserted before their deliveries, so a
    # batch of both is flushed as two multi-row INSERTs in that order.
    message: Mapped[WebhookMessage] = relationship(lazy="raise")


class WebhookAttempt(PublicIdMixin, TenantScopedMixin, db.Model):
    """One HTTP attempt of a delivery, as the endpoint answered it (body and headers cut at 20 KB)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "attempt"),)
    id_prefix = "att"

    delivery_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("webhook_deliveries.id"))
    message_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    endpoint_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    attempt: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(20))  # succeeded | failed | dead (the last, failed)
    http_status: Mapped[int | None] = mapped_column(default=None)
    response_headers: Mapped[dict] = mapped_column(default=dict)
    response_body: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column()


RECOVERY_STATUSES = ("queued", "running", "succeeded", "failed")


class WebhookRecovery(PublicIdMixin, TenantScopedMixin, db.Model):
    """A request to send again what failed to an endpoint between `since` and `until` (when it was asked),
    worked through by a background job in batches: `done` of `total` re-queued so far, `cursor` the last
    delivery id handled (a job that dies resumes there)."""

    __tablename__ = "webhook_recoveries"
    __table_args__ = (Index("ix_webhook_recoveries_endpoint", "endpoint_id", "created_at"),)
    id_prefix = "rcv"

    endpoint_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("webhook_endpoints.id"))
    since: Mapped[datetime] = mapped_column()
    until: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(20), default="queued")
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    cursor: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)
    error: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
