"""Reads for outbound webhooks: a tenant's endpoints, messages and attempts (the catalogue: event_types.py)."""

from __future__ import annotations

from sqlalchemy import select

from app.db import Slice, keyset
from app.errors import NotFound
from app.extensions import db
from app.webhooks.outbound_models import WebhookAttempt, WebhookEndpoint, WebhookMessage


def endpoints_slice(tenant_id: str, limit: int, starting_after: str | None) -> Slice:
    return keyset(db.session, select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id),
                  WebhookEndpoint.id, limit, starting_after)


def messages_slice(tenant_id: str, limit: int, starting_after: str | None, event_type: str | None = None) -> Slice:
    stmt = select(WebhookMessage).where(WebhookMessage.tenant_id == tenant_id)
    if event_type:
        stmt = stmt.where(WebhookMessage.event_type == event_type)
    return keyset(db.session, stmt, WebhookMessage.id, limit, starting_after)


def get_message(tenant_id: str, message_id: str) -> WebhookMessage:
    from app.db import is_id

    if not is_id(message_id, "msg"):  # never sent to the database (PostgreSQL refuses NUL characters)
        raise NotFound("No such event.")
    message = db.session.scalar(select(WebhookMessage).where(WebhookMessage.id == message_id,
                                                             WebhookMessage.tenant_id == tenant_id))
    if message is None:
        raise NotFound("No such event.")
    return message


def attempts_slice(tenant_id: str, message_id: str, limit: int, starting_after: str | None) -> Slice:
    """Every attempt to deliver one of the tenant's messages, to any endpoint, newest first."""
    get_message(tenant_id, message_id)
    return keyset(db.session, select(WebhookAttempt).where(WebhookAttempt.tenant_id == tenant_id,
                                                           WebhookAttempt.message_id == message_id),
                  WebhookAttempt.id, limit, starting_after)
