"""RQ jobs for the console (run by the scheduler, app/cron.py)."""

from __future__ import annotations


def refresh_overview() -> int:
    """Recompute the staff overview's snapshot; returns the number of tenants it covers."""
    from app.console import overview

    return overview.refresh()["tenants_total"]
