"""Request log retention: rows older than REQUEST_LOG_RETENTION_DAYS are deleted in batches."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select

from app import clock
from app.extensions import db
from app.requestlog.models import RequestLogEntry

PRUNE_BATCH = 10_000  # rows deleted per transaction, so no single statement holds locks for long


def retention() -> timedelta:
    return timedelta(days=current_app.config["REQUEST_LOG_RETENTION_DAYS"])


def oldest_kept(now: datetime | None = None) -> datetime:
    """The start of the retention window: anything before it is pruned (and never shown)."""
    return (now or clock.now()) - retention()


def prune(batch: int = PRUNE_BATCH) -> int:
    """Delete rows past retention, `batch` at a time, each batch its own transaction; returns how many.
    Safe to run twice or concurrently (a row deleted by another run is simply not found)."""
    cutoff = oldest_kept()
    total = 0
    while True:
        doomed = select(RequestLogEntry.id).where(RequestLogEntry.at < cutoff).limit(batch)
        result = db.session.execute(delete(RequestLogEntry).where(RequestLogEntry.id.in_(doomed))
                                    .execution_options(synchronize_session=False))
        db.session.commit()
        deleted = result.rowcount or 0
        total += deleted
        if deleted < batch:
            return total
