"""The staff usage pages: totals, top tenants, tenants near quota, one tenant's drill-down."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import select

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
    _assert_a_year_of_billing()


def _assert_a_year_of_billing():
    """The same seed gave the tenants a year of subscription history and invoices, through the services."""
    from app import clock
    from app.billing.invoice_models import Invoice
    from app.billing.models import SubscriptionEvent
    from app.extensions import db

    events = db.session.execute(select(SubscriptionEvent.type, SubscriptionEvent.occurred_at)).all()
    months = {(at.year, at.month) for _, at in events if at.replace(tzinfo=UTC) <= clock.now()}
    assert len(months) >= 12, sorted(months)
    types = {kind for kind, _ in events}
    assert {"created", "renewed", "past_due", "recovered"} <= types, types
    invoices = db.session.scalars(select(Invoice)).all()
    finalized = [invoice for invoice in invoices if invoice.status != "draft"]
    assert len(finalized) >= 12 and all(invoice.number for invoice in finalized)
    paid = [invoice for invoice in finalized if invoice.status == "paid"]
    assert len(paid) >= 11 and all(invoice.amount_paid == invoice.total for invoice in paid if invoice.total > 0)
    assert all(invoice.total == sum(line.amount for line in invoice.lines) for invoice in invoices)
