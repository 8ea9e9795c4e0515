"""POST /webhooks/stripe: a genuine, recent event is stored once, acknowledged and processed by an RQ job;
unsigned, forged, stale, unusable and oversized requests are refused with 400/413 and counted; a
replayed id is acknowledged and never processed twice; the route is CSRF-exempt and never rate limited."""

from __future__ import annotations

import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import IntegrityError

from app.cron import JOBS
from app.webhooks import inbound, inbound_jobs
from tests.webhooks.inbound_helpers import (
    SECRET,
    counts,
    events,
    post_stripe,
    queued,
    run_jobs,
    stripe_event,
    stripe_signature,
)

JOB = "app.webhooks.inbound_jobs.process_inbound"


@pytest.fixture(autouse=True)
def configured(app, monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", SECRET)


@pytest.fixture
def handled(monkeypatch):
    """A handler for invoice.paid that records the events it was given."""
    seen: list[tuple[str, str]] = []
    monkeypatch.setitem(inbound.HANDLERS, "invoice.paid", lambda event: seen.append((event.id, event.type)))
    return seen


def _problem(response, status: int, type_suffix: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("/" + type_suffix) and body["status"] == status
    return body


def test_a_signed_event_is_stored_acknowledged_and_processed_by_a_job(ctx, client, handled):
    body = stripe_event("evt_1Paid", "invoice.paid", amount_paid=1200)
    response = post_stripe(client, body)
    assert response.status_code == 200 and response.get_json() == {"received": True, "duplicate": False}

    [event] = events()
    assert event.id.startswith("iwh_") and event.provider == "stripe" and event.provider_event_id == "evt_1Paid"
    assert event.type == "invoice.paid" and event.payload["data"]["object"]["amount_paid"] == 1200
    assert event.status == "pending" and event.attempts == 0 and event.received_at is not None
    assert queued() == [(JOB, (event.id,))] and handled == []  # acknowledged before any processing

    run_jobs()
    [event] = events()
    assert handled == [(event.id, "invoice.paid")]
    assert event.status == "processed" and event.processed_at is not None and event.attempts == 1
    assert event.last_error == "" and event.next_attempt_at is None and event.locked_until is None
    assert counts()["accepted"] == 1


def test_an_event_type_without_a_handler_is_marked_processed(ctx, client):
    assert post_stripe(client, stripe_event("evt_1Unknown", "customer.created")).status_code == 200
    run_jobs()
    [event] = events()
    assert event.status == "processed" and event.attempts == 1


def test_unsigned_requests_are_refused_and_counted(ctx, client):
    response = post_stripe(client, stripe_event(), signature=None)
    body = _problem(response, 400, "webhook-signature-invalid")
    assert "Stripe-Signature" in body["detail"]
    assert post_stripe(client, stripe_event(), signature="").status_code == 400
    assert events() == [] and queued() == []
    assert counts()["signature_failed"] == 2 and counts()["accepted"] == 0


@pytest.mark.parametrize("case", ["wrong secret", "tampered body", "garbage header", "v0 scheme only", "not utf-8"])
def test_forged_requests_are_refused_and_counted_as_signature_failures(ctx, client, case):
    body = stripe_event("evt_1Forged")
    signature = stripe_signature(body)
    if case == "wrong secret":
        signature = stripe_signature(body, secret="whsec_someone_elses")
    elif case == "tampered body":
        body = body.replace("in_1Test", "in_1Evil")
    elif case == "garbage header":
        signature = "this is not a signature"
    elif case == "v0 scheme only":
        signature = signature.replace("v1=", "v0=")
    elif case == "not utf-8":
        body = b"\xff\xfe" + body.encode()
        signature = stripe_signature(body)
    _problem(post_stripe(client, body, signature=signature), 400, "webhook-signature-invalid")
    assert events() == [] and queued() == []
    assert counts()["signature_failed"] == 1 and counts()["stale"] == 0


def test_a_stale_timestamp_is_refused_and_counted_apart_from_forgeries(ctx, client):
    body = stripe_event("evt_1Replayed")
    old = int(time.time()) - 301
    body_json = _problem(post_stripe(client, body, signature=stripe_signature(body, timestamp=old)), 400,
                         "webhook-timestamp-stale")
    assert "300 seconds" in body_json["detail"]
    # A forgery with an old timestamp is a signature failure, not a stale request.
    forged = stripe_signature(body, secret="whsec_someone_elses", timestamp=old)
    _problem(post_stripe(client, body, signature=forged), 400, "webhook-signature-invalid")
    # Within the tolerance it is accepted.
    recent = stripe_signature(body, timestamp=int(time.time()) - 290)
    assert post_stripe(client, body, signature=recent).status_code == 200
    assert counts() == {"accepted": 1, "duplicate": 0, "signature_failed": 1, "stale": 1, "invalid": 0}


def test_a_replayed_event_id_is_acknowledged_and_processed_once(ctx, client, handled):
    body = stripe_event("evt_1Twice")
    assert post_stripe(client, body).get_json() == {"received": True, "duplicate": False}
    # The same event again (Stripe retries when our answer was lost), also freshly signed and re-serialised.
    again = post_stripe(client, body)
    assert again.status_code == 200 and again.get_json() == {"received": True, "duplicate": True}
    other_bytes = stripe_event("evt_1Twice", "invoice.paid", note="re-sent")
    assert post_stripe(client, other_bytes).get_json()["duplicate"] is True
    assert len(events()) == 1 and len(queued()) == 1

    run_jobs()
    assert post_stripe(client, body).get_json()["duplicate"] is True  # after processing too
    run_jobs()
    assert len(handled) == 1 and queued() == []
    assert counts()["accepted"] == 1 and counts()["duplicate"] == 3


def test_two_deliveries_racing_on_one_id_store_one_event(ctx, client, monkeypatch):
    """The other delivery inserts between our look-up and our commit: the unique constraint decides."""
    assert post_stripe(client, stripe_event("evt_1Race")).status_code == 200
    real_find, calls = inbound._find, []

    def find_missing_first(provider, provider_event_id):
        calls.append(provider_event_id)
        return None if len(calls) == 1 else real_find(provider, provider_event_id)

    monkeypatch.setattr(inbound, "_find", find_missing_first)
    response = post_stripe(client, stripe_event("evt_1Race"))
    assert response.status_code == 200 and response.get_json()["duplicate"] is True
    assert len(calls) == 2 and len(events()) == 1 and len(queued()) == 1


def test_an_integrity_error_that_is_not_a_duplicate_is_not_hidden(ctx, monkeypatch):
    def broken_commit():
        raise IntegrityError("INSERT", {}, Exception("some other constraint"))

    monkeypatch.setattr(inbound.db.session, "commit", broken_commit)
    with pytest.raises(IntegrityError):
        inbound.receive("stripe", "evt_1Other", "invoice.paid", {"id": "evt_1Other"})


def test_without_a_secret_the_door_answers_503_and_takes_nothing(ctx, app, client, monkeypatch, caplog):
    import logging

    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", None)
    # The in-process `flask db upgrade` of the fixtures (alembic's fileConfig) disables loggers that exist then.
    monkeypatch.setattr(logging.getLogger(inbound.__name__), "disabled", False)
    _problem(post_stripe(client, stripe_event()), 503, "webhook-not-configured")
    _problem(post_stripe(client, stripe_event(), signature=None), 503, "webhook-not-configured")
    assert events() == [] and queued() == []
    assert "STRIPE_WEBHOOK_SECRET is not set" in caplog.text


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"type": "invoice.paid"}', '{"id": "evt_1", "type": 7}'])
def test_signed_but_unusable_bodies_are_refused(ctx, client, body):
    _problem(post_stripe(client, body), 400, "webhook-payload-invalid")
    assert events() == [] and counts()["invalid"] == 1


def test_an_oversized_body_is_refused_before_it_is_read(ctx, app, client, monkeypatch):
    monkeypatch.setitem(app.config, "INBOUND_WEBHOOK_MAX_BYTES", 2048)
    body = stripe_event("evt_1Big", note="x" * 4096)
    _problem(post_stripe(client, body), 413, "request-entity-too-large")
    assert events() == [] and counts()["invalid"] == 1
    assert post_stripe(client, stripe_event("evt_1Small")).status_code == 200


def test_a_handler_error_is_recorded_then_retried_by_the_sweeper(ctx, client, monkeypatch):
    from app import clock

    calls: list[str] = []

    def flaky(event):
        calls.append(event.id)
        if len(calls) <= 2:
            raise RuntimeError("billing is down")

    monkeypatch.setitem(inbound.HANDLERS, "invoice.paid", flaky)
    assert post_stripe(client, stripe_event("evt_1Flaky")).status_code == 200
    run_jobs()  # fails, and RQ's one immediate retry fails too
    [event] = events()
    assert len(calls) == 2 and event.status == "failed" and event.attempts == 2
    assert event.last_error == "RuntimeError: billing is down" and event.locked_until is None
    retry_at = event.next_attempt_at
    assert retry_at is not None and 290 <= (retry_at - event.last_attempt_at).total_seconds() <= 310
    assert inbound.sweep() == 0  # not due yet

    with clock.travel(retry_at):
        assert inbound_jobs.sweep_inbound() == 1
        assert inbound.sweep() == 0  # enqueued once, not again on the next sweep
    run_jobs()
    [event] = events()
    assert len(calls) == 3 and event.status == "processed" and event.attempts == 3 and event.last_error == ""


def test_a_failing_event_is_retried_on_the_schedule_then_waits_for_staff(ctx, client, monkeypatch):
    from datetime import timedelta

    from app import clock

    monkeypatch.setitem(inbound.HANDLERS, "invoice.paid", lambda event: 1 / 0)
    post_stripe(client, stripe_event("evt_1Doomed"))
    run_jobs()  # the first attempt and RQ's immediate retry
    [event] = events()
    assert event.attempts == 2
    delays = []
    while event.next_attempt_at is not None:
        delays.append(round((event.next_attempt_at - event.last_attempt_at).total_seconds()))
        with clock.travel(event.next_attempt_at):
            assert inbound.sweep() == 1
            run_jobs()  # one attempt: jobs the sweeper enqueues are not retried at once
        [event] = events()
    assert delays == [300, 1800, 7200, 18000, 36000, 36000]
    assert event.attempts == 8 and event.status == "failed" and "ZeroDivisionError" in event.last_error
    with clock.travel(clock.now() + timedelta(days=30)):
        assert inbound.sweep() == 0


def test_the_number_of_attempts_is_a_setting(ctx, app, client, monkeypatch):
    monkeypatch.setitem(app.config, "INBOUND_WEBHOOK_MAX_ATTEMPTS", 2)
    monkeypatch.setitem(inbound.HANDLERS, "invoice.paid", lambda event: 1 / 0)
    post_stripe(client, stripe_event("evt_1Doomed"))
    run_jobs()
    [event] = events()
    assert event.status == "failed" and event.attempts == 2 and event.next_attempt_at is None


def test_the_sweeper_enqueues_an_event_whose_job_was_lost(ctx, client, handled):
    from datetime import timedelta

    from app import clock
    from app.queue import get_queue

    post_stripe(client, stripe_event("evt_1Lost"))
    get_queue("billing").empty()  # the job is lost (Redis flushed, worker died …)
    assert inbound.sweep() == 0  # give the job a minute first
    with clock.travel(clock.now() + timedelta(seconds=61)):
        assert inbound.sweep() == 1
    run_jobs()
    assert len(handled) == 1 and events()[0].status == "processed"
    with clock.travel(clock.now() + timedelta(days=1)):
        assert inbound.sweep() == 0


def test_an_event_is_acknowledged_even_if_its_job_cannot_be_enqueued(ctx, client, monkeypatch, handled):
    from datetime import timedelta

    from app import clock
    from app import queue as queue_module

    def no_redis(name="default"):
        raise RedisConnectionError("Redis is down")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(queue_module, "get_queue", no_redis)
        assert post_stripe(client, stripe_event("evt_1NoRedis")).status_code == 200
    assert len(events()) == 1 and queued() == []
    with clock.travel(clock.now() + timedelta(seconds=61)):
        inbound.sweep()
    run_jobs()
    assert len(handled) == 1


def test_a_job_run_twice_or_while_another_holds_the_event_does_nothing(ctx, client, handled):
    from datetime import timedelta

    from app import clock
    from app.extensions import db

    post_stripe(client, stripe_event("evt_1Once"))
    [event] = events()
    event.locked_until = clock.now() + timedelta(seconds=100)  # another worker is on it
    db.session.commit()
    assert inbound_jobs.process_inbound(event.id) == "skipped" and handled == []
    with clock.travel(clock.now() + timedelta(seconds=101)):  # that worker died: its lease ran out
        assert inbound_jobs.process_inbound(event.id) == "processed"
    assert inbound_jobs.process_inbound(event.id) == "skipped"
    assert inbound_jobs.process_inbound("iwh_01jzzzzzzzzzzzzzzzzzzzzzzz") == "skipped"
    assert len(handled) == 1


def test_the_door_is_never_rate_limited_and_needs_no_csrf_token(ctx, app, client, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_PAGES_PER_IP", "3 per minute")
    assert app.config["WTF_CSRF_ENABLED"]
    statuses = [post_stripe(client, stripe_event(f"evt_1Many{n}")).status_code for n in range(8)]
    statuses += [post_stripe(client, stripe_event(), signature=None).status_code for _ in range(4)]
    assert statuses == [200] * 8 + [400] * 4
    assert len(events()) == 8
    assert [client.get("/login").status_code for _ in range(4)][-1] == 429  # the same IP is limited elsewhere


def test_the_sweeper_and_the_count_flush_are_scheduled():
    scheduled = {job.func: job for job in JOBS}
    assert scheduled[inbound_jobs.sweep_inbound].interval <= 60
    assert scheduled[inbound_jobs.sweep_inbound].queue == "billing"
    assert scheduled[inbound_jobs.flush_inbound_counts].interval <= 60


def test_outcomes_are_exported_to_prometheus(ctx, client):
    post_stripe(client, stripe_event("evt_1Metric"))
    post_stripe(client, stripe_event(), signature=None)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'tenantry_inbound_webhooks_total{outcome="accepted",provider="stripe"}' in text
    assert 'tenantry_inbound_webhooks_total{outcome="signature_failed",provider="stripe"}' in text
