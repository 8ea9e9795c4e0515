"""RQ jobs for flags (run by the scheduler, app/cron.py)."""

from __future__ import annotations


def run_due_schedules() -> int:
    """Apply the scheduled flag changes that are due (safe to run twice: each is claimed once)."""
    from app.flags import schedules

    return schedules.run_due()

