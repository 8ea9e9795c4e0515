"""Staff API authentication: platform keys only, on /api/v1/admin only; scopes; revocation; rate limits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth import platform_keys
from app.auth.platform_models import PlatformApiKey
from app.errors import Invalid
from app.extensions import db
from tests.api.test_auth_and_tenant import assert_problem, assert_unauthorized, bearer

ADMIN_ROUTES = ["/api/v1/admin/metrics", "/api/v1/admin/tenants", "/api/v1/admin/users", "/api/v1/admin/activity"]


def test_key_format_and_storage(platform_key):
    key, plaintext = platform_key()
    assert plaintext.startswith("tnt_plat_") and len(plaintext) == len("tnt_plat_") + 32
    assert platform_keys.is_well_formed(plaintext)
    assert key.key_hash == platform_keys.hash_key(plaintext) and plaintext not in key.key_hash
    assert key.masked == f"{plaintext[:13]}…{plaintext[-4:]}"
    stored = db.session.execute(select(PlatformApiKey.__table__)).all()
    assert plaintext not in repr(stored)  # only the hash is kept


@pytest.mark.parametrize("url", ADMIN_ROUTES)
def test_missing_key_is_401(client, url):
    assert_unauthorized(client.get(url), "Authorization: Bearer")


def test_malformed_and_unknown_keys_are_401(client, plat_token):
    typo = plat_token[:-1] + ("A" if plat_token[-1] != "A" else "B")
    assert_unauthorized(client.get("/api/v1/admin/tenants", headers=bearer(typo)), "malformed")
    unknown = platform_keys.generate()
    assert_unauthorized(client.get("/api/v1/admin/tenants", headers=bearer(unknown)), "not valid")


def test_key_in_url_is_refused(client, plat_token):
    assert_unauthorized(client.get(f"/api/v1/admin/tenants?api_key={plat_token}"), "never in the URL")


def test_revoked_key_is_401_on_its_next_request(client, platform_key):
    key, token = platform_key()
    assert client.get("/api/v1/admin/tenants", headers=bearer(token)).status_code == 200
    platform_keys.revoke_key(platform_key.actor, key.id)
    assert_unauthorized(client.get("/api/v1/admin/tenants", headers=bearer(token)), "revoked")


@pytest.mark.parametrize("url", ADMIN_ROUTES)
def test_tenant_key_is_403_on_admin_routes(client, tenant_world, url):
    body = assert_problem(client.get(url, headers=bearer(tenant_world["a"]["token"])), 403)
    assert body["type"].endswith("/wrong-key-kind")
    assert "platform key" in body["detail"]


@pytest.mark.parametrize("url", ["/api/v1/tenant", "/api/v1/members", "/api/v1/usage/current",
                                 "/api/v1/webhooks/endpoints"])
def test_platform_key_is_403_on_tenant_routes(client, plat_token, url):
    body = assert_problem(client.get(url, headers=bearer(plat_token)), 403)
    assert body["type"].endswith("/wrong-key-kind")
    assert "/api/v1/admin" in body["detail"]


def test_platform_key_refused_on_tenant_routes_with_limits_off(app, client, plat_token, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_ENABLED", False)
    assert_problem(client.get("/api/v1/tenant", headers=bearer(plat_token)), 403)


@pytest.mark.parametrize(("method", "url", "scope"), [
    ("get", "/api/v1/admin/metrics", "admin:read"),
    ("get", "/api/v1/admin/tenants", "admin:read"),
    ("post", "/api/v1/admin/tenants", "admin:tenants:write"),
    ("get", "/api/v1/admin/users", "admin:users:read"),
    ("get", "/api/v1/admin/activity", "admin:activity:read"),
])
def test_missing_scope_is_403_naming_it_and_audited(client, platform_key, method, url, scope):
    others = sorted(set(platform_keys.PLATFORM_SCOPES) - {scope})
    key, token = platform_key(others)
    extra = {"json": {"name": "X"}} if method == "post" else {}
    response = getattr(client, method)(url, headers=bearer(token), **extra)
    body = assert_problem(response, 403)
    assert body["missing_scope"] == scope
    denial = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "access.denied")
                               .order_by(AuditEvent.id.desc()))
    assert (denial.actor_type, denial.actor_id, denial.outcome) == ("platform_key", key.id, "denied")
    assert denial.tenant_id is None and denial.meta["permission"] == scope


def test_last_used_is_recorded(client, platform_key):
    key, token = platform_key()
    assert key.last_used_at is None
    client.get("/api/v1/admin/tenants", headers=bearer(token))
    db.session.expire_all()
    assert db.session.get(PlatformApiKey, key.id).last_used_at is not None


def test_rate_limited_with_headers(app, client, plat_token, monkeypatch):
    monkeypatch.setitem(app.config, "PLATFORM_KEY_PER_SECOND", 3)
    statuses = [client.get("/api/v1/admin/tenants", headers=bearer(plat_token)) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[0].headers["X-RateLimit-Limit"] == "3"
    assert 'platform-key-second' in statuses[0].headers["RateLimit-Policy"]
    body = assert_problem(statuses[3], 429)
    assert body["violated_policy"] == "platform-key-second"
    assert int(statuses[3].headers["Retry-After"]) >= 1


class TestKeyService:
    def test_create_and_revoke_are_audited_on_the_platform_chain(self, platform_key):
        key, _ = platform_key(["admin:read"], name="billing sync")
        platform_keys.revoke_key(platform_key.actor, key.id)
        platform_keys.revoke_key(platform_key.actor, key.id)  # again: nothing more happens
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("platform_key.%"))
                                    .order_by(AuditEvent.id)).all()
        assert [e.action for e in events] == ["platform_key.created", "platform_key.revoked"]
        assert all(e.tenant_id is None and e.chain == "platform" and e.actor_type == "staff" for e in events)
        assert events[0].changes["scopes"] == [None, ["admin:read"]]
        assert events[0].targets == [{"type": "platform_key", "id": key.id, "name": "billing sync"}]

    @pytest.mark.parametrize(("name", "scopes", "fields"), [
        ("", ["admin:read"], {"name"}),
        ("x" * 81, ["admin:read"], {"name"}),
        ("ok", [], {"scopes"}),
        ("ok", ["tenant:read"], {"scopes"}),
        ("", ["nope"], {"name", "scopes"}),
    ])
    def test_bad_input(self, platform_key, name, scopes, fields):
        with pytest.raises(Invalid) as caught:
            platform_keys.create_key(platform_key.actor, name, scopes)
        assert set(caught.value.errors) == fields
        assert db.session.scalar(select(PlatformApiKey).where(PlatformApiKey.name == name)) is None


def test_platform_key_is_403_on_ofrep(client, plat_token):
    response = client.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "x"}},
                           headers=bearer(plat_token))
    assert response.status_code == 403 and response.get_json()["type"].endswith("/wrong-key-kind")


@pytest.mark.parametrize(("policy", "status"), [("open", 200), ("closed", 503)])
def test_redis_down_follows_the_api_policy(app, client, plat_token, monkeypatch, policy, status):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from app.ratelimit import service as gate

    def down():
        raise RedisConnectionError("down")

    monkeypatch.setattr(gate, "_gate", down)
    monkeypatch.setitem(app.config, "RATELIMIT_API_ON_REDIS_DOWN", policy)
    assert client.get("/api/v1/admin/tenants", headers=bearer(plat_token)).status_code == status
    gate.reset()
