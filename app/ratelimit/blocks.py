"""Repeat offenders: record the blocks the gate starts, let staff lift them, keep per-minute counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.errors import Conflict, NotFound
from app.extensions import db
from app.ratelimit.gcra import Subject
from app.ratelimit.models import RateLimitBlock, RateLimitViolation
from app.security import Actor


def record_block(tenant_id: str, key_id: str, key_name: str, level: int, seconds: float) -> RateLimitBlock:
    """The gate just blocked a key: keep a record and audit it (the block itself is in Redis)."""
    now = clock.now()
    block = RateLimitBlock(tenant_id=tenant_id, subject_type="key", subject_id=key_id, subject_name=key_name,
                           level=level, started_at=now, expires_at=now + timedelta(seconds=seconds))
    db.session.add(block)
    db.session.flush()
    audit.record(Actor.system("rate limiter"), "ratelimit.blocked", tenant_id=tenant_id, severity="warning",
                 targets=[Target("api_key", key_id, key_name)],
                 metadata={"level": level, "seconds": round(seconds), "block": block.id})
    db.session.commit()
    return block


def lift_block(actor: Actor, block_id: str) -> RateLimitBlock:
    """End a block now. The key's level is kept, so a key that offends again is blocked for longer."""
    from app.queue import get_redis

    block = db.session.get(RateLimitBlock, block_id)
    if block is None:
        raise NotFound("No such block.")
    now = clock.now()
    if block.lifted_at is not None or block.expires_at <= now:
        raise Conflict("This block is no longer active.")
    get_redis().delete(Subject(block.tenant_id, block.subject_id).block_key)
    block.lifted_at, block.lifted_by = now, actor.display[:254]
    audit.record(actor, "ratelimit.block_lifted", tenant_id=block.tenant_id,
                 targets=[Target("api_key", block.subject_id, block.subject_name)],
                 changes={"lifted_at": [None, now]}, metadata={"block": block.id, "level": block.level})
    db.session.commit()
    return block


def active_blocks() -> list[RateLimitBlock]:
    now = clock.now()
    return list(db.session.scalars(
        select(RateLimitBlock).where(RateLimitBlock.lifted_at.is_(None), RateLimitBlock.expires_at > now)
        .order_by(RateLimitBlock.started_at.desc())
    ))


def recent_blocks(limit: int = 50) -> list[RateLimitBlock]:
    return list(db.session.scalars(select(RateLimitBlock).order_by(RateLimitBlock.id.desc()).limit(limit)))


def flush_violations(batch: int = 500) -> int:
    """Move the per-minute refusal counts the gate keeps in Redis into the database (exactly once:
    each tenant's hash is taken atomically, and counts are added to the minute's row)."""
    from app.queue import take_hashes
    from app.tenancy.queries import tenant_id_batches

    moved = 0
    for ids in tenant_id_batches(batch):
        for tenant_id, counts in zip(ids, take_hashes([Subject(t).violations_key for t in ids]), strict=True):
            for field, count in counts.items():
                minute, subject_type, subject_id = field.split("|", 2)
                _add(tenant_id, subject_type, subject_id, datetime.fromtimestamp(int(minute) * 60, UTC), int(count))
                moved += 1
        db.session.commit()
    return moved


def _add(tenant_id: str, subject_type: str, subject_id: str, minute: datetime, count: int) -> None:
    row = db.session.scalar(select(RateLimitViolation).where(
        RateLimitViolation.tenant_id == tenant_id, RateLimitViolation.subject_type == subject_type,
        RateLimitViolation.subject_id == subject_id, RateLimitViolation.minute == minute))
    if row is None:
        db.session.add(RateLimitViolation(tenant_id=tenant_id, subject_type=subject_type, subject_id=subject_id,
                                          minute=minute, count=count))
    else:
        row.count += count


def violation_totals(hours: int = 24, limit: int = 50) -> list[tuple[str, str, str, int, datetime]]:
    """(tenant id, subject type, subject id, refusals, last minute) over the last `hours`, worst first."""
    from sqlalchemy import func

    since = clock.now() - timedelta(hours=hours)
    total = func.sum(RateLimitViolation.count)
    rows = db.session.execute(
        select(RateLimitViolation.tenant_id, RateLimitViolation.subject_type, RateLimitViolation.subject_id,
               total, func.max(RateLimitViolation.minute))
        .where(RateLimitViolation.minute >= since)
        .group_by(RateLimitViolation.tenant_id, RateLimitViolation.subject_type, RateLimitViolation.subject_id)
        .order_by(total.desc()).limit(limit)
    ).all()
    return [tuple(row) for row in rows]
