"""RQ entry points of ops: alert rules every minute, the audit chain verification daily."""

from __future__ import annotations

from typing import Any

from app.ops import alerts

LOCK_KEY = "tenantry:ops:alerts:lock"


def evaluate_alerts() -> dict[str, int] | None:
    """Check every alert rule (fire, keep or resolve its alert) and send the notifications; one run at a time
    (a run still going when the next minute's job starts makes that one skip: None)."""
    from app.queue import get_redis

    redis = get_redis()
    if not redis.set(LOCK_KEY, "1", nx=True, ex=55):
        return None
    try:
        return alerts.evaluate()
    finally:
        redis.delete(LOCK_KEY)


def verify_audit() -> dict[str, Any]:
    """`flask audit verify` from the scheduler: a broken chain fires the audit alert rules."""
    return alerts.verify_audit()
