"""Read side of the audit trail: filtered, newest-first, keyset-paginated listings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, or_, select

from app.audit.models import AuditEvent
from app.db import like_escape
from app.extensions import db


@dataclass
class AuditFilters:
    """Filters as on the audit pages. `actor` matches an actor id or part of the actor's display name;
    `action` matches a prefix (``api_key.`` finds every key event)."""

    tenant_id: str | None = None
    actor: str = ""
    action: str = ""
    outcome: str = ""
    severity: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class AuditPage:
    events: list[AuditEvent]
    next_before: str | None  # pass as `before` for the next (older) page


def filtered(filters: AuditFilters, platform_only: bool = False) -> Select:
    """The events these filters select (no order): for the pages and for exports."""
    stmt = select(AuditEvent)
    if platform_only:
        stmt = stmt.where(AuditEvent.tenant_id.is_(None))
    elif filters.tenant_id:
        stmt = stmt.where(AuditEvent.tenant_id == filters.tenant_id)
    if filters.actor:
        term = filters.actor.strip()
        stmt = stmt.where(or_(AuditEvent.actor_id == term,
                              AuditEvent.actor_display.ilike(f"%{like_escape(term)}%", escape="\\")))
    if filters.action:
        stmt = stmt.where(AuditEvent.action.like(f"{like_escape(filters.action.strip())}%", escape="\\"))
    if filters.outcome:
        stmt = stmt.where(AuditEvent.outcome == filters.outcome)
    if filters.severity:
        stmt = stmt.where(AuditEvent.severity == filters.severity)
    if filters.since:
        stmt = stmt.where(AuditEvent.occurred_at >= filters.since)
    if filters.until:
        stmt = stmt.where(AuditEvent.occurred_at < filters.until)
    return stmt


def list_events(filters: AuditFilters, limit: int = 50, before: str | None = None,
                platform_only: bool = False) -> AuditPage:
    """Events newest first; `before` is the id of the last event on the previous page."""
    stmt = filtered(filters, platform_only)
    if before:
        stmt = stmt.where(AuditEvent.id < before)
    rows = list(db.session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    return AuditPage(rows[:limit], rows[limit - 1].id if len(rows) > limit else None)


def get_event(event_id: str, tenant_id: str | None = None) -> AuditEvent | None:
    """One event; with tenant_id, only if it belongs to that tenant."""
    stmt = select(AuditEvent).where(AuditEvent.id == event_id)
    if tenant_id is not None:
        stmt = stmt.where(AuditEvent.tenant_id == tenant_id)
    return db.session.scalar(stmt)


def recent_for_tenant(tenant_id: str, limit: int = 10) -> list[AuditEvent]:
    return list_events(AuditFilters(tenant_id=tenant_id), limit=limit).events


def known_actions() -> list[str]:
    """Distinct actions seen, for the filter's suggestions."""
    return list(db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
