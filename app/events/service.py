"""Publish domain events into the outbox, inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from app import clock
from app.audit.service import jsonable
from app.events.models import OutboxEvent
from app.extensions import db


def publish(tenant_id: str, event_type: str, payload: dict[str, Any]) -> OutboxEvent:
    """Write an outbox row; it commits with the change that caused it and is fanned out after commit."""
    event = OutboxEvent(tenant_id=tenant_id, type=event_type, payload=jsonable(payload), created_at=clock.now())
    db.session.add(event)
    return event
