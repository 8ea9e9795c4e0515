"""API authentication: Bearer keys only, every refusal as problem+json; scopes; tenant isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app import clock
from app.audit.models import AuditEvent
from app.auth import apikeys
from app.extensions import db
from app.tenancy import service as tenancy_service


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def assert_unauthorized(response, detail_part: str = "") -> dict:
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert detail_part.lower() in body["detail"].lower()
    return body


def test_get_tenant(client, tenant_world):
    a = tenant_world["a"]
    response = client.get("/api/v1/tenant", headers=bearer(a["token"]))
    assert response.status_code == 200
    body = response.get_json()
    assert body == body | {"object": "tenant", "id": a["tenant"].id, "slug": "tenant-a", "name": "Tenant A",
                           "status": "active", "plan": "pro", "tags": []}
    assert "created_at" in body


class TestUnauthorized:
    def test_missing_header(self, client, tenant_world):
        assert_unauthorized(client.get("/api/v1/tenant"), "Authorization: Bearer")

    @pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token {token}", "Bearer", "Bearer   ", "{token}"])
    def test_wrong_scheme(self, client, tenant_world, header):
        value = header.format(token=tenant_world["a"]["token"])
        assert_unauthorized(client.get("/api/v1/tenant", headers={"Authorization": value}))

    def test_malformed_key(self, client, tenant_world):
        token = tenant_world["a"]["token"]
        typo = token[:-1] + ("A" if token[-1] != "A" else "B")
        assert_unauthorized(client.get("/api/v1/tenant", headers=bearer(typo)), "malformed")
        assert_unauthorized(client.get("/api/v1/tenant", headers=bearer("sk_live_123")), "malformed")

    def test_unknown_key(self, client, tenant_world):
        assert_unauthorized(client.get("/api/v1/tenant", headers=bearer(apikeys.generate())), "not valid")

    def test_revocation_takes_effect_on_the_next_request(self, client, tenant_world, make):
        a = tenant_world["a"]
        assert client.get("/api/v1/tenant", headers=bearer(a["token"])).status_code == 200
        apikeys.revoke_key(make.actor_for(a["tenant"]), a["tenant"].id, a["key"].id)
        assert_unauthorized(client.get("/api/v1/tenant", headers=bearer(a["token"])), "revoked")

    def test_expired_key(self, client, tenant_world, make):
        tenant = tenant_world["a"]["tenant"]
        expires = clock.now() + timedelta(hours=1)
        _, token = make.api_key(tenant, expires_at=expires)
        assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 200
        with clock.travel(expires + timedelta(seconds=1)):
            assert_unauthorized(client.get("/api/v1/tenant", headers=bearer(token)), "expired")

    @pytest.mark.parametrize("param", ["api_key", "access_token", "token"])
    def test_key_in_the_url_is_refused_even_with_a_valid_header(self, client, tenant_world, param):
        token = tenant_world["a"]["token"]
        assert_unauthorized(client.get(f"/api/v1/tenant?{param}={token}"), "URL")
        assert_unauthorized(client.get(f"/api/v1/tenant?{param}={token}", headers=bearer(token)), "URL")

    def test_cookies_are_not_credentials(self, app, tenant_world, make):
        from tests.conftest import client_for

        browser = client_for(app, make, tenant_world["a"]["users"]["owner"])
        assert_unauthorized(browser.get("/api/v1/tenant"))


class TestForbidden:
    def test_missing_scope_is_named_and_audited(self, client, tenant_world, make):
        tenant = tenant_world["a"]["tenant"]
        key, token = make.api_key(tenant, scopes=["tenant:read"], name="narrow")
        assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 200
        body = assert_problem(client.get("/api/v1/members?limit=5", headers=bearer(token)), 403)
        assert body["missing_scope"] == "members:read"
        assert "members:read" in body["detail"]
        denied = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "access.denied")).all()
        assert len(denied) == 1
        assert (denied[0].outcome, denied[0].tenant_id, denied[0].actor_type, denied[0].actor_id) == (
            "denied", tenant.id, "api_key", key.id)
        assert denied[0].meta["permission"] == "members:read"
        assert denied[0].meta["path"] == "/api/v1/members"

    def test_write_scope_is_needed_to_invite(self, client, tenant_world, make):
        _, token = make.api_key(tenant_world["a"]["tenant"], scopes=["members:read"])
        body = assert_problem(client.post("/api/v1/members", json={"email": "x@example.com"}, headers=bearer(token)),
                              403)
        assert body["missing_scope"] == "members:write"

    def test_suspended_tenant(self, client, tenant_world, make):
        a = tenant_world["a"]
        tenancy_service.set_status(make.system, a["tenant"].id, "suspended", "unpaid invoice")
        body = assert_problem(client.get("/api/v1/tenant", headers=bearer(a["token"])), 403)
        assert "suspended" in body["detail"]
        assert client.get("/api/v1/tenant", headers=bearer(tenant_world["b"]["token"])).status_code == 200


class TestIsolation:
    def test_another_tenants_key_never_sees_tenant_a(self, client, tenant_world):
        a, b = tenant_world["a"], tenant_world["b"]
        as_b = bearer(b["token"])
        assert client.get("/api/v1/tenant", headers=as_b).get_json()["id"] == b["tenant"].id
        a_ids = {a["tenant"].id, a["key"].id} | {u.id for u in a["users"].values()}
        a_emails = {u.email for u in a["users"].values()}
        for url in ("/api/v1/members?limit=100", "/api/v1/api-keys?limit=100"):
            body = client.get(url, headers=as_b).get_data(as_text=True)
            assert not [x for x in a_ids | a_emails if x in body], url
        # Paging from one of A's ids still only lists B's rows.
        a_member = client.get("/api/v1/members?limit=1", headers=bearer(a["token"])).get_json()["data"][0]["id"]
        page = client.get(f"/api/v1/members?starting_after={a_member}", headers=as_b).get_json()
        assert {m["email"] for m in page["data"]} <= {u.email for u in b["users"].values()}


def test_unknown_api_route_is_a_problem(client, tenant_world):
    assert_problem(client.get("/api/v1/nothing-here", headers=bearer(tenant_world["a"]["token"])), 404)
    assert_problem(client.delete("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"])), 405)
