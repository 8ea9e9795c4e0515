"""Rate limits on the API path, through the real app and a real Redis."""

from __future__ import annotations

from sqlalchemy import event

from app.auth import apikeys
from app.extensions import db
from app.plans import service as plans_service
from app.plans.queries import find_plan
from app.security import Actor


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tight_plan(ctx, per_second=3, per_minute=100):
    plans_service.ensure_default_plans(Actor.system("tests"))
    free = find_plan("free")
    plans_service.update_plan(Actor.system("tests"), free.id,
                              {"rate_limit_per_second": per_second, "rate_limit_per_minute": per_minute})


def test_every_api_answer_carries_the_limit_headers(client, tenant_world):
    response = client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))
    assert response.status_code == 200
    assert response.headers["RateLimit-Policy"] == '"tenant-second";q=50;w=1, "tenant-minute";q=1000;w=60'
    assert response.headers["RateLimit"].startswith('"tenant-second";r=49;t=')
    assert response.headers["X-RateLimit-Limit"] == "50"
    assert response.headers["X-RateLimit-Remaining"] == "49"
    assert int(response.headers["X-RateLimit-Reset"]) > 0


def test_the_request_over_the_plan_limit_gets_429_with_retry_after(ctx, client, make):
    _tight_plan(ctx, per_second=3)
    tenant = make.tenant(plan="free")
    _, token = make.api_key(tenant, scopes=["tenant:read"])
    statuses = [client.get("/api/v1/tenant", headers=bearer(token)).status_code for _ in range(3)]
    refused = client.get("/api/v1/tenant", headers=bearer(token))
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    body = refused.get_json()
    assert body["type"].endswith("/rate-limit-exceeded/tenant-second")
    assert body["violated_policy"] == "tenant-second"
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["X-RateLimit-Remaining"] == "0"


def test_limits_are_per_tenant(ctx, client, make):
    _tight_plan(ctx, per_second=2)
    first, second = make.tenant(plan="free"), make.tenant(plan="free")
    _, token_1 = make.api_key(first, scopes=["tenant:read"])
    _, token_2 = make.api_key(second, scopes=["tenant:read"])
    for _ in range(2):
        client.get("/api/v1/tenant", headers=bearer(token_1))
    assert client.get("/api/v1/tenant", headers=bearer(token_1)).status_code == 429
    assert client.get("/api/v1/tenant", headers=bearer(token_2)).status_code == 200


def test_writes_have_a_stricter_route_class(ctx, client, make):
    _tight_plan(ctx, per_second=4)
    tenant = make.tenant(plan="free")
    _, token = make.api_key(tenant, scopes=["members:write"])
    answers = [client.post("/api/v1/members", json={"email": f"p{i}@example.com"}, headers=bearer(token))
               for i in range(3)]
    assert [a.status_code for a in answers[:2]] != [429, 429]
    assert answers[2].status_code == 429
    assert answers[2].get_json()["violated_policy"] == "write-second"


def test_a_plan_change_applies_to_cached_tenants_at_once(ctx, client, make):
    _tight_plan(ctx, per_second=2)
    tenant = make.tenant(plan="free")
    _, token = make.api_key(tenant, scopes=["tenant:read"])
    assert client.get("/api/v1/tenant", headers=bearer(token)).headers["X-RateLimit-Limit"] == "2"
    _tight_plan(ctx, per_second=7)
    assert client.get("/api/v1/tenant", headers=bearer(token)).headers["X-RateLimit-Limit"] == "7"


def test_revocation_and_suspension_are_seen_on_the_next_request(ctx, client, make):
    from app.tenancy import service as tenancy_service

    tenant = make.tenant()
    key, token = make.api_key(tenant, scopes=["tenant:read"])
    assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 200  # now cached
    tenancy_service.set_status(Actor.system("tests"), tenant.id, "suspended")
    assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 403
    tenancy_service.set_status(Actor.system("tests"), tenant.id, "active")
    assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 200
    apikeys.revoke_key(make.actor_for(tenant), tenant.id, key.id)
    assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 401


def test_no_sql_on_the_api_path_once_caches_are_warm(app, client, tenant_world):
    token = tenant_world["a"]["token"]
    assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 200  # warms the caches
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            response = client.get("/api/v1/tenant", headers=bearer(token))
            assert response.status_code == 200 and response.get_json()["slug"] == "tenant-a"
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []


def test_last_use_is_recorded_in_redis_on_the_request_path(app, client, tenant_world):
    from app.queue import get_redis

    a = tenant_world["a"]
    client.get("/api/v1/tenant", headers=bearer(a["token"]))
    with app.app_context():
        stamps = get_redis().hgetall(f"rl:{{{a['tenant'].id}}}:last_used")
    assert a["key"].id.encode() in stamps


def test_last_use_reaches_the_database_through_the_flush_job(app, client, tenant_world):
    from app.auth.jobs import flush_last_used
    from app.auth.models import ApiKey

    a = tenant_world["a"]
    client.get("/api/v1/tenant", headers=bearer(a["token"]))
    with app.app_context():
        assert db.session.get(ApiKey, a["key"].id).last_used_at is None
        assert flush_last_used() == 1
        assert db.session.get(ApiKey, a["key"].id).last_used_at is not None
        assert flush_last_used() == 0  # taken once: a second run has nothing to write
