"""The circuit breaker per endpoint, against a real HTTP receiver answering 500 and then 200, in clock time.

closed → open at ≥70% failures of at least 10 attempts in 5 minutes → 30 s later one probe → success
closes, failure re-opens; while open, due deliveries are pushed back without a request or an attempt.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.extensions import db
from app.webhooks import circuit, delivery, outbound
from app.webhooks.outbound_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import owner, run_jobs

receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def tenant(webhook_env, make):
    return make.tenant()


@pytest.fixture
def endpoint(tenant, receiver):
    return outbound.create_endpoint(owner(tenant), tenant.id, {"url": receiver.url})[0]


def _endpoint(endpoint_id: str) -> WebhookEndpoint:
    return db.session.get(WebhookEndpoint, endpoint_id, populate_existing=True)


def _deliveries() -> list[WebhookDelivery]:
    return list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)
                                   .execution_options(populate_existing=True)))


def _attempts() -> int:
    return db.session.scalar(select(func.count()).select_from(WebhookAttempt))


def _publish(tenant, n: int) -> list[str]:
    return [outbound.publish(tenant.id, "member.added", {"n": i})[0].id for i in range(n)]


def _open_the_circuit(tenant, receiver, endpoint) -> list[str]:
    """Ten failures in a row: the circuit opens at START."""
    receiver.default = (500, {}, b"down")
    ids = _publish(tenant, 10)
    run_jobs()
    assert len(receiver.requests) == 10
    ep = _endpoint(endpoint.id)
    assert (ep.circuit_state, ep.circuit_opened_at) == ("open", START)
    return ids


def test_ten_failures_open_the_circuit_and_later_deliveries_wait_without_a_request_or_an_attempt(
        tenant, receiver, endpoint):
    with clock.travel(START):
        _open_the_circuit(tenant, receiver, endpoint)
        later = _publish(tenant, 5)
        run_jobs()
        assert len(receiver.requests) == 10 and _attempts() == 10
        half_open_at = START + circuit.HALF_OPEN_AFTER
        waiting = [d for d in _deliveries() if d.message_id in later]
        assert {(d.attempts, d.status, d.next_attempt_at) for d in waiting} == {(0, "pending", half_open_at)}
        # the first ten's retries (due after ~5 s) come due while it is open: pushed back, not sent
        clock.advance(timedelta(seconds=10))
        assert delivery.sweep() == 10
        run_jobs()
        assert len(receiver.requests) == 10 and _attempts() == 10
        assert {(d.attempts, d.next_attempt_at) for d in _deliveries()} == {(1, half_open_at), (0, half_open_at)}
        assert delivery.sweep() == 0  # nothing due until the circuit half-opens


def test_after_30_seconds_one_probe_goes_and_its_success_closes_the_circuit(tenant, receiver, endpoint):
    with clock.travel(START):
        first = _open_the_circuit(tenant, receiver, endpoint)
        later = _publish(tenant, 5)
        run_jobs()
        clock.advance(timedelta(seconds=10))  # the first ten's retries come due and are pushed back
        delivery.sweep()
        run_jobs()
        receiver.default = (200, {}, b"ok")
        clock.advance(circuit.HALF_OPEN_AFTER - timedelta(seconds=11))
        assert delivery.sweep() == 0
        clock.advance(timedelta(seconds=1))
        assert delivery.sweep() == 15
        run_jobs()
        assert len(receiver.requests) == 11  # one probe only
        ep = _endpoint(endpoint.id)
        assert (ep.circuit_state, ep.circuit_opened_at) == ("closed", None)
        assert delivery.sweep() == 14  # the success brought the others forward to now
        run_jobs()
    assert {r.headers["webhook-id"] for r in receiver.requests[10:]} == set(first + later)
    assert len(receiver.requests) == 25
    assert {d.status for d in _deliveries()} == {"succeeded"}
    assert _attempts() == 25  # 10 failures, 15 successes: waiting used up no attempt
    assert sorted(d.attempts for d in _deliveries()) == [1] * 5 + [2] * 10


def test_a_failed_probe_opens_the_circuit_again(tenant, receiver, endpoint):
    with clock.travel(START):
        _open_the_circuit(tenant, receiver, endpoint)
        clock.advance(circuit.HALF_OPEN_AFTER)
        assert delivery.sweep() == 10
        run_jobs()
        assert len(receiver.requests) == 11  # the probe, failed
        now = clock.now()
        ep = _endpoint(endpoint.id)
        assert (ep.circuit_state, ep.circuit_opened_at) == ("open", now)
        assert {d.next_attempt_at for d in _deliveries() if d.attempts == 1} == {now + circuit.HALF_OPEN_AFTER}
        # 30 s later the next probe: it succeeds and everything goes
        receiver.default = (200, {}, b"ok")
        clock.advance(circuit.HALF_OPEN_AFTER)
        assert delivery.sweep() == 9
        run_jobs()
        assert len(receiver.requests) == 12 and _endpoint(endpoint.id).circuit_state == "closed"
        assert delivery.sweep() == 8
        run_jobs()
    assert len(receiver.requests) == 20
    # the failed probe's own delivery keeps its retry schedule (attempt 3 in about 5 minutes)
    assert sorted((d.status, d.attempts) for d in _deliveries()) == [("failed", 2)] + [("succeeded", 2)] * 9
    # the trip and the recovery are in the audit trail (the failed probe's re-opening is only logged)
    from app.audit.models import AuditEvent

    trail = [(e.action, e.tenant_id) for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.action.like("webhook_endpoint.circuit%")).order_by(AuditEvent.id))]
    assert trail == [("webhook_endpoint.circuit_opened", tenant.id), ("webhook_endpoint.circuit_closed", tenant.id)]


def test_a_probe_out_holds_other_deliveries_back_until_its_lease_runs_out(tenant, receiver, endpoint, ctx):
    with clock.travel(START):
        _open_the_circuit(tenant, receiver, endpoint)
        clock.advance(circuit.HALF_OPEN_AFTER)
        ep = _endpoint(endpoint.id)
        assert circuit.gate(ep, clock.now()) == (True, None)  # a worker took the probe and died
        db.session.commit()
        assert circuit.gate(_endpoint(endpoint.id), clock.now()) == (False, clock.now() + circuit.HALF_OPEN_AFTER)
        clock.advance(timedelta(seconds=ctx.config["WEBHOOK_TIMEOUT"] + 61))
        assert circuit.gate(_endpoint(endpoint.id), clock.now()) == (True, None)  # a new probe


def test_below_ten_attempts_or_below_70_percent_the_circuit_stays_closed(tenant, receiver, endpoint):
    with clock.travel(START):
        receiver.default = (500, {}, b"down")
        _publish(tenant, 9)
        run_jobs()
        assert _endpoint(endpoint.id).circuit_state == "closed"  # 9 of 9 failed: too few to judge
        receiver.answer(200, times=4)
        _publish(tenant, 4)  # 4 successes
        run_jobs()
        _publish(tenant, 1)  # 10 failures of 14 = 71%: opens
        run_jobs()
        assert _endpoint(endpoint.id).circuit_state == "open"


def test_sixty_percent_failures_keep_it_closed(tenant, receiver, endpoint):
    with clock.travel(START):
        receiver.default = (500, {}, b"down")
        receiver.answer(200, times=4)
        _publish(tenant, 10)
        run_jobs()
        assert len(receiver.requests) == 10
        assert _endpoint(endpoint.id).circuit_state == "closed"


def test_failures_older_than_five_minutes_do_not_count(tenant, receiver, endpoint):
    with clock.travel(START):
        receiver.default = (500, {}, b"down")
        _publish(tenant, 9)
        run_jobs()
        clock.advance(circuit.WINDOW + timedelta(seconds=10))
        db.session.query(WebhookDelivery).update({"next_attempt_at": None, "status": "dead"})
        db.session.commit()
        _publish(tenant, 1)
        run_jobs()
        assert _endpoint(endpoint.id).circuit_state == "closed"


def test_enabling_an_endpoint_again_closes_its_circuit(tenant, receiver, endpoint):
    with clock.travel(START):
        _open_the_circuit(tenant, receiver, endpoint)
        outbound.disable_endpoint(owner(tenant), tenant.id, endpoint.id, "paused")
        outbound.enable_endpoint(owner(tenant), tenant.id, endpoint.id)
        assert _endpoint(endpoint.id).circuit_state == "closed"
