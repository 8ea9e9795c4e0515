"""RQ jobs for people and sessions."""

from __future__ import annotations

from app.auth import service


def prune_sessions() -> int:
    """Delete session rows that can no longer be used (revoked or past the absolute timeout)."""
    return service.prune_sessions()
