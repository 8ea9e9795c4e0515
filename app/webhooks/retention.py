"""Payload retention for outbound webhooks: messages older than `WEBHOOK_RETENTION_DAYS` (30) are
deleted with their deliveries and attempts, in batches, by an hourly job. Deliveries finish within
about 27 hours, so nothing still being retried is ever removed; an old message can no longer be
resent once it is gone (as in Svix)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select

from app import clock
from app.extensions import db
from app.webhooks.outbound_models import WebhookAttempt, WebhookDelivery, WebhookMessage

PRUNE_BATCH = 1000


def oldest_kept() -> datetime:
    return clock.now() - timedelta(days=current_app.config["WEBHOOK_RETENTION_DAYS"])


def prune(batch: int = PRUNE_BATCH) -> int:
    """Delete messages past retention (and their deliveries and attempts), `batch` messages per
    transaction; returns how many messages. Safe to run twice or concurrently."""
    cutoff, total = oldest_kept(), 0
    while True:
        ids = list(db.session.scalars(select(WebhookMessage.id).where(WebhookMessage.created_at < cutoff)
                                      .order_by(WebhookMessage.created_at).limit(batch)))
        if not ids:
            return total
        for model in (WebhookAttempt, WebhookDelivery):
            db.session.execute(delete(model).where(model.message_id.in_(ids)).execution_options(
                synchronize_session=False))
        db.session.execute(delete(WebhookMessage).where(WebhookMessage.id.in_(ids)).execution_options(
            synchronize_session=False))
        db.session.commit()
        total += len(ids)
        if len(ids) < batch:
            return total
