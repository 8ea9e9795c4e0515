"""Hard quotas: once the month's included calls are used, the API answers 429 quota-exceeded until
the month turns; plans with overage or no limit are never stopped."""

from __future__ import annotations

from datetime import UTC, datetime

from app import clock
from app.plans import service as plans_service
from app.plans.queries import find_plan
from app.security import Actor


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _plan(code: str, included: int, overage: str | None) -> None:
    plans_service.ensure_default_plans(Actor.system("tests"))
    plans_service.update_plan(Actor.system("tests"), find_plan(code).id,
                              {"quotas": {"api_calls": {"included": included, "overage": overage}},
                               "rate_limit_per_second": 1000})


def test_a_hard_quota_stops_the_month_and_renews_with_the_next(ctx, client, make):
    _plan("free", included=3, overage=None)
    tenant = make.tenant(plan="free")
    _, token = make.api_key(tenant, scopes=["tenant:read"])
    with clock.travel(datetime(2030, 5, 31, 23, 0, tzinfo=UTC)):
        assert [client.get("/api/v1/tenant", headers=bearer(token)).status_code for _ in range(3)] == [200] * 3
        refused = client.get("/api/v1/tenant", headers=bearer(token))
        assert refused.status_code == 429
        body = refused.get_json()
        assert body["type"].endswith("/quota-exceeded") and body["violated_policy"] == "monthly-quota"
        assert int(refused.headers["Retry-After"]) == 3600  # until June starts
    with clock.travel(datetime(2030, 6, 1, 0, 0, 1, tzinfo=UTC)):
        assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 200


def test_failed_calls_do_not_use_the_quota(ctx, client, make):
    _plan("free", included=2, overage=None)
    tenant = make.tenant(plan="free")
    _, token = make.api_key(tenant, scopes=["tenant:read"])
    _, narrow = make.api_key(tenant, scopes=["members:read"])
    for _ in range(5):
        assert client.get("/api/v1/tenant", headers=bearer(narrow)).status_code == 403
    assert [client.get("/api/v1/tenant", headers=bearer(token)).status_code for _ in range(3)] == [200, 200, 429]


def test_plans_with_overage_or_no_limit_are_never_stopped(ctx, client, make):
    _plan("pro", included=2, overage="0.1")
    _plan("enterprise", included=None, overage=None)
    for plan in ("pro", "enterprise"):
        tenant = make.tenant(plan=plan)
        _, token = make.api_key(tenant, scopes=["tenant:read"])
        assert {client.get("/api/v1/tenant", headers=bearer(token)).status_code for _ in range(4)} == {200}


def test_a_grace_lets_calls_run_past_a_hard_quota_then_stops_them(ctx, client, make, staff_client):
    _plan("free", included=10, overage=None)
    plan = find_plan("free")
    form = staff_client.get(f"/admin/plans/{plan.id}/edit").get_data(as_text=True)
    assert 'name="api_calls_grace"' in form
    plans_service.update_plan(Actor.system("tests"), plan.id,
                              {"quotas": {"api_calls": {"included": 10, "overage": None, "grace": 20}}})
    tenant = make.tenant(plan="free")
    _, token = make.api_key(tenant, scopes=["tenant:read"])
    statuses = [client.get("/api/v1/tenant", headers=bearer(token)).status_code for _ in range(13)]
    assert statuses == [200] * 12 + [429]  # 10 included + 20% grace
    refused = client.get("/api/v1/tenant", headers=bearer(token)).get_json()
    assert "quota of 10 API calls and its grace (2 more)" in refused["detail"]


def test_a_grace_needs_a_hard_quota(ctx, make):
    import pytest

    from app.errors import Invalid

    plans_service.ensure_default_plans(Actor.system("tests"))
    with pytest.raises(Invalid) as error:
        plans_service.update_plan(Actor.system("tests"), find_plan("pro").id,
                                  {"quotas": {"api_calls": {"included": 10, "overage": "0.1", "grace": 10}}})
    assert "only to a hard quota" in error.value.errors["quotas.api_calls.grace"]
    with pytest.raises(Invalid) as error:
        plans_service.update_plan(Actor.system("tests"), find_plan("free").id,
                                  {"quotas": {"api_calls": {"included": 10, "overage": None, "grace": 500}}})
    assert "quotas.api_calls.grace" in error.value.errors
