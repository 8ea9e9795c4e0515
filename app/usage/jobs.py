"""RQ jobs for usage."""

from __future__ import annotations

from app.usage import rollup


def rollup_usage() -> int:
    """Counters from Redis into the usage tables, exactly once (safe to run twice or after a crash)."""
    return rollup.rollup_all()
