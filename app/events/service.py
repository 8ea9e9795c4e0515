"""Publish domain events into the outbox, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import insert
from sqlalchemy.orm import Session

from app import clock
from app.audit.service import jsonable
from app.db import new_id
from app.events.models import OutboxEvent
from app.extensions import db

DEFERRED_KEY = "outbox_deferred"  # session.info: the rows publish() keeps inside defer()


def publish(tenant_id: str, event_type: str, payload: dict[str, Any]) -> OutboxEvent | None:
    """Write an outbox row; it commits with the change that caused it and is fanned out after commit.
    Inside defer() the row (its id and time taken now) is kept and written with the others by
    publish_many(): None is returned then."""
    deferred = db.session.info.get(DEFERRED_KEY)
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


@contextmanager
def defer(session: Session | None = None) -> Iterator[None]:
    """Within the block, publish() keeps its rows instead of adding one ORM object each; they are written
    by publish_many() when the block ends, or earlier when the session commits (so they always commit
    with the change). An exception drops them with the transaction the caller rolls back."""
    session = session or db.session
    if DEFERRED_KEY in session.info:  # nested: the outer block writes them
        yield
        return
    pending: list[dict[str, Any]] = []
    session.info[DEFERRED_KEY] = pending
    try:
        yield
    except BaseException:
        session.info.pop(DEFERRED_KEY, None)
        raise
    session.info.pop(DEFERRED_KEY, None)
    publish_many(session, pending)


def _write_deferred(session: Session) -> None:
    pending = session.info.get(DEFERRED_KEY)
    if pending:
        rows = list(pending)
        pending.clear()
        publish_many(session, rows)


def _drop_deferred(session: Session, previous_transaction: Any) -> None:
    pending = session.info.get(DEFERRED_KEY)
    if pending and not previous_transaction.nested:
        pending.clear()  # they belonged to the transaction that was rolled back


sa_event.listen(Session, "before_commit", _write_deferred)
sa_event.listen(Session, "after_soft_rollback", _drop_deferred)
