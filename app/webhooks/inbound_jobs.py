"""RQ entry points of the inbound door: take ids, reload, call the service; each is safe to run twice."""

from __future__ import annotations

from app.webhooks import inbound, inbound_counts


def process_inbound(event_id: str) -> str:
    """Run one inbound event's handler (on the `billing` queue); re-raises a handler's error for RQ."""
    return inbound.process(event_id)


def sweep_inbound() -> int:
    """Re-enqueue inbound events whose job was lost or whose retry is due."""
    return inbound.sweep()


def flush_inbound_counts() -> int:
    """Move the door's security counts from Redis into the database (exactly once)."""
    return inbound_counts.flush_counts()
