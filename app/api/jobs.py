"""RQ jobs for the API plumbing."""

from __future__ import annotations

from flask import current_app

from app.api import idempotency


def prune_idempotency_keys() -> int:
    """Forget stored Idempotency-Key responses past their 24-hour window (safe to run twice)."""
    return idempotency.prune(current_app.config["IDEMPOTENCY_TTL"])
