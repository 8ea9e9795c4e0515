"""Publish domain events into the outbox, inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app import clock
from app.audit.service import jsonable
from app.db import new_id
from app.deferred import DeferredWrites
from app.events.models import OutboxEvent
from app.extensions import db


def publish(tenant_id: str, event_type: str, payload: dict[str, Any]) -> OutboxEvent | None:
    """Write an outbox row; it commits with the change that caused it and is fanned out after commit.
    Inside defer() the row (its id and time taken now) is kept and written with the others by
    publish_many(): None is returned then."""
    deferred = _deferred.pending(db.session)
    if deferred is not None:
        deferred.append({"id": new_id(OutboxEvent.id_prefix), "tenant_id": tenant_id, "type": event_type,
                         "payload": jsonable(payload), "created_at": clock.now(), "dispatched_at": None})
        return None
    event = OutboxEvent(tenant_id=tenant_id, type=event_type, payload=jsonable(payload), created_at=clock.now())
    db.session.add(event)
    return event


def publish_many(session: Session, rows: list[dict[str, Any]]) -> int:
    """Write many outbox rows (as publish() makes them inside defer()) in one multi-row INSERT, in the
    caller's transaction. Returns how many."""
    if rows:
        session.execute(insert(OutboxEvent.__table__), rows)
    return len(rows)


_deferred = DeferredWrites("outbox_deferred", publish_many)
defer = _deferred.block  # within the block, rows are kept and written by publish_many() in one INSERT
