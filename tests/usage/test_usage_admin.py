"""The staff usage pages: totals, top tenants, tenants near quota, one tenant's drill-down."""

from __future__ import annotations

from app.plans import service as plans_service
from app.plans.queries import find_plan
from app.security import Actor
from app.usage import rollup


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_staff_see_totals_top_tenants_and_who_is_near_quota(ctx, client, make, staff_client, tenant_world):
    plans_service.update_plan(Actor.system("tests"), find_plan("pro").id,
                              {"quotas": {"api_calls": {"included": 5, "overage": "0.1"}}})
    for _ in range(4):
        client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))
    client.get("/api/v1/tenant", headers=bearer(tenant_world["b"]["token"]))
    rollup.rollup_all()
    page = staff_client.get("/admin/usage/").get_data(as_text=True)
    near = page[page.index('id="usage-near"'):page.index('id="usage-top"')]
    assert "Tenant A" in near and "80%" in near and "Tenant B" not in near
    top = page[page.index('id="usage-top"'):]
    assert top.index("Tenant A") < top.index("Tenant B")
    drill = staff_client.get(f"/admin/usage/{tenant_world['a']['tenant'].id}").get_data(as_text=True)
    assert "GET /api/v1/tenant" in drill
    assert staff_client.get("/admin/usage/ten_01jzzzzzzzzzzzzzzzzzzzzzzz").status_code == 404


def test_usage_pages_are_for_staff_only(as_role, client):
    assert client.get("/admin/usage/").status_code == 302
    assert as_role("owner").get("/admin/usage/").status_code == 404


def test_demo_seed_writes_90_days_of_usage_that_the_pages_show(app, staff_client):
    result = app.test_cli_runner().invoke(args=["demo", "seed", "--tenants", "3"])
    assert result.exit_code == 0, result.output
    assert "days of usage" in result.output
    page = staff_client.get("/admin/usage/").get_data(as_text=True)
    assert "Acme Corp" in page and 'id="usage-chart"' in page
