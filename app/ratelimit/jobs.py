"""RQ jobs for rate limiting."""

from __future__ import annotations

from app.ratelimit import blocks


def flush_violations() -> int:
    """Per-minute refusal counts from Redis into the database (safe to run twice)."""
    return blocks.flush_violations()
