"""Warnings at 80% and 100% of a quota: once per threshold and month, as a domain event, an audit
event and a banner on the tenant's pages."""

from __future__ import annotations

from datetime import UTC, datetime

from app import clock
from app.audit.models import AuditEvent
from app.events.models import OutboxEvent
from app.extensions import db
from app.plans import service as plans_service
from app.plans.queries import find_plan
from app.security import Actor


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _warnings(tenant_id):
    return [e.payload["percent"] for e in db.session.query(OutboxEvent)
            .filter_by(tenant_id=tenant_id, type="usage.threshold_reached").order_by(OutboxEvent.id)]


def test_80_and_100_percent_are_announced_once_each(ctx, client, make):
    plans_service.ensure_default_plans(Actor.system("tests"))
    plans_service.update_plan(Actor.system("tests"), find_plan("pro").id,
                              {"quotas": {"api_calls": {"included": 10, "overage": "0.1"}}})
    tenant = make.tenant(plan="pro")
    _, token = make.api_key(tenant, scopes=["tenant:read"])
    with clock.travel(datetime(2030, 4, 10, tzinfo=UTC)):
        for _ in range(7):
            client.get("/api/v1/tenant", headers=bearer(token))
        assert _warnings(tenant.id) == []
        client.get("/api/v1/tenant", headers=bearer(token))  # the 8th call: 80%
        assert _warnings(tenant.id) == [80]
        for _ in range(5):  # 9 … 13: 100% once, then overage without further warnings
            client.get("/api/v1/tenant", headers=bearer(token))
        assert _warnings(tenant.id) == [80, 100]
    audit = db.session.query(AuditEvent).filter_by(tenant_id=tenant.id, action="usage.threshold_reached").all()
    assert sorted(e.severity for e in audit) == ["info", "warning"]
    with clock.travel(datetime(2030, 5, 1, tzinfo=UTC)):  # a new month starts from zero
        for _ in range(8):
            client.get("/api/v1/tenant", headers=bearer(token))
    assert _warnings(tenant.id) == [80, 100, 80]


def test_the_banner_shows_on_tenant_pages_past_80_percent(ctx, client, make, as_role, tenant_world):
    plans_service.update_plan(Actor.system("tests"), find_plan("pro").id,
                              {"quotas": {"api_calls": {"included": 5, "overage": "0.1"}}})
    owner = as_role("owner")
    assert "quota-banner" not in owner.get("/t/tenant-a/").get_data(as_text=True)
    for _ in range(4):
        client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))
    page = owner.get("/t/tenant-a/members").get_data(as_text=True)
    assert 'id="quota-banner"' in page and "80%" in page
    for _ in range(2):
        client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))
    assert "billed as overage" in owner.get("/t/tenant-a/").get_data(as_text=True)
