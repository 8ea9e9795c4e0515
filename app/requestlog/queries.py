"""Read side of the request log: filtered listings, newest first with a keyset cursor, and lookups by
request id. Nothing older than the retention window is ever returned, pruned yet or not."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import Select, and_, or_, select

from app.extensions import db
from app.requestlog import service
from app.requestlog.models import RequestLogEntry

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"^(\d{1,19})\.(\d{1,19})$")


@dataclass
class LogFilters:
    """The request log's filters. `status` is an exact code; `status_class` a hundred (4 → 4xx)."""

    tenant_id: str | None = None
    status: int | None = None
    status_class: int | None = None
    method: str = ""
    route: str = ""
    api_key_id: str = ""
    request_id: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class LogPage:
    entries: list[RequestLogEntry]
    next_before: str | None  # pass as `before` for the next (older) page


def encode_cursor(entry: RequestLogEntry) -> str:
    """The position after `entry` in newest-first order: its time in microseconds and its row."""
    return f"{(entry.at - EPOCH) // timedelta(microseconds=1)}.{entry.id}"


def decode_cursor(raw: str) -> tuple[datetime, int] | None:
    """A cursor as (time, row), or None for anything malformed."""
    match = _CURSOR.match(raw or "")
    if not match:
        return None
    try:
        return EPOCH + timedelta(microseconds=int(match.group(1))), int(match.group(2))
    except OverflowError:
        return None


def _filtered(filters: LogFilters) -> Select:
    stmt = select(RequestLogEntry).where(RequestLogEntry.at >= service.oldest_kept())
    if filters.tenant_id:
        stmt = stmt.where(RequestLogEntry.tenant_id == filters.tenant_id)
    if filters.status is not None:
        stmt = stmt.where(RequestLogEntry.status == filters.status)
    if filters.status_class is not None:
        low = filters.status_class * 100
        stmt = stmt.where(RequestLogEntry.status >= low, RequestLogEntry.status < low + 100)
    if filters.method:
        stmt = stmt.where(RequestLogEntry.method == filters.method)
    if filters.route:
        stmt = stmt.where(RequestLogEntry.route == filters.route)
    if filters.api_key_id:
        stmt = stmt.where(RequestLogEntry.api_key_id == filters.api_key_id)
    if filters.request_id:
        stmt = stmt.where(RequestLogEntry.request_id == filters.request_id)
    if filters.since:
        stmt = stmt.where(RequestLogEntry.at >= filters.since)
    if filters.until:
        stmt = stmt.where(RequestLogEntry.at < filters.until)
    return stmt


def list_entries(filters: LogFilters, limit: int = 50, before: str | None = None) -> LogPage:
    """Entries newest first; `before` is the cursor the previous page handed out."""
    stmt = _filtered(filters)
    position = decode_cursor(before) if before else None
    if position:
        at, row = position
        stmt = stmt.where(or_(RequestLogEntry.at < at, and_(RequestLogEntry.at == at, RequestLogEntry.id < row)))
    rows = list(db.session.scalars(stmt.order_by(RequestLogEntry.at.desc(), RequestLogEntry.id.desc())
                                   .limit(limit + 1)))
    return LogPage(rows[:limit], encode_cursor(rows[limit - 1]) if len(rows) > limit else None)


def by_request_id(request_id: str, tenant_id: str | None = None) -> list[RequestLogEntry]:
    """The entries with this request id, newest first (usually one: a client may reuse its own ids);
    with tenant_id, only that tenant's."""
    return list_entries(LogFilters(tenant_id=tenant_id, request_id=request_id), limit=20).entries


def api_routes() -> list[tuple[str, str]]:
    """(method, rule) of every API route, for the route filter (complete even before any call)."""
    found = set()
    for rule in current_app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            found.update((method, rule.rule) for method in rule.methods - {"HEAD", "OPTIONS"})
    return sorted(found, key=lambda pair: (pair[1], pair[0]))
