"""Resend and recover: dead or failed deliveries get a fresh cycle of attempts, against a real receiver."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app import clock
from app.audit.models import AuditEvent
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.webhooks import outbound, recovery, replay
from app.webhooks.outbound_models import WebhookAttempt, WebhookDelivery
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import owner, run_jobs

receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures


@pytest.fixture
def tenant(webhook_env, make, monkeypatch):
    monkeypatch.setitem(webhook_env.config, "WEBHOOK_RETRY_SCHEDULE", [])  # the first failure is final
    return make.tenant()


def _endpoint(tenant, receiver):
    endpoint, _secret = outbound.create_endpoint(owner(tenant), tenant.id, {"url": receiver.url})
    return endpoint


def _deliveries() -> list[WebhookDelivery]:
    return list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)
                                   .execution_options(populate_existing=True)))


def _dead_message(tenant, payload=None):
    message, _ = outbound.publish(tenant.id, "member.added", payload or {"n": 1})
    run_jobs()
    return message


def test_a_dead_delivery_resent_reaches_the_receiver_with_the_same_webhook_id(tenant, receiver):
    endpoint = _endpoint(tenant, receiver)
    receiver.answer(500, body=b"down")
    message = _dead_message(tenant)
    [delivery] = _deliveries()
    assert delivery.status == "dead" and delivery.next_attempt_at is None

    resent = replay.resend(owner(tenant), tenant.id, message.id, endpoint.id)
    assert resent.status == "pending" and resent.attempts == 0
    run_jobs()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [message.id, message.id]
    [delivery] = _deliveries()
    assert delivery.status == "succeeded"
    attempts = db.session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.created_at)).all()
    assert [(a.status, a.http_status) for a in attempts] == [("dead", 500), ("succeeded", 200)]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "webhook_delivery.resent"))
    assert event is not None and event.tenant_id == tenant.id


def test_resend_refuses_what_cannot_be_resent(tenant, receiver, make):
    endpoint = _endpoint(tenant, receiver)
    message, _ = outbound.publish(tenant.id, "member.added", {})
    run_jobs()  # succeeded
    with pytest.raises(Conflict):
        replay.resend(owner(tenant), tenant.id, message.id, endpoint.id)
    other = make.tenant()
    with pytest.raises(NotFound):  # another tenant's ids
        replay.resend(owner(other), other.id, message.id, endpoint.id)
    receiver.answer(500)
    dead = _dead_message(tenant)
    outbound.disable_endpoint(owner(tenant), tenant.id, endpoint.id)
    with pytest.raises(Conflict):
        replay.resend(owner(tenant), tenant.id, dead.id, endpoint.id)


def test_recover_requeues_every_failed_delivery_since_a_moment(tenant, receiver):
    endpoint = _endpoint(tenant, receiver)
    start = clock.now()
    with clock.travel(start - timedelta(days=3)):
        receiver.answer(500)
        old = _dead_message(tenant, {"n": "old"})
    with clock.travel(start - timedelta(hours=1)):
        receiver.answer(500, times=2)
        first = _dead_message(tenant, {"n": 1})
        second = _dead_message(tenant, {"n": 2})
        ok, _ = outbound.publish(tenant.id, "member.added", {"n": "ok"})
        run_jobs()
    assert [d.status for d in _deliveries()] == ["dead", "dead", "dead", "succeeded"]
    requests_before = len(receiver.requests)

    with clock.travel(start):
        asked = recovery.recover(owner(tenant), tenant.id, endpoint.id, start - timedelta(days=1))
        assert (asked.status, asked.total, asked.done) == ("queued", 2, 0)
        assert len(receiver.requests) == requests_before  # nothing sent until the job runs
        run_jobs()
    db.session.refresh(asked)
    assert (asked.status, asked.done, asked.finished_at is not None) == ("succeeded", 2, True)
    resent = [r.headers["webhook-id"] for r in receiver.requests[requests_before:]]
    assert sorted(resent) == sorted([first.id, second.id])
    by_message = {d.message_id: d.status for d in _deliveries()}
    assert by_message == {old.id: "dead", first.id: "succeeded", second.id: "succeeded", ok.id: "succeeded"}
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "webhook_endpoint.recovered"))
    assert event.meta["deliveries"] == 2


def test_recover_goes_back_at_most_14_days(tenant, receiver):
    endpoint = _endpoint(tenant, receiver)
    with pytest.raises(Invalid) as caught:
        recovery.recover(owner(tenant), tenant.id, endpoint.id, clock.now() - timedelta(days=15))
    assert "since" in caught.value.errors
    with pytest.raises(Invalid):
        recovery.recover(owner(tenant), tenant.id, endpoint.id, clock.now() + timedelta(hours=1))
    with pytest.raises(NotFound):
        recovery.recover(owner(tenant), tenant.id, "ep_nope", clock.now() - timedelta(days=1))
    nothing = recovery.recover(owner(tenant), tenant.id, endpoint.id, clock.now() - timedelta(days=14))
    assert (nothing.status, nothing.total) == ("succeeded", 0)  # done at once, no job


def test_the_recover_api_requeues_and_refuses_bad_input(client, make, tenant, receiver):
    from datetime import UTC

    endpoint = _endpoint(tenant, receiver)
    receiver.answer(500)
    message = _dead_message(tenant)
    _, token = make.api_key(tenant, scopes=["webhooks:read", "webhooks:write"])
    _, reader = make.api_key(tenant, scopes=["webhooks:read"])
    other = make.tenant()
    others_endpoint = _endpoint(other, receiver)
    url = f"/api/v1/webhooks/endpoints/{endpoint.id}/recover"
    headers = {"Authorization": f"Bearer {token}"}
    since = (clock.now() - timedelta(hours=1)).astimezone(UTC).isoformat()

    answer = client.post(url, json={"since": since}, headers={**headers, "Idempotency-Key": "r-1"})
    assert answer.status_code == 202, answer.get_json()
    body = answer.get_json()
    assert body["object"] == "recovery" and body["endpoint_id"] == endpoint.id
    assert (body["status"], body["total"], body["done"]) == ("queued", 1, 0)
    again = client.post(url, json={"since": since}, headers={**headers, "Idempotency-Key": "r-1"})
    assert again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    busy = client.post(url, json={"since": since}, headers=headers)  # a second one while the first is queued
    assert busy.status_code == 409 and body["id"] in busy.get_json()["detail"]
    run_jobs()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [message.id, message.id]
    progress = client.get(f"/api/v1/webhooks/endpoints/{endpoint.id}/recoveries/{body['id']}",
                          headers={"Authorization": f"Bearer {reader}"})
    assert progress.status_code == 200 and (progress.get_json()["status"], progress.get_json()["done"]) == (
        "succeeded", 1)
    assert client.get(f"/api/v1/webhooks/endpoints/{others_endpoint.id}/recoveries/{body['id']}",
                      headers=headers).status_code == 404
    assert client.get(f"/api/v1/webhooks/endpoints/{endpoint.id}/recoveries/rcv_nope",
                      headers=headers).status_code == 404

    too_old = (clock.now() - timedelta(days=20)).isoformat()
    refused = client.post(url, json={"since": too_old}, headers=headers)
    assert refused.status_code == 422 and any(e["field"] == "since" for e in refused.get_json()["errors"])
    assert client.post(url, json={"since": "yesterday"}, headers=headers).status_code == 422
    whole_window = client.post(url, json={}, headers=headers)  # no since: the 14 days
    assert whole_window.status_code == 202 and whole_window.get_json()["total"] == 0  # already succeeded
    assert client.post(f"/api/v1/webhooks/endpoints/{others_endpoint.id}/recover", json={"since": since},
                       headers=headers).status_code == 404
    assert client.post(url, json={"since": since},
                       headers={"Authorization": f"Bearer {reader}"}).status_code == 403


def test_a_recovery_goes_in_batches_and_resumes_where_a_dead_job_stopped(tenant, receiver, monkeypatch):

    endpoint = _endpoint(tenant, receiver)
    receiver.answer(500, times=5)
    messages = [_dead_message(tenant, {"n": n}) for n in range(5)]
    monkeypatch.setattr(recovery, "BATCH", 2)
    asked = recovery.recover(owner(tenant), tenant.id, endpoint.id, clock.now() - timedelta(hours=1))
    assert asked.total == 5
    # A worker took the job, re-queued the first batch, and died: its progress is in the database.
    from rq import Queue

    from app.queue import get_redis

    Queue("webhooks", connection=get_redis()).empty()  # the job is gone with it
    first_two = sorted(d.id for d in _deliveries() if d.message_id in {m.id for m in messages})[:2]
    # ...and those two were tried again since, and failed again (retry due in an hour): not this recovery's.
    db.session.execute(
        WebhookDelivery.__table__.update().where(WebhookDelivery.id.in_(first_two))
        .values(status="failed", attempts=1, next_attempt_at=clock.now() + timedelta(hours=1)))
    asked.status, asked.done, asked.cursor = "running", 2, first_two[-1]
    db.session.commit()
    assert recovery.resume_stalled() == 0  # it has not been quiet for long yet
    with clock.travel(clock.now() + recovery.STALLED_AFTER + timedelta(seconds=1)):
        assert recovery.resume_stalled() == 1
        run_jobs()
    db.session.refresh(asked)
    assert (asked.status, asked.done) == ("succeeded", 5)
    # The job resumed after its cursor: the three it had not reached were sent, the first two were not.
    crashed = {d.message_id for d in _deliveries() if d.id in first_two}
    assert sorted(r.headers["webhook-id"] for r in receiver.requests[5:]) == sorted(
        m.id for m in messages if m.id not in crashed)
    assert {d.status for d in _deliveries() if d.id in first_two} == {"failed"}


def test_purging_dead_letters_discards_them_and_their_attempts_only(tenant, receiver):
    from app.audit.models import AuditEvent

    endpoint = _endpoint(tenant, receiver)
    receiver.answer(500, times=2)
    dead = [_dead_message(tenant, {"n": n}) for n in range(2)]
    fine, _ = outbound.publish(tenant.id, "member.added", {"n": "ok"})
    run_jobs()
    assert recovery.dead_count(tenant.id, endpoint.id) == 2
    assert recovery.purge_dead(owner(tenant), tenant.id, endpoint.id) == 2
    left = _deliveries()
    assert [(d.message_id, d.status) for d in left] == [(fine.id, "succeeded")]
    assert {a.message_id for a in db.session.scalars(select(WebhookAttempt))} == {fine.id}
    assert recovery.dead_count(tenant.id, endpoint.id) == 0
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "webhook_endpoint.dead_letters_purged"))
    assert event.meta["purged"] == 2 and len(dead) == 2
