"""Publishing, fan-out, delivery, retries and the sweeper, against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from app import clock
from app.audit.models import AuditEvent
from app.events import service as events
from app.events.models import OutboxEvent
from app.extensions import db
from app.queue import get_queue, get_redis
from app.webhooks import delivery, outbound
from app.webhooks.outbound_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import owner, run_jobs

receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def tenant(webhook_env, make):
    return make.tenant()


def _endpoint(tenant, receiver, **data):
    return outbound.create_endpoint(owner(tenant), tenant.id, {"url": receiver.url, **data})


def _delivery() -> WebhookDelivery:
    return db.session.scalar(select(WebhookDelivery).execution_options(populate_existing=True))


def _attempts() -> list[WebhookAttempt]:
    return list(db.session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.attempt)))


def test_a_published_message_reaches_the_endpoint_signed(tenant, receiver):
    endpoint, secret = _endpoint(tenant, receiver)
    message, created = outbound.publish(tenant.id, "member.added", {"email": "a@example.com", "n": 1})
    assert created
    run_jobs()
    [request] = receiver.requests
    assert request.path == "/hook" and request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == message.id
    body = Webhook(secret).verify(request.body, request.headers)
    assert body["type"] == "member.added" and body["data"] == {"email": "a@example.com", "n": 1}
    assert _delivery().status == "succeeded" and _delivery().next_attempt_at is None
    [attempt] = _attempts()
    assert (attempt.status, attempt.http_status, attempt.response_body, attempt.attempt) == ("succeeded", 200, "ok", 1)
    assert attempt.endpoint_id == endpoint.id and attempt.message_id == message.id


def test_the_same_idempotency_key_publishes_once(tenant, receiver):
    _endpoint(tenant, receiver)
    first, created = outbound.publish(tenant.id, "member.added", {"n": 1}, idempotency_key="k1")
    again, created_again = outbound.publish(tenant.id, "member.added", {"n": 1}, idempotency_key="k1")
    assert created and not created_again and again.id == first.id
    run_jobs()
    assert len(receiver.requests) == 1
    assert db.session.query(WebhookMessage).count() == 1


def test_only_enabled_endpoints_subscribed_to_the_type_get_it(tenant, receiver, make):
    _endpoint(tenant, receiver, event_types=["api_key.created"])
    everything, _ = _endpoint(tenant, receiver)
    off, _ = _endpoint(tenant, receiver)
    outbound.disable_endpoint(owner(tenant), tenant.id, off.id, "paused")
    other = make.tenant()
    outbound.create_endpoint(owner(other), other.id, {"url": receiver.url})
    outbound.publish(tenant.id, "member.added", {"n": 1})
    run_jobs()
    assert [d.endpoint_id for d in db.session.scalars(select(WebhookDelivery))] == [everything.id]
    assert len(receiver.requests) == 1


def test_unknown_event_types_and_bad_payloads_are_refused(tenant):
    from app.errors import Invalid

    with pytest.raises(Invalid) as caught:
        outbound.publish(tenant.id, "nope.never", [])
    assert set(caught.value.errors) == {"event_type", "payload"}


def test_redirects_are_failures_and_not_followed(tenant, receiver):
    _endpoint(tenant, receiver)
    receiver.answer(302, {"Location": "http://127.0.0.1:1/elsewhere"})
    outbound.publish(tenant.id, "member.added", {})
    run_jobs()
    assert len(receiver.requests) == 1
    [attempt] = _attempts()
    assert attempt.status == "failed" and attempt.http_status == 302
    assert _delivery().status == "failed"


def test_410_gone_disables_the_endpoint_audited_and_announced(tenant, receiver):
    endpoint, _ = _endpoint(tenant, receiver)
    receiver.answer(410)
    outbound.publish(tenant.id, "member.added", {})
    run_jobs()
    endpoint = db.session.get(WebhookEndpoint, endpoint.id, populate_existing=True)
    assert endpoint.status == "disabled" and "410" in endpoint.disabled_reason
    assert _delivery().status == "dead"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "webhook_endpoint.disabled"))
    assert db.session.scalar(select(OutboxEvent).where(OutboxEvent.type == "endpoint.disabled")).payload[
        "endpoint_id"] == endpoint.id


def test_429_waits_for_retry_after_clamped(tenant, receiver, ctx):
    _endpoint(tenant, receiver)
    with clock.travel(START):
        receiver.answer(429, {"Retry-After": "120"})
        outbound.publish(tenant.id, "member.added", {})
        run_jobs()
        assert _delivery().next_attempt_at == START + timedelta(seconds=120)  # more than the 5 s step: honoured
        clock.advance(timedelta(seconds=121))
        receiver.answer(503, {"Retry-After": "999999"})
        delivery.sweep()
        run_jobs()
        longest = max(ctx.config["WEBHOOK_RETRY_SCHEDULE"])
        assert _delivery().next_attempt_at == clock.now() + timedelta(seconds=longest)  # clamped


def test_responses_are_stored_cut_at_20_kb(tenant, receiver):
    _endpoint(tenant, receiver)
    receiver.answer(500, {"X-Big": "y" * 100}, b"x" * 50_000)
    outbound.publish(tenant.id, "member.added", {})
    run_jobs()
    [attempt] = _attempts()
    assert len(attempt.response_body) == 20_000 and attempt.response_headers["X-Big"] == "y" * 100


def test_retries_follow_the_schedule_with_jitter_then_dead_letter(tenant, receiver, ctx):
    _endpoint(tenant, receiver)
    receiver.default = (500, {}, b"down")
    schedule = ctx.config["WEBHOOK_RETRY_SCHEDULE"]
    with clock.travel(START):
        message, _ = outbound.publish(tenant.id, "member.added", {})
        run_jobs()
        for step in schedule:
            due = _delivery().next_attempt_at
            gap = (due - clock.now()).total_seconds()
            assert 0.8 * step <= gap <= 1.2 * step
            clock.advance(due - clock.now() - timedelta(seconds=1))
            assert delivery.sweep() == 0  # not due yet
            clock.advance(timedelta(seconds=1))
            assert delivery.sweep() == 1
            run_jobs()
    attempts = _attempts()
    assert len(attempts) == len(schedule) + 1 == 8
    assert [a.status for a in attempts] == ["failed"] * 7 + ["dead"]
    assert _delivery().status == "dead" and _delivery().next_attempt_at is None
    assert {r.headers["webhook-id"] for r in receiver.requests} == {message.id}


def test_the_sweeper_redelivers_everything_after_redis_is_flushed(tenant, receiver):
    _endpoint(tenant, receiver)
    _endpoint(tenant, receiver, event_types=["member.added"])
    with clock.travel(START):
        ids = [outbound.publish(tenant.id, "member.added", {"n": n})[0].id for n in range(5)]
        assert get_queue("webhooks").count == 5
        get_redis().flushdb()  # every job lost
        assert delivery.sweep() == 0  # queued a moment ago: give the jobs their lease first
        clock.advance(timedelta(seconds=61))
        assert delivery.sweep() == 10
        assert delivery.sweep() == 0  # enqueued once
        run_jobs()
    assert sorted(r.headers["webhook-id"] for r in receiver.requests) == sorted(ids * 2)
    assert {d.status for d in db.session.scalars(select(WebhookDelivery))} == {"succeeded"}


def test_a_killed_workers_delivery_is_retried_with_the_same_webhook_id(tenant, receiver):
    _endpoint(tenant, receiver)
    with clock.travel(START):
        message, _ = outbound.publish(tenant.id, "member.added", {})
        get_queue("webhooks").empty()
        assert delivery._claim(_delivery().id)  # a worker claimed it and died
        clock.advance(timedelta(seconds=61))
        assert delivery.sweep() == 0  # its lease still runs
        clock.advance(timedelta(minutes=5))
        assert delivery.sweep() == 1
        run_jobs()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [message.id]


def test_a_delivery_runs_once_even_if_enqueued_twice(tenant, receiver):
    _endpoint(tenant, receiver)
    outbound.publish(tenant.id, "member.added", {})
    outbound.enqueue([_delivery().id])
    run_jobs()
    assert len(receiver.requests) == 1


def test_outbox_events_fan_out_once(tenant, receiver, make):
    _endpoint(tenant, receiver)
    make.member(tenant, "member")  # member.added through the real service's outbox
    events.publish(tenant.id, "not.in.catalogue", {})
    db.session.commit()
    assert outbound.fan_out() >= 2
    assert outbound.fan_out() == 0
    run_jobs()
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert [b["type"] for b in bodies] == ["member.added"]
    assert db.session.scalar(select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))) is None


def test_rotation_signs_with_both_secrets_during_the_grace(tenant, receiver):
    endpoint, old = _endpoint(tenant, receiver)
    _, new = outbound.rotate_secret(owner(tenant), tenant.id, endpoint.id)
    outbound.publish(tenant.id, "member.added", {})
    run_jobs()
    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(request.body, request.headers)
    Webhook(old).verify(request.body, request.headers)


def test_an_endpoint_failing_for_five_days_is_disabled(tenant, receiver):
    endpoint, _ = _endpoint(tenant, receiver)
    receiver.default = (500, {}, b"")
    with clock.travel(START):
        for _ in range(6):
            outbound.publish(tenant.id, "member.added", {})
            run_jobs()
            clock.advance(timedelta(days=1))
    endpoint = db.session.get(WebhookEndpoint, endpoint.id, populate_existing=True)
    assert endpoint.status == "disabled" and "120 hours" in endpoint.disabled_reason


def test_a_success_resets_the_failure_clock(tenant, receiver):
    endpoint, _ = _endpoint(tenant, receiver)
    with clock.travel(START):
        for day in range(6):
            receiver.answer(200 if day == 3 else 500)
            outbound.publish(tenant.id, "member.added", {})
            run_jobs()
            clock.advance(timedelta(days=1))
    assert db.session.get(WebhookEndpoint, endpoint.id, populate_existing=True).status == "enabled"


def test_the_per_endpoint_rate_limit_defers_the_excess(tenant, receiver):
    _endpoint(tenant, receiver, rate_limit=2)
    with clock.travel(START):
        for n in range(5):
            outbound.publish(tenant.id, "member.added", {"n": n})
        run_jobs()
        assert len(receiver.requests) == 2
        clock.advance(timedelta(seconds=2))
        delivery.sweep()
        run_jobs()
    assert len(receiver.requests) == 4
