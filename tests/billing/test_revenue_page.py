"""The staff revenue page /admin/revenue: the month's figures from the pre-aggregated rows, the charts, the
month and currency selectors, top tenants, renewals, past-due invoices, the empty state, Recompute (audited),
and who may see it."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from app import clock
from app.billing import invoices, metrics, subscriptions
from app.billing.metrics_models import RevenueMonth
from app.extensions import db
from app.plans import service as plans_service
from tests.admin.helpers import audit_events, fresh, text
from tests.billing.conftest import SYSTEM, invoices_of


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2030, month, day, hour, tzinfo=UTC)


@pytest.fixture
def billed(make, frozen):
    """Jan 15: Acme subscribes to Enterprise, Globex to Pro; Globex's first invoice is finalized and cannot
    be collected (no way to pay), so it is past due. Feb 3: Globex upgrades. Figures computed on Feb 3."""
    acme = make.tenant(name="Acme", slug="acme")
    globex = make.tenant(name="Globex", slug="globex")
    subscriptions.create(SYSTEM, acme.id, "enterprise", trial=False)
    subscriptions.create(SYSTEM, globex.id, "pro", trial=False)
    [invoice] = invoices_of(globex.id)
    invoices.finalize(SYSTEM, invoice.id)
    with clock.travel(at(2, 3)):
        from app.billing import changes

        changes.change_plan(SYSTEM, globex.id, "enterprise")
        metrics.rebuild_all()
        yield {"acme": acme, "globex": globex, "invoice": invoices.get_invoice(None, invoice.id)}


def test_the_page_shows_the_latest_month(billed, staff_client):
    response = staff_client.get("/admin/revenue")
    assert response.status_code == 200
    page = text(response)
    assert "February 2030 · USD" in page
    assert re.search(r'id="revenue-mrr">\$1,000\.00<', page)  # 50000 + 50000 cents
    assert re.search(r'id="revenue-arr">\$12,000\.00<', page)
    assert re.search(r'id="revenue-net-new">\$451\.00<', page)  # Globex's upgrade: 50000 − 4900
    assert re.search(r'id="revenue-arpa">\$500\.00<', page)
    assert re.search(r'id="revenue-nrr">182\.1%<', page)  # 100000 / 54900
    assert re.search(r'id="revenue-net-churn">-82\.1%<', page)  # (0 + 0 − 45100 − 0) / 54900
    assert re.search(r'id="revenue-gross-churn">0\.0%<', page)
    assert 'id="revenue-customer-churn">0.0%<' in page
    assert "<th>Expansion</th><td>$451.00</td>" in page and "<th>Churn</th><td>$0.00</td>" in page
    for chart in ("revenue-mrr-chart", "revenue-movements-chart"):
        figure = json.loads(html.unescape(re.search(rf'id="{chart}" data-figure=\'([^\']+)\'', page).group(1)))
        assert figure["data"][0]["x"] == ["2030-01", "2030-02"]
    found = re.search(r'id="revenue-movements-chart" data-figure=\'([^\']+)\'', page)
    movements = json.loads(html.unescape(found.group(1)))
    by_name = {trace["name"]: trace["y"] for trace in movements["data"]}
    assert by_name["New"] == [549.0, 0.0] and by_name["Expansion"] == [0.0, 451.0]
    assert movements["layout"]["barmode"] == "relative"
    top = page[page.index('id="revenue-top"'):page.index('id="revenue-renewals"')]
    assert "Acme" in top and "Globex" in top and f"/admin/tenants/{billed['acme'].id}" in top
    renewals = page[page.index('id="revenue-renewals"'):page.index('id="revenue-past-due"')]
    assert "Acme" in renewals and "2030-02-15" in renewals  # both renew on Feb 15
    past_due = page[page.index('id="revenue-past-due"'):]
    assert billed["invoice"].number in past_due and f"/admin/tenants/{billed['globex'].id}" in past_due
    assert "$49.00" in past_due and "retrying" in past_due
    assert 'aria-current="page">Revenue<' in page


def test_the_month_selector_shows_an_earlier_month(billed, staff_client):
    page = text(staff_client.get("/admin/revenue?month=2030-01&currency=USD"))
    assert "January 2030 · USD" in page
    assert re.search(r'id="revenue-mrr">\$549\.00<', page)
    assert re.search(r'id="revenue-nrr">—<', page)  # no MRR at the start of January
    assert '<option value="2030-01" selected>' in page
    # an unknown month or currency falls back to the latest month and the main currency
    page = text(staff_client.get("/admin/revenue?month=1999-01&currency=XYZ"))
    assert "February 2030 · USD" in page
    assert "February 2030 · USD" in text(staff_client.get("/admin/revenue?month=garbage"))


def test_several_currencies_get_a_selector_with_the_main_one_first(billed, make, staff_client):
    plans_service.create_plan(SYSTEM, {"code": "pro-eur", "name": "Pro EUR", "currency": "EUR",
                                       "price_monthly": 4500, "price_annual": 45000, "trial_days": 0,
                                       "quotas": {"api_calls": {"included": 100_000, "overage": None}}})
    db.session.commit()
    subscriptions.create(SYSTEM, make.tenant(name="Initech").id, "pro-eur", trial=False)
    metrics.rebuild(date(2030, 2, 1))
    page = text(staff_client.get("/admin/revenue"))
    assert 'id="f-currency"' in page and "February 2030 · USD" in page
    assert page.index('<option value="USD"') < page.index('<option value="EUR"')
    page = text(staff_client.get("/admin/revenue?currency=EUR"))
    assert "February 2030 · EUR" in page and re.search(r'id="revenue-mrr">€45\.00<', page)


def test_without_billing_data_the_page_says_what_to_expect(frozen, make, staff_client):
    make.tenant()
    page = text(staff_client.get("/admin/revenue"))
    assert "No billing data yet" in page and 'id="revenue-mrr-chart"' not in page
    assert "Recompute" in page


def test_recompute_rebuilds_the_month_and_is_audited(billed, staff_client):
    db.session.execute(db.delete(RevenueMonth).where(RevenueMonth.month == date(2030, 1, 1)))
    db.session.commit()
    response = staff_client.form("/admin/revenue/recompute", {"month": "2030-01", "currency": "USD"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/revenue?month=2030-01&currency=USD"
    fresh()
    assert db.session.get(RevenueMonth, (date(2030, 1, 1), "USD")).mrr_end == 54900
    [event] = audit_events("revenue.recomputed")
    assert event.meta == {"months": ["2030-01"], "rows": 1} and event.actor_display == staff_client.user.email
    page = text(staff_client.get(response.headers["Location"]))
    assert "Revenue for January 2030 recomputed (1 currency)." in page


def test_recompute_by_htmx_answers_with_the_page_to_load(billed, staff_client):
    response = staff_client.form("/admin/revenue/recompute", {"month": "2030-02", "currency": "USD"}, htmx=True)
    assert response.status_code == 204
    assert json.loads(response.headers["HX-Location"])["path"] == "/admin/revenue?month=2030-02&currency=USD"


@pytest.mark.parametrize("month", ["", "2030-13", "soon", "2031-01"])
def test_recompute_refuses_a_bad_or_future_month(billed, staff_client, month):
    response = staff_client.form("/admin/revenue/recompute", {"month": month})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/revenue"
    assert audit_events("revenue.recomputed") == []
    page = text(staff_client.get("/admin/revenue"))
    assert "A month as YYYY-MM" in page or "has not started yet" in page


def test_only_staff_see_it(billed, client, as_role):
    assert client.get("/admin/revenue").status_code == 302
    assert client.get("/admin/revenue").headers["Location"].startswith("/admin/login")
    owner = as_role("owner")
    assert owner.get("/admin/revenue").status_code == 404
    assert owner.form("/admin/revenue/recompute", {"month": "2030-01"}).status_code == 404
    assert audit_events("revenue.recomputed") == []



def test_the_live_lists_hold_at_most_20_in_order(make, frozen):
    from app.billing import metrics_queries

    tenants = []
    for hour in range(23):
        with clock.travel(at(1, 15, 0) + timedelta(hours=hour)):
            tenant = make.tenant(name=f"T{hour:02d}")
            subscriptions.create(SYSTEM, tenant.id, "pro", trial=False)
            invoices.finalize(SYSTEM, invoices_of(tenant.id)[0].id)  # no way to pay: past due
            tenants.append(tenant)
    subscriptions.cancel(SYSTEM, tenants[0].id, at_period_end=True)  # will not renew
    with clock.travel(at(1, 20)):
        renewals = metrics_queries.upcoming_renewals("USD")
        past_due = metrics_queries.past_due_invoices("USD")
        metrics_queries.with_tenants(renewals, past_due)
    assert [row.tenant.name for row in renewals] == [f"T{hour:02d}" for hour in range(1, 21)]
    assert [row.at for row in renewals] == sorted(row.at for row in renewals)
    assert [row.tenant.name for row in past_due] == [f"T{hour:02d}" for hour in range(20)]
    assert all(row.amount == 4900 for row in past_due)
    assert metrics_queries.upcoming_renewals("EUR") == [] and metrics_queries.past_due_invoices("EUR") == []
