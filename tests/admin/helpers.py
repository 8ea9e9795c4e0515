"""Small helpers for the staff page tests."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.extensions import db


def fresh() -> None:
    """End the test's own read transaction so it sees what the requests committed."""
    db.session.rollback()


def audit_events(action: str, **where) -> list[AuditEvent]:
    """Committed audit events with this action (and column values), oldest first."""
    fresh()
    stmt = select(AuditEvent).where(AuditEvent.action == action)
    for column, value in where.items():
        stmt = stmt.where(getattr(AuditEvent, column) == value)
    return list(db.session.scalars(stmt.order_by(AuditEvent.id)))


def text(response) -> str:
    return response.get_data(as_text=True)


def follow(client, response):
    """Follow a 303 after a POST, like a browser."""
    assert response.status_code == 303, (response.status_code, text(response)[:1000])
    return client.get(response.headers["Location"])


def is_fragment(response, root_id: str) -> bool:
    """The body is only the partial whose root carries `root_id` (no page chrome)."""
    body = text(response).lstrip()
    return "<html" not in body and "<nav class=\"nav\"" not in body and bool(
        re.match(r'(\{#.*?#\}\s*)?<(div|section)[^>]*\bid="%s"' % re.escape(root_id), body, re.S)
    )
