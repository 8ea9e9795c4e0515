"""Alert rules: audited changes, evaluation every minute (fire after `for`, resolve when clear), signed
notifications to the rule's webhook, the banner on staff pages, and the daily audit verification."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook

from app import clock
from app.extensions import db
from app.ops import alerts
from app.ops.models import Alert, AlertRule
from app.security import Actor
from tests.admin.helpers import audit_events, follow, text
from tests.ops.helpers import age_oldest, alive
from tests.webhooks import outbound_helpers
from tests.webhooks.outbound_helpers import Receiver, start_receiver

receiver, webhook_env = outbound_helpers.receiver, outbound_helpers.webhook_env  # fixtures

STAFF = Actor(type="staff", id=None, display="ops@tests")


def _deliveries(tenant, receiver, succeeded: int, failed: int) -> None:
    """Real deliveries to a local receiver: `failed` answered 500, then `succeeded` answered 200."""
    from app.webhooks import outbound
    from tests.webhooks.outbound_helpers import owner, run_jobs

    outbound.create_endpoint(owner(tenant), tenant.id, {"url": receiver.url})
    receiver.answer(500, times=failed)
    for n in range(succeeded + failed):
        outbound.publish(tenant.id, "member.added", {"n": n})
    run_jobs()


def _firing() -> list[Alert]:
    db.session.rollback()
    return list(db.session.scalars(select(Alert).where(Alert.resolved_at.is_(None))))


def test_rules_are_created_switched_and_deleted_with_audit(staff_client):
    page = staff_client.get("/admin/system/alerts")
    assert "No alert rules yet" in text(page)
    bad = staff_client.form("/admin/system/alerts", {"name": "", "kind": "webhook_success_rate", "threshold": "150",
                                                     "window_minutes": "0", "webhook_url": "http://10.0.0.1/x"})
    body = text(bad)
    assert bad.status_code == 422
    assert "A name of 1 to 200 characters." in body and "A percentage above 0" in body and "Minutes from 1" in body
    assert 'id="e-webhook_url"' in body
    response = staff_client.form("/admin/system/alerts", {"name": "Webhooks poor", "kind": "webhook_success_rate",
                                                          "threshold": "90", "window_minutes": "10",
                                                          "for_seconds": "120"})
    page = text(follow(staff_client, response))
    assert "Webhook success below 90% over 10 min" in page
    rule = db.session.scalar(select(AlertRule))
    rule_id = rule.id
    assert (rule.threshold, rule.window_minutes, rule.for_seconds, rule.enabled) == (90, 10, 120, True)
    assert audit_events("ops.alert_rule.created")[0].targets[0]["id"] == rule_id
    staff_client.form(f"/admin/system/alerts/{rule_id}", {"do": "disable"})
    db.session.rollback()
    assert db.session.get(AlertRule, rule_id).enabled is False
    assert audit_events("ops.alert_rule.updated")[0].changes == {"enabled": [True, False]}
    staff_client.form(f"/admin/system/alerts/{rule_id}", {"do": "delete"})
    db.session.rollback()
    assert db.session.get(AlertRule, rule_id) is None
    assert len(audit_events("ops.alert_rule.deleted")) == 1
    assert staff_client.form("/admin/system/alerts/alr_missing", {"do": "delete"}).status_code == 404


@pytest.fixture
def alert_sink() -> Iterator[Receiver]:
    sink = start_receiver()
    yield sink
    sink.server.shutdown()
    sink.server.server_close()


@pytest.mark.usefixtures("webhook_env")
def test_low_webhook_success_fires_notifies_signed_and_resolves(staff_client, make, receiver, alert_sink):
    tenant = make.tenant()
    rule = alerts.create_rule(STAFF, {"name": "Webhooks poor", "kind": "webhook_success_rate", "threshold": "90",
                                      "window_minutes": "15", "webhook_url": alert_sink.url})
    secret = alerts.signing_secret(rule)
    _deliveries(tenant, receiver, succeeded=8, failed=2)  # 80%
    assert alerts.evaluate(clock.now() + timedelta(minutes=16))["fired"] == 0  # outside the window
    assert alerts.evaluate() == {"fired": 1, "resolved": 0, "firing": 1}
    [alert] = _firing()
    assert alert.value == 80.0 and "80% of 10 attempts" in alert.message
    [request] = alert_sink.requests
    event = Webhook(secret).verify(request.body, request.headers)
    assert event["type"] == "alert.fired" and event["data"]["rule_id"] == rule.id and event["data"]["value"] == 80.0
    assert alerts.evaluate()["fired"] == 0 and len(alert_sink.requests) == 1  # still firing: no second notice
    banner = text(staff_client.get("/admin/tenants/"))
    assert 'id="alert-banner"' in banner and "Webhooks poor" in banner
    assert len(audit_events("ops.alert.fired")) == 1

    db.session.execute(update(AlertRule).values(threshold=50))
    db.session.commit()
    assert alerts.evaluate()["resolved"] == 1
    assert _firing() == []
    resolved = Webhook(secret).verify(alert_sink.requests[1].body, alert_sink.requests[1].headers)
    assert resolved["type"] == "alert.resolved" and resolved["data"]["resolved_at"]
    assert 'id="alert-banner"' not in text(staff_client.get("/admin/tenants/"))


def test_a_rule_fires_only_after_its_for_duration(ctx):
    rule = alerts.create_rule(STAFF, {"name": "Queue slow", "kind": "queue_oldest_job", "threshold": "30",
                                      "for_seconds": "120"})
    age_oldest("default", 60)
    now = clock.now()
    assert alerts.evaluate(now)["fired"] == 0
    db.session.rollback()
    assert db.session.get(AlertRule, rule.id).pending_since is not None
    assert alerts.evaluate(now + timedelta(seconds=60))["fired"] == 0
    assert alerts.evaluate(now + timedelta(seconds=121))["fired"] == 1
    [alert] = _firing()
    assert "queue default" in alert.message


def test_a_failed_notification_is_kept_on_the_alert(ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "WEBHOOKS_ALLOW_HTTP", True)
    monkeypatch.setitem(ctx.config, "WEBHOOKS_ALLOWED_SUBNETS", ["127.0.0.0/8"])
    alerts.create_rule(STAFF, {"name": "Not ready", "kind": "readiness_failing",
                               "webhook_url": "http://127.0.0.1:1/nothing-listens"})
    assert alerts.evaluate()["fired"] == 1  # no worker, no scheduler: readiness fails
    [alert] = _firing()
    assert "readiness failing" in alert.message and "rq:workers" in alert.message
    assert alert.notify_error


def test_readiness_passing_does_not_fire(ctx):
    worker = alive()
    alerts.create_rule(STAFF, {"name": "Not ready", "kind": "readiness_failing"})
    try:
        assert alerts.evaluate()["fired"] == 0
    finally:
        worker.register_death()


def test_a_broken_audit_chain_fires_the_audit_rule(ctx, make):
    from app.audit.models import AuditEvent
    from app.ops import jobs

    make.tenant()
    alerts.create_rule(STAFF, {"name": "Audit broken", "kind": "audit_chain_broken"})
    result = jobs.verify_audit()
    assert result["ok"] and result["events"] >= 1
    assert _firing() == []
    from tests.audit.test_tamper import trigger_bypassed

    event = db.session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()))
    with trigger_bypassed() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.id == event.id).values(action="tampered.with"))
    result = jobs.verify_audit()
    assert not result["ok"] and result["broken"][0]["seq"] == event.seq
    [alert] = _firing()
    assert "audit chain broken" in alert.message


def test_the_scheduler_runs_alerts_every_minute_and_audit_verify_daily():
    from app.cron import JOBS
    from app.ops import jobs

    by_func = {job.func: job for job in JOBS}
    assert by_func[jobs.evaluate_alerts].interval == 60
    assert by_func[jobs.verify_audit].cron is not None


def test_one_evaluation_runs_at_a_time(ctx):
    from app.ops import jobs
    from app.queue import get_redis

    alerts.create_rule(STAFF, {"name": "Not ready", "kind": "readiness_failing"})
    get_redis().set(jobs.LOCK_KEY, "1", ex=55)
    assert jobs.evaluate_alerts() is None and _firing() == []
    get_redis().delete(jobs.LOCK_KEY)
    assert jobs.evaluate_alerts()["fired"] == 1
