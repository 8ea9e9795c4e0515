"""RQ jobs for the request log."""

from __future__ import annotations

from app.requestlog import drain, service


def drain_request_log() -> dict:
    """Move logged API requests from the Redis stream into the database (exactly once in effect; safe to
    run twice, concurrently, or after a run that died halfway)."""
    result = drain.drain()
    return {"read": result.read, "stored": result.stored, "dropped": result.dropped}


def prune_request_log() -> int:
    """Delete request log rows past REQUEST_LOG_RETENTION_DAYS."""
    return service.prune()
