"""RQ jobs for people and sessions."""

from __future__ import annotations

from app.auth import service


def prune_sessions() -> int:
    """Delete session rows that can no longer be used (revoked or past the absolute timeout)."""
    return service.prune_sessions()


def flush_last_used(batch: int = 500) -> int:
    """Copy the last-use times the API gate wrote to Redis onto the keys in the database.

    Each tenant's hash is read and deleted atomically (a one-key script, so it works on Redis Cluster
    too), so a use recorded meanwhile is never lost; running it twice writes nothing new.
    """
    from datetime import UTC, datetime

    from app.auth import apikeys
    from app.auth.keycache import last_used_key
    from app.queue import take_hashes
    from app.tenancy.queries import tenant_id_batches

    changed = 0
    for ids in tenant_id_batches(batch):
        stamps = {key_id: datetime.fromtimestamp(int(seconds), UTC)
                  for found in take_hashes([last_used_key(t) for t in ids]) for key_id, seconds in found.items()}
        changed += apikeys.record_last_use(stamps)
    return changed
