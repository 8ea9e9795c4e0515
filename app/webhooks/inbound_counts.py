"""Security counts of the inbound door: per UTC day, provider and outcome (accepted, duplicate,
signature_failed, stale, invalid).

The door is public and not rate limited, so a flood of forged requests must cost as little as
possible: each outcome is one HINCRBY on a Redis hash (no database write, and no hot row that every
refused request would lock). A job moves the hash into `inbound_webhook_counts` every minute (taken
atomically and added with an upsert, so never counted twice; put back if the database refuses them;
only a flush killed between taking and committing loses them). When Redis is unreachable the count is
upserted into the database directly, so nothing is lost. The staff page adds the counts still in
Redis to the stored ones, so it is never a minute behind.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from prometheus_client import Counter
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app import clock
from app.extensions import db
from app.webhooks.inbound_models import COUNT_KINDS, InboundWebhookCount

log = logging.getLogger(__name__)

COUNTS_KEY = "iwh:counts"  # hash: "<YYYY-MM-DD>|<provider>|<kind>" → count
INBOUND = Counter("tenantry_inbound_webhooks_total", "Inbound webhook requests by provider and outcome.",
                  ["provider", "outcome"])


def count(provider: str, kind: str) -> None:
    """Count one request's outcome (never raises: counting must not change the answer)."""
    if kind not in COUNT_KINDS:
        raise ValueError(f"unknown count kind {kind}")
    INBOUND.labels(provider, kind).inc()
    day = clock.now().date()
    from app.queue import get_fast_redis

    try:
        get_fast_redis().hincrby(COUNTS_KEY, f"{day.isoformat()}|{provider}|{kind}", 1)
        return
    except RedisError as exc:
        log.warning("inbound webhook count kept in the database, Redis unavailable: %s", exc)
    try:
        with db.engine.begin() as conn:  # its own transaction: the caller's may roll back
            _upsert(conn, day, provider, kind, 1)
    except SQLAlchemyError:
        log.exception("inbound webhook count lost (%s %s): neither Redis nor the database took it", provider, kind)


def _upsert(conn, day: date, provider: str, kind: str, amount: int) -> None:
    """Add `amount` to the (day, provider, kind) row, creating it (one statement, race-free)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = InboundWebhookCount.__table__
    stmt = insert(table).values(day=day, provider=provider, kind=kind, count=amount)
    stmt = stmt.on_conflict_do_update(index_elements=["day", "provider", "kind"],
                                      set_={"count": table.c.count + stmt.excluded.count})
    conn.execute(stmt)


def flush_counts() -> int:
    """Move the counts from Redis into the database (the hash is taken atomically, so a count is never
    moved twice; if the database refuses them they are put back). Safe to run twice."""
    from app.queue import get_redis, take_hashes

    (counts,) = take_hashes([COUNTS_KEY])
    if not counts:
        return 0
    try:
        conn = db.session.connection()
        for field, amount in counts.items():
            day, provider, kind = field.split("|", 2)
            _upsert(conn, date.fromisoformat(day), provider, kind, int(amount))
        db.session.commit()
    except Exception:
        db.session.rollback()
        pipe = get_redis().pipeline(transaction=False)
        for field, amount in counts.items():
            pipe.hincrby(COUNTS_KEY, field, int(amount))
        pipe.execute()
        raise
    return len(counts)


def _pending() -> dict[str, int]:
    """Counts not yet moved from Redis (empty when Redis is unreachable)."""
    from app.queue import get_fast_redis

    try:
        raw = get_fast_redis().hgetall(COUNTS_KEY)
    except RedisError:
        return {}
    return {k.decode(): int(v) for k, v in raw.items()}


def daily_counts(days: int = 7, provider: str | None = None) -> list[tuple[date, dict[str, int]]]:
    """The last `days` UTC days, newest first, each with every kind's count (zeros included)."""
    today = clock.now().date()
    since = today - timedelta(days=days - 1)
    table: dict[date, dict[str, int]] = {since + timedelta(days=n): dict.fromkeys(COUNT_KINDS, 0)
                                         for n in range(days)}
    stmt = select(InboundWebhookCount).where(InboundWebhookCount.day >= since)
    if provider:
        stmt = stmt.where(InboundWebhookCount.provider == provider)
    for row in db.session.scalars(stmt):
        if row.day in table and row.kind in COUNT_KINDS:
            table[row.day][row.kind] += row.count
    for field, amount in _pending().items():
        day_text, row_provider, kind = field.split("|", 2)
        day = date.fromisoformat(day_text)
        if day in table and kind in COUNT_KINDS and (provider is None or row_provider == provider):
            table[day][kind] += amount
    return sorted(table.items(), reverse=True)


def totals(rows: list[tuple[date, dict[str, int]]]) -> dict[str, int]:
    """Each kind's sum over the given days."""
    return {kind: sum(counts[kind] for _, counts in rows) for kind in COUNT_KINDS}
