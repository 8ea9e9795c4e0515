"""Request log test helpers: API calls that get logged, and rows written straight to the table."""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime, timedelta

from app import clock
from app.extensions import db
from app.requestlog import drain

_n = itertools.count(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def entry(tenant_id: str, **fields) -> dict:
    """A request log row; every column can be overridden."""
    row = {
        "tenant_id": tenant_id, "at": clock.now(), "method": "GET", "route": "/api/v1/tenant",
        "path": "/api/v1/tenant", "status": 200, "duration_ms": 12.5, "api_key_id": "key_none",
        "request_id": secrets.token_hex(12), "ip": "203.0.113.7",
    }
    row.update(fields)
    return row


def insert(*rows: dict) -> None:
    drain.insert_rows(list(rows))
    db.session.commit()


def series(tenant_id: str, count: int, start: datetime | None = None, step: timedelta = timedelta(minutes=1),
           **fields) -> list[dict]:
    """`count` rows one `step` apart going back from `start` (newest first), inserted."""
    start = start or clock.now()
    rows = [entry(tenant_id, at=start - n * step, request_id=f"req-{next(_n):06d}", **fields) for n in range(count)]
    insert(*rows)
    return rows
