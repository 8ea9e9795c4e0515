"""The usage API: this period against the plan, overage and its cost, daily history, top endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app import clock
from app.plans import service as plans_service
from app.plans.queries import find_plan
from app.security import Actor
from app.usage import rollup


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _pro(included: int) -> None:
    plans_service.ensure_default_plans(Actor.system("tests"))
    plans_service.update_plan(Actor.system("tests"), find_plan("pro").id,
                              {"quotas": {"api_calls": {"included": included, "overage": "0.1"}},
                               "rate_limit_per_second": 1000})


def _tenant_with_key(make, plan="pro"):
    tenant = make.tenant(plan=plan)
    _, token = make.api_key(tenant, scopes=["tenant:read", "usage:read"])
    return tenant, token


def test_current_usage_counts_this_months_successful_calls_live(ctx, client, make):
    _pro(included=5)
    _tenant, token = _tenant_with_key(make)
    for _ in range(3):
        client.get("/api/v1/tenant", headers=bearer(token))
    body = client.get("/api/v1/usage/current", headers=bearer(token)).get_json()
    assert (body["used"], body["included"], body["remaining"], body["hard_limit"]) == (3, 5, 2, False)
    assert body["period_start"].startswith(clock.now().strftime("%Y-%m-01"))
    rollup.rollup_all()  # after the rollup the same number comes from the tables
    again = client.get("/api/v1/usage/current", headers=bearer(token)).get_json()
    assert again["used"] == 4  # the first /usage/current call itself was a billed 2xx call


def test_overage_is_priced_at_the_plans_unit_price(ctx, client, make):
    _pro(included=2)
    _tenant, token = _tenant_with_key(make)
    for _ in range(6):
        client.get("/api/v1/tenant", headers=bearer(token))
    body = client.get("/api/v1/usage/overage", headers=bearer(token)).get_json()
    assert body["used"] == 6 and body["overage_units"] == 4
    assert body["unit_price"] == "0.1" and body["currency"] == "USD"
    assert body["amount"] == 0  # 4 × 0.1 cent = 0.4 cent → 0 cents, rounded half-even
    for _ in range(20):
        client.get("/api/v1/tenant", headers=bearer(token))
    # 6 + the overage call itself + 20 = 27 billed calls, 25 over: 2.5 cents, rounded half-even to 2.
    later = client.get("/api/v1/usage/overage", headers=bearer(token)).get_json()
    assert (later["overage_units"], later["amount"]) == (25, 2)


def test_unlimited_plans_have_no_remaining_and_no_overage(ctx, client, make):
    plans_service.ensure_default_plans(Actor.system("tests"))
    _tenant, token = _tenant_with_key(make, plan="enterprise")
    client.get("/api/v1/tenant", headers=bearer(token))
    body = client.get("/api/v1/usage/current", headers=bearer(token)).get_json()
    assert body["included"] is None and body["remaining"] is None and body["used"] == 1
    assert client.get("/api/v1/usage/overage", headers=bearer(token)).get_json()["amount"] == 0


def test_history_is_daily_and_zero_filled(ctx, client, make):
    _pro(included=1000)
    _tenant, token = _tenant_with_key(make)
    today = datetime(2030, 3, 10, 12, tzinfo=UTC)
    for days_ago, calls in ((2, 3), (0, 1)):
        with clock.travel(today - timedelta(days=days_ago)):
            for _ in range(calls):
                client.get("/api/v1/tenant", headers=bearer(token))
            rollup.rollup_all()
    with clock.travel(today):
        body = client.get("/api/v1/usage/history?days=3", headers=bearer(token)).get_json()
    assert body["days"] == [{"date": "2030-03-08", "api_calls": 3}, {"date": "2030-03-09", "api_calls": 0},
                            {"date": "2030-03-10", "api_calls": 1}]
    assert client.get("/api/v1/usage/history?days=0", headers=bearer(token)).status_code == 422
    assert client.get("/api/v1/usage/history?days=91", headers=bearer(token)).status_code == 422


def test_top_endpoints_with_error_rates(ctx, client, make):
    _pro(included=1000)
    tenant, token = _tenant_with_key(make)
    _, narrow = make.api_key(tenant, scopes=["members:read"])
    for _ in range(3):
        client.get("/api/v1/tenant", headers=bearer(token))
    client.get("/api/v1/tenant", headers=bearer(narrow))  # 403
    client.get("/api/v1/members", headers=bearer(narrow))
    rollup.rollup_all()
    body = client.get("/api/v1/usage/endpoints?days=7", headers=bearer(token)).get_json()
    assert body["data"][0] == {"route": "GET /api/v1/tenant", "calls": 4, "errors": 1, "error_rate": 0.25}
    assert {"route": "GET /api/v1/members", "calls": 1, "errors": 0, "error_rate": 0.0} in body["data"]


def test_usage_needs_the_usage_read_scope(ctx, client, make):
    tenant = make.tenant()
    _, token = make.api_key(tenant, scopes=["tenant:read"])
    response = client.get("/api/v1/usage/current", headers=bearer(token))
    assert response.status_code == 403 and response.get_json()["missing_scope"] == "usage:read"
