"""The staff API's routes: metrics, tenants (list, create, read, update, suspend, resume, change plan),
users and activity; validation, pagination, Idempotency-Key and the audit trail of every change."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.extensions import db
from app.security import Actor
from app.tenancy import service as tenancy_service
from app.tenancy.models import Tenant
from tests.api.test_auth_and_tenant import assert_problem, bearer
from tests.api.test_lists_and_invites import walk


def field_errors(response) -> dict[str, str]:
    body = assert_problem(response, 422)
    return {e["field"]: e["message"] for e in body["errors"]}


def last_event(action: str) -> AuditEvent:
    db.session.expire_all()
    return db.session.scalar(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc()))


def tenant_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Tenant))


class TestMetrics:
    def test_figures(self, client, make, plat_token):
        make.tenant(slug="alpha", plan="free")
        beta = make.tenant(slug="beta", plan="pro")
        tenancy_service.set_status(Actor.system("tests"), beta.id, "suspended")
        response = client.get("/api/v1/admin/metrics", headers=bearer(plat_token))
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["object"] == "metrics"
        assert body["tenants"]["total"] == 2
        assert body["tenants"]["by_status"] == {"active": 1, "suspended": 1, "closed": 0}
        by_plan = {row["plan"]: row["count"] for row in body["tenants"]["by_plan"]}
        assert by_plan["free"] == by_plan["pro"] == 1
        assert body["usage"]["metric"] == "api_calls" and body["usage"]["calls_month"] == 0
        assert set(body["webhooks"]) >= {"attempts_24h", "success_rate_24h", "dead_letters"}
        assert body["revenue"]["currencies"] == [] and body["past_due"] == []
        assert body["queues"]["available"] is True
        assert {q["name"] for q in body["queues"]["queues"]} >= {"default", "webhooks"}

    def test_money_is_integer_minor_units(self, client, plat_token, ctx):
        from datetime import date

        from app import clock
        from app.billing.metrics_models import RevenueMonth

        db.session.add(RevenueMonth(month=date(clock.now().year, clock.now().month, 1), currency="EUR",
                                    mrr_end=129900, arr=1558800, customers_end=3, aging_as_of=clock.now(),
                                    computed_at=clock.now()))
        db.session.commit()
        body = client.get("/api/v1/admin/metrics", headers=bearer(plat_token)).get_json()
        row = body["revenue"]["currencies"][0]
        assert row["currency"] == "EUR" and row["mrr_end"] == 129900 and row["arr"] == 1558800
        assert row["customers"] == 3 and isinstance(row["mrr_end"], int)


class TestTenantList:
    def test_filters(self, client, make, plat_token):
        make.tenant(slug="alpha", name="Alpha", plan="free", tags=["beta"])
        make.tenant(slug="bravo", name="Bravo Corp", plan="pro", tags=["vip"])
        gone = make.tenant(slug="charlie", name="Charlie", plan="pro")
        tenancy_service.set_status(Actor.system("tests"), gone.id, "suspended")

        def slugs(query: str) -> list[str]:
            response = client.get(f"/api/v1/admin/tenants{query}", headers=bearer(plat_token))
            assert response.status_code == 200, response.get_data(as_text=True)
            return [t["slug"] for t in response.get_json()["data"]]

        assert slugs("") == ["charlie", "bravo", "alpha"]  # newest first
        assert slugs("?q=corp") == ["bravo"]
        assert slugs(f"?q={gone.id}") == ["charlie"]
        assert slugs("?status=suspended") == ["charlie"]
        assert slugs("?plan=pro") == ["charlie", "bravo"]
        assert slugs("?tag=vip") == ["bravo"]
        assert slugs("?plan=pro&status=active") == ["bravo"]

    def test_item_shape(self, client, make, plat_token):
        tenant = make.tenant(slug="alpha", name="Alpha", plan="free", tags=["beta"], country="DE")
        item = client.get("/api/v1/admin/tenants", headers=bearer(plat_token)).get_json()["data"][0]
        assert item == item | {"object": "tenant", "id": tenant.id, "slug": "alpha", "name": "Alpha", "plan": "free",
                               "status": "active", "country": "DE", "tags": ["beta"], "status_reason": ""}

    def test_pagination(self, client, make, plat_token):
        ids = [make.tenant(slug=f"t-{n:02d}").id for n in range(7)]
        pages = walk(client, "/api/v1/admin/tenants", plat_token, 3)
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [t["id"] for p in pages for t in p] == list(reversed(ids))

    @pytest.mark.parametrize(("query", "field"), [
        ("?status=gone", "status"), ("?limit=0", "limit"), ("?limit=101", "limit"),
        ("?starting_after=nope", "starting_after"), ("?plan=nosuch", "plan"), ("?tag=Not%20a%20tag", "tag"),
        ("?colour=red", "colour"),
    ])
    def test_bad_filters_are_422(self, client, plat_token, query, field):
        assert field in field_errors(client.get(f"/api/v1/admin/tenants{query}", headers=bearer(plat_token)))


class TestCreateTenant:
    def test_create_is_audited_with_the_platform_key(self, client, make, platform_key):
        make.plans()
        key, token = platform_key()
        response = client.post("/api/v1/admin/tenants", headers=bearer(token), json={
            "name": "Acme Inc.", "slug": "acme", "country": "de", "billing_email": "Billing@Acme.example",
            "plan": "pro", "tags": ["vip", "beta"]})
        assert response.status_code == 201, response.get_data(as_text=True)
        body = response.get_json()
        assert body == body | {"object": "tenant", "slug": "acme", "name": "Acme Inc.", "country": "DE",
                               "billing_email": "billing@acme.example", "plan": "pro", "tags": ["beta", "vip"],
                               "status": "active", "owner_invitation_url": None}
        event = last_event("tenant.created")
        assert (event.actor_type, event.actor_id, event.actor_display) == ("platform_key", key.id, key.name)
        assert event.tenant_id == body["id"]

    def test_owner_email_invites_someone_new(self, client, make, plat_token):
        make.plans()
        response = client.post("/api/v1/admin/tenants", headers=bearer(plat_token),
                               json={"name": "Beta", "owner_email": "new.owner@example.com"})
        assert response.status_code == 201, response.get_data(as_text=True)
        assert "/invitations/" in response.get_json()["owner_invitation_url"]

    def test_validation_reports_every_field_and_writes_nothing(self, client, make, plat_token):
        make.plans()
        make.tenant(slug="taken")
        before = tenant_count()
        errors = field_errors(client.post("/api/v1/admin/tenants", headers=bearer(plat_token),
                                          json={"name": "", "country": "Germany", "tags": ["Bad Tag"],
                                                "billing_email": "nope", "extra": 1}))
        assert set(errors) >= {"name", "country", "tags.0", "billing_email", "extra"}
        errors = field_errors(client.post("/api/v1/admin/tenants", headers=bearer(plat_token),
                                          json={"name": "Taken", "slug": "taken", "plan": "nosuch"}))
        assert set(errors) == {"slug", "plan"}
        assert "Another tenant" in errors["slug"]
        assert tenant_count() == before

    def test_idempotent_create(self, client, make, plat_token):
        make.plans()
        headers = {**bearer(plat_token), "Idempotency-Key": "create-acme"}
        body = {"name": "Acme", "slug": "acme"}
        first = client.post("/api/v1/admin/tenants", headers=headers, json=body)
        again = client.post("/api/v1/admin/tenants", headers=headers, json=body)
        assert first.status_code == again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_json() == first.get_json()
        assert tenant_count() == 1
        other = client.post("/api/v1/admin/tenants", headers=headers, data=json.dumps({"name": "Other"}),
                            content_type="application/json")
        assert_problem(other, 409)
        assert tenant_count() == 1

    def test_idempotency_keys_are_per_platform_key(self, client, make, platform_key):
        make.plans()
        tokens = [platform_key()[1], platform_key(name="second")[1]]
        for n, token in enumerate(tokens):
            response = client.post("/api/v1/admin/tenants", json={"name": f"Tenant {n}"},
                                   headers={**bearer(token), "Idempotency-Key": "same"})
            assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
        assert tenant_count() == 2

    def test_not_json_is_415(self, client, plat_token):
        response = client.post("/api/v1/admin/tenants", headers=bearer(plat_token), data="name=x",
                               content_type="application/x-www-form-urlencoded")
        assert_problem(response, 415)


class TestTenantChanges:
    @pytest.fixture
    def tenant(self, make):
        return make.tenant(slug="acme", name="Acme", plan="free", tags=["beta"])

    def test_get(self, client, tenant, plat_token):
        body = client.get(f"/api/v1/admin/tenants/{tenant.id}", headers=bearer(plat_token)).get_json()
        assert body["id"] == tenant.id and body["slug"] == "acme"

    @pytest.mark.parametrize("path", ["", "/suspend", "/resume", "/change-plan"])
    def test_unknown_tenant_is_404(self, client, plat_token, path):
        method = client.get if not path else client.post
        body = {"/suspend": {"json": {}}, "/change-plan": {"json": {"plan": "pro"}}}.get(path, {})
        response = method(f"/api/v1/admin/tenants/ten_00000000000000000000000000{path}", headers=bearer(plat_token),
                          **body)
        assert_problem(response, 404)

    def test_patch(self, client, tenant, platform_key):
        key, token = platform_key()
        response = client.patch(f"/api/v1/admin/tenants/{tenant.id}", headers=bearer(token),
                                json={"name": "Acme GmbH", "country": "DE", "tags": ["vip"], "billing_email": ""})
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json() | {"name": "Acme GmbH", "country": "DE", "tags": ["vip"]} == response.get_json()
        event = last_event("tenant.updated")
        assert event.actor_type == "platform_key" and event.actor_id == key.id
        assert event.changes["name"] == ["Acme", "Acme GmbH"] and event.changes["tags"] == [["beta"], ["vip"]]

    def test_patch_validation(self, client, tenant, plat_token):
        url = f"/api/v1/admin/tenants/{tenant.id}"
        assert set(field_errors(client.patch(url, headers=bearer(plat_token),
                                             json={"name": "", "country": "ZZ", "slug": "new"}))) >= {"name", "slug"}
        assert "country" in field_errors(client.patch(url, headers=bearer(plat_token), json={"country": "ZZ"}))
        assert "billing_email" in field_errors(client.patch(url, headers=bearer(plat_token),
                                                            json={"billing_email": "nope"}))
        db.session.expire_all()
        assert db.session.get(Tenant, tenant.id).name == "Acme"

    def test_suspend_and_resume(self, client, tenant, platform_key, make):
        key, token = platform_key()
        _, tenant_token = make.api_key(tenant)
        url = f"/api/v1/admin/tenants/{tenant.id}"
        response = client.post(f"{url}/suspend", headers=bearer(token), json={"reason": "Chargeback"})
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["status"] == "suspended"
        assert response.get_json()["status_reason"] == "Chargeback"
        event = last_event("tenant.suspended")
        assert (event.actor_type, event.actor_id, event.meta) == ("platform_key", key.id, {"reason": "Chargeback"})
        assert client.get("/api/v1/tenant", headers=bearer(tenant_token)).status_code == 403
        assert_problem(client.post(f"{url}/suspend", headers=bearer(token), json={}), 409)
        response = client.post(f"{url}/resume", headers=bearer(token))
        assert response.status_code == 200 and response.get_json()["status"] == "active"
        assert last_event("tenant.resumed").actor_id == key.id
        assert client.get("/api/v1/tenant", headers=bearer(tenant_token)).status_code == 200
        assert_problem(client.post(f"{url}/resume", headers=bearer(token)), 409)

    def test_suspend_reason_too_long(self, client, tenant, plat_token):
        response = client.post(f"/api/v1/admin/tenants/{tenant.id}/suspend", headers=bearer(plat_token),
                               json={"reason": "x" * 301})
        assert "reason" in field_errors(response)

    def test_change_plan_of_an_unsubscribed_tenant(self, client, tenant, platform_key):
        key, token = platform_key()
        url = f"/api/v1/admin/tenants/{tenant.id}/change-plan"
        response = client.post(url, headers=bearer(token), json={"plan": "pro"})
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["via"] == "tenant" and body["effective"] == "now" and body["tenant"]["plan"] == "pro"
        event = last_event("tenant.plan_changed")
        assert event.actor_type == "platform_key" and event.actor_id == key.id
        assert "plan" in field_errors(client.post(url, headers=bearer(token), json={"plan": "pro"}))  # already
        assert "plan" in field_errors(client.post(url, headers=bearer(token), json={"plan": "nosuch"}))
        assert "plan" in field_errors(client.post(url, headers=bearer(token), json={}))

    def test_change_plan_of_a_subscribed_tenant_goes_through_billing(self, client, tenant, platform_key):
        from app.billing import queries as billing_queries
        from app.billing import subscriptions

        subscriptions.create(Actor.system("tests"), tenant.id, plan="pro", trial=False)
        key, token = platform_key()
        response = client.post(f"/api/v1/admin/tenants/{tenant.id}/change-plan", headers=bearer(token),
                               json={"plan": "enterprise"})
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["via"] == "subscription" and body["effective"] == "now"
        db.session.expire_all()
        assert billing_queries.subscription(tenant.id).plan.code == "enterprise"
        assert body["tenant"]["plan"] == "enterprise"
        changed = db.session.scalars(select(AuditEvent).where(AuditEvent.actor_id == key.id)).all()
        assert changed and all(e.actor_type == "platform_key" for e in changed)


class TestUsers:
    def test_list_filter_and_no_secrets(self, client, tenant_world, plat_token):
        response = client.get("/api/v1/admin/users?q=owner@", headers=bearer(plat_token))
        assert response.status_code == 200, response.get_data(as_text=True)
        emails = sorted(u["email"] for u in response.get_json()["data"])
        assert emails == ["owner@a.example.com", "owner@b.example.com"]
        user = response.get_json()["data"][0]
        assert set(user) == {"object", "id", "email", "name", "is_staff", "disabled_at", "last_login_at",
                             "created_at"}
        exact = client.get("/api/v1/admin/users?email=Viewer@A.example.com", headers=bearer(plat_token)).get_json()
        assert [u["email"] for u in exact["data"]] == ["viewer@a.example.com"]

    def test_pagination(self, client, tenant_world, plat_token):
        pages = walk(client, "/api/v1/admin/users", plat_token, 3)
        ids = [u["id"] for p in pages for u in p]
        assert len(ids) == len(set(ids)) == 9  # 8 tenant users and the staff member who made the key
        assert ids == sorted(ids, reverse=True)

    def test_detail_with_memberships(self, client, tenant_world, make, plat_token):
        user = tenant_world["a"]["users"]["admin"]
        make.member(tenant_world["b"]["tenant"], "viewer", user)
        body = client.get(f"/api/v1/admin/users/{user.id}", headers=bearer(plat_token)).get_json()
        assert body["email"] == "admin@a.example.com"
        assert sorted((m["tenant_slug"], m["role"]) for m in body["memberships"]) == [
            ("tenant-a", "admin"), ("tenant-b", "viewer")]
        assert "password_hash" not in json.dumps(body)
        assert_problem(client.get("/api/v1/admin/users/usr_00000000000000000000000000",
                                  headers=bearer(plat_token)), 404)


class TestActivity:
    def test_feed_with_filters(self, client, tenant_world, make, platform_key):
        key, token = platform_key()
        a = tenant_world["a"]["tenant"]
        client.post(f"/api/v1/admin/tenants/{a.id}/suspend", headers=bearer(token), json={"reason": "r"})

        def actions(query: str) -> list[str]:
            response = client.get(f"/api/v1/admin/activity{query}", headers=bearer(token))
            assert response.status_code == 200, response.get_data(as_text=True)
            return [e["action"] for e in response.get_json()["data"]]

        assert actions("?limit=1") == ["tenant.suspended"]  # newest first
        assert actions(f"?actor={key.id}") == ["tenant.suspended"]
        assert actions("?tenant=tenant-a&action=tenant.") == ["tenant.suspended", "tenant.created"]
        assert actions("?action=platform_key.") == ["platform_key.created"]
        assert actions("?severity=warning&action=tenant.") == ["tenant.suspended"]
        assert actions("?outcome=denied") == []
        assert actions("?since=2999-01-01T00:00:00Z") == []
        event = client.get("/api/v1/admin/activity?limit=1", headers=bearer(token)).get_json()["data"][0]
        assert event["actor"] == {"type": "platform_key", "id": key.id, "display": key.name}
        assert event["tenant_id"] == a.id and event["changes"]["status"] == ["active", "suspended"]
        assert event["metadata"] == {"reason": "r"}

    def test_pagination(self, client, tenant_world, plat_token):
        pages = walk(client, "/api/v1/admin/activity", plat_token, 10)
        ids = [e["id"] for p in pages for e in p]
        assert len(ids) == len(set(ids)) > 10 and ids == sorted(ids, reverse=True)

    @pytest.mark.parametrize(("query", "field"), [
        ("?tenant=nosuch", "tenant"), ("?outcome=maybe", "outcome"), ("?severity=loud", "severity"),
        ("?since=yesterday", "since"), ("?since=2025-01-01T00:00:00", "since"),
        ("?since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z", "until"),
    ])
    def test_bad_filters_are_422(self, client, tenant_world, plat_token, query, field):
        assert field in field_errors(client.get(f"/api/v1/admin/activity{query}", headers=bearer(plat_token)))


def test_openapi_document_has_the_staff_api(client):
    spec = client.get("/api/openapi.json").get_json()
    for path, methods in {
        "/api/v1/admin/metrics": {"get"}, "/api/v1/admin/tenants": {"get", "post"},
        "/api/v1/admin/tenants/{tenant_id}": {"get", "patch"}, "/api/v1/admin/tenants/{tenant_id}/suspend": {"post"},
        "/api/v1/admin/tenants/{tenant_id}/resume": {"post"},
        "/api/v1/admin/tenants/{tenant_id}/change-plan": {"post"}, "/api/v1/admin/users": {"get"},
        "/api/v1/admin/users/{user_id}": {"get"}, "/api/v1/admin/activity": {"get"},
    }.items():
        assert set(spec["paths"][path]) >= methods, path
        for method in methods:
            operation = spec["paths"][path][method]
            assert {"401", "403", "422"} <= set(operation["responses"]), (path, method)
            if method == "post":
                assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])
    create = spec["paths"]["/api/v1/admin/tenants"]["post"]
    assert "201" in create["responses"]
    assert "AdminTenantList" in spec["components"]["schemas"] and "Metrics" in spec["components"]["schemas"]
