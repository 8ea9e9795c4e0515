"""Drain the request log's Redis stream (app/requestlog/stream.py) into the request_log table.

The drain reads with a consumer group, so any number of runs (on any hosts) can work at once, each
getting different entries. A batch is inserted with ON CONFLICT DO NOTHING on (request id, tenant,
time) and committed; only then are its entries acknowledged and deleted from the stream. So:

- a run that dies after reading leaves its entries pending; a later run claims them (XAUTOCLAIM) once
  they have been idle for CLAIM_IDLE_MS and stores them;
- a run that dies after committing but before acknowledging gets its entries delivered again, and
  the unique key makes the second insert a no-op: stored exactly once, nothing lost;
- an entry appended twice (a meter flush retried after an ambiguous failure) is stored once as well.

Entries of tenants that no longer exist, entries already past retention and entries that cannot be
read are dropped (and acknowledged, so they never block the stream).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from redis import Redis
from redis.exceptions import ResponseError
from sqlalchemy.dialects import postgresql, sqlite

from app import clock
from app.extensions import db
from app.requestlog import stream
from app.requestlog.models import PATH_LENGTH, REQUEST_ID_LENGTH, ROUTE_LENGTH, RequestLogEntry

log = logging.getLogger(__name__)

GROUP = "drain"
BATCH = 1000  # entries read, inserted and acknowledged together
INSERT_CHUNK = 500  # rows per INSERT statement (SQLite allows 32766 bound parameters)
CLAIM_IDLE_MS = 60_000  # a pending entry idle this long belongs to a run that died: claim it
CONSUMER_IDLE_MS = 10 * 60_000  # consumers with nothing pending and idle this long are forgotten
RUN_SECONDS = 20.0  # one run stops reading new batches after this long (the next run goes on)
UNIQUE = ("request_id", "tenant_id", "at")


@dataclass
class DrainResult:
    read: int = 0  # entries taken from the stream (and acknowledged)
    stored: int = 0  # rows inserted (entries seen before are not counted again)
    dropped: int = 0  # unreadable, past retention, or of a tenant that no longer exists

    def __iadd__(self, other: DrainResult) -> DrainResult:
        self.read += other.read
        self.stored += other.stored
        self.dropped += other.dropped
        return self


def consumer_name() -> str:
    """This process's name in the consumer group (a run that dies leaves it behind, with its entries)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def ensure_group(redis: Redis) -> None:
    """Create the stream and the group (from the stream's start) unless they exist."""
    try:
        redis.xgroup_create(stream.STREAM_KEY, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def drain(batch: int = BATCH, claim_idle_ms: int = CLAIM_IDLE_MS, budget_seconds: float = RUN_SECONDS,
          consumer: str | None = None) -> DrainResult:
    """Move what is in the stream into the database: abandoned entries first, then new ones."""
    from app.queue import get_redis

    redis = get_redis()
    ensure_group(redis)
    me = consumer or consumer_name()
    claim_abandoned(redis, me, claim_idle_ms, batch)
    result = DrainResult()
    deadline = time.monotonic() + budget_seconds
    # "0": this consumer's pending entries (the ones just claimed); ">": entries never delivered.
    for start in ("0", ">"):
        while time.monotonic() < deadline:
            reply = redis.xreadgroup(GROUP, me, {stream.STREAM_KEY: start}, count=batch)
            entries = reply[0][1] if reply else []
            if not entries:
                break
            result += store(redis, entries)
    forget_idle_consumers(redis, me)
    return result


def claim_abandoned(redis: Redis, me: str, min_idle_ms: int, batch: int = BATCH) -> int:
    """Take over entries other consumers read but never acknowledged (their run died)."""
    claimed, cursor = 0, "0-0"
    while True:
        reply = redis.xautoclaim(stream.STREAM_KEY, GROUP, me, min_idle_ms, start_id=cursor, count=batch)
        cursor, entries = reply[0], reply[1]
        claimed += len(entries)
        if cursor in (b"0-0", "0-0"):
            return claimed


def store(redis: Redis, entries: list[tuple[bytes, dict]]) -> DrainResult:
    """Insert one batch, commit, then acknowledge and delete its entries from the stream."""
    ids = [entry_id for entry_id, _ in entries]
    rows: dict[tuple, dict] = {}
    unreadable = 0
    for entry_id, fields in entries:
        try:
            row = _row(stream.parse(fields or {}))
        except (KeyError, ValueError, UnicodeDecodeError, OverflowError):
            log.warning("request log: dropping unreadable stream entry %r", entry_id)
            unreadable += 1
            continue
        rows[tuple(row[k] for k in UNIQUE)] = row  # an entry appended twice is one row
    kept = _keepable(list(rows.values()))
    stored = insert_rows(kept)
    db.session.commit()
    if ids:
        pipe = redis.pipeline(transaction=False)
        pipe.xack(stream.STREAM_KEY, GROUP, *ids)
        pipe.xdel(stream.STREAM_KEY, *ids)
        pipe.execute()
    return DrainResult(read=len(ids), stored=stored, dropped=unreadable + len(rows) - len(kept))


def _row(value: dict) -> dict:
    """A parsed entry clipped to the columns' sizes."""
    return {
        "tenant_id": value["tenant_id"], "at": value["at"], "method": value["method"][:10],
        "route": value["route"][:ROUTE_LENGTH], "path": value["path"][:PATH_LENGTH], "status": value["status"],
        "duration_ms": value["duration_ms"], "api_key_id": value["api_key_id"][:40],
        "request_id": value["request_id"][:REQUEST_ID_LENGTH], "ip": value["ip"][:64],
    }


def _keepable(rows: list[dict]) -> list[dict]:
    """Rows of tenants that exist, not yet past retention."""
    from app.tenancy.queries import tenants_by_id

    known = tenants_by_id({row["tenant_id"] for row in rows})
    cutoff = clock.now() - timedelta(days=current_app.config["REQUEST_LOG_RETENTION_DAYS"])
    return [row for row in rows if row["tenant_id"] in known and row["at"] >= cutoff]


def insert_rows(rows: list[dict]) -> int:
    """INSERT … ON CONFLICT DO NOTHING (PostgreSQL or SQLite); returns how many rows were new."""
    if not rows:
        return 0
    dialect = db.session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"the request log drain does not support {dialect}")
    table = RequestLogEntry.__table__
    stored = 0
    for start in range(0, len(rows), INSERT_CHUNK):
        statement = insert(table).values(rows[start:start + INSERT_CHUNK]).on_conflict_do_nothing(
            index_elements=list(UNIQUE)).returning(table.c.id)  # only new rows come back
        stored += len(db.session.execute(statement).all())
    return stored


def forget_idle_consumers(redis: Redis, me: str) -> int:
    """Each run is a new consumer (its process id): delete the ones with nothing pending, long idle."""
    forgotten = 0
    for consumer in redis.xinfo_consumers(stream.STREAM_KEY, GROUP):
        name = consumer["name"].decode() if isinstance(consumer["name"], bytes) else consumer["name"]
        if name != me and not consumer["pending"] and consumer["idle"] > CONSUMER_IDLE_MS:
            redis.xgroup_delconsumer(stream.STREAM_KEY, GROUP, name)
            forgotten += 1
    return forgotten


def backlog() -> int | None:
    """Entries in the stream not yet stored (None when Redis cannot be asked)."""
    from redis.exceptions import RedisError

    from app.queue import get_redis

    try:
        return int(get_redis().xlen(stream.STREAM_KEY))
    except RedisError:
        return None
