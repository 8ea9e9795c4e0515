"""Helpers for the tenant portal tests: reading the audit trail and fresh rows after requests."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.extensions import db


@pytest.fixture
def audit_events(ctx):
    """audit_events(tenant_id, action=None) → that tenant's events, oldest first, read fresh."""

    def read(tenant_id: str, action: str | None = None) -> list[AuditEvent]:
        db.session.expire_all()
        stmt = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        return list(db.session.scalars(stmt.order_by(AuditEvent.seq)))

    return read


@pytest.fixture
def fresh(ctx):
    """fresh(Model, **where) → the rows matching, re-read from the database."""

    def read(model, **where):
        db.session.expire_all()
        return list(db.session.scalars(select(model).filter_by(**where)))

    return read


def assert_denied(audit_events, tenant, permission: str, path: str) -> None:
    """The 403 left an access.denied event naming the permission and the path."""
    denied = [e for e in audit_events(tenant.id, "access.denied")
              if e.meta.get("permission") == permission and e.meta.get("path") == path]
    assert denied, f"no audited denial of {permission} on {path}"
    assert denied[-1].outcome == "denied"
