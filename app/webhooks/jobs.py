"""RQ entry points of outbound webhooks (queue `webhooks`): take ids, reload, call a service; safe twice."""

from __future__ import annotations

from app.webhooks import delivery, outbound, recovery, retention


def deliver(delivery_ids: list[str]) -> dict[str, int]:
    """Attempt a batch of due deliveries."""
    return delivery.deliver(delivery_ids)


def sweep_deliveries() -> int:
    """Enqueue due deliveries whose job is missing (retries are due deliveries too), and recoveries that
    stalled."""
    recovery.resume_stalled()
    return delivery.sweep()


def run_recovery(recovery_id: str) -> str | None:
    """Re-send what failed to an endpoint since a moment, batch by batch; returns the final status."""
    found = recovery.run(recovery_id)
    return found.status if found is not None else None


def prune_webhook_messages() -> int:
    """Delete messages (with their deliveries and attempts) past WEBHOOK_RETENTION_DAYS."""
    return retention.prune()


def fan_out_outbox() -> int:
    """Turn new outbox events into webhook messages."""
    return outbound.fan_out()
