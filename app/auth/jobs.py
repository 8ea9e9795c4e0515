"""RQ jobs for people and sessions."""

from __future__ import annotations

from app.auth import service


def prune_sessions() -> int:
    """Delete session rows that can no longer be used (revoked or past the absolute timeout)."""
    return service.prune_sessions()


TAKE_HASH = "local v = redis.call('HGETALL', KEYS[1]); redis.call('DEL', KEYS[1]); return v"


def flush_last_used(batch: int = 500) -> int:
    """Copy the last-use times the API gate wrote to Redis onto the keys in the database.

    Each tenant's hash is read and deleted atomically (a one-key script, so it works on Redis Cluster
    too), so a use recorded meanwhile is never lost; running it twice writes nothing new.
    """
    from datetime import UTC, datetime

    from sqlalchemy import select

    from app.auth import apikeys
    from app.auth.keycache import last_used_key
    from app.extensions import db
    from app.queue import get_redis
    from app.tenancy.models import Tenant

    redis, changed, after = get_redis(), 0, ""
    take = redis.register_script(TAKE_HASH)
    while True:
        ids = list(db.session.scalars(select(Tenant.id).where(Tenant.id > after).order_by(Tenant.id).limit(batch)))
        if not ids:
            return changed
        after = ids[-1]
        pipe = redis.pipeline(transaction=False)
        for tenant_id in ids:
            take(keys=[last_used_key(tenant_id)], client=pipe)
        stamps = {
            flat[i].decode(): datetime.fromtimestamp(int(flat[i + 1]), UTC)
            for flat in pipe.execute() for i in range(0, len(flat), 2)
        }
        changed += apikeys.record_last_use(stamps)
