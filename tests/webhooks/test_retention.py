"""Outbound messages past WEBHOOK_RETENTION_DAYS go, with their deliveries and attempts; newer ones stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app import clock
from app.cron import JOBS
from app.extensions import db
from app.webhooks import jobs, outbound
from app.webhooks.outbound_models import WebhookAttempt, WebhookDelivery, WebhookMessage
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import owner, run_jobs

receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_old_messages_are_pruned_with_their_deliveries_and_attempts(make, webhook_env, receiver, monkeypatch):
    monkeypatch.setitem(webhook_env.config, "WEBHOOK_RETENTION_DAYS", 30)
    tenant = make.tenant()
    outbound.create_endpoint(owner(tenant), tenant.id, {"url": receiver.url})
    now = clock.now()
    with clock.travel(now - timedelta(days=31)):
        old = [outbound.publish(tenant.id, "member.added", {"n": n})[0].id for n in range(3)]
        run_jobs()
    with clock.travel(now - timedelta(days=29)):
        kept, _ = outbound.publish(tenant.id, "member.added", {"n": 9})
        run_jobs()
    assert (_count(WebhookMessage), _count(WebhookDelivery), _count(WebhookAttempt)) == (4, 4, 4)

    from app.webhooks import retention

    assert retention.prune(batch=2) == 3  # in two batches
    assert [m.id for m in db.session.scalars(select(WebhookMessage))] == [kept.id]
    assert (_count(WebhookDelivery), _count(WebhookAttempt)) == (1, 1)
    assert not set(old) & {d.message_id for d in db.session.scalars(select(WebhookDelivery))}
    assert jobs.prune_webhook_messages() == 0  # nothing more, and safe to run again
    assert any(job.func is jobs.prune_webhook_messages for job in JOBS)
