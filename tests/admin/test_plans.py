"""Staff plan pages: the catalogue, create and edit (prices in major units), archive and restore."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.extensions import db
from app.plans import queries
from app.plans import service as plans_service
from app.plans.models import Plan
from tests.admin.helpers import audit_events, follow, fresh, is_fragment, text

GOOD = {"code": "growth", "name": "Growth", "description": "For scale-ups.", "currency": "USD",
        "price_monthly": "49.00", "price_annual": "490", "trial_days": "14", "api_calls_included": "250000",
        "api_calls_overage": "0.001", "rate_limit_per_second": "20", "rate_limit_per_minute": "600",
        "max_webhook_endpoints": "5", "max_members": "", "features": "Webhooks, api", "is_public": "1",
        "sort_order": "3"}


def test_catalogue_lists_prices_quotas_limits_and_tenant_counts(staff_client, make):
    make.tenant(slug="t-a", plan="pro")
    make.tenant(slug="t-b", plan="pro")
    make.tenant(slug="t-c", plan="free")
    enterprise = queries.find_plan("enterprise")
    plans_service.set_archived(make.system, enterprise.id, True)
    response = staff_client.get("/admin/plans/")
    assert response.status_code == 200
    page = text(response)
    pro = page[page.index('id="plan-pro"'):page.index('id="plan-enterprise"')]
    assert "$49.00/month" in pro and "$490.00/year" in pro and "14 days" in pro
    assert "100,000" in pro and "0.001 USD" in pro and "50/s" in pro and "audit_export" in pro
    assert f'plan={queries.find_plan("pro").id}">2<' in pro
    free = page[page.index('id="plan-free"'):page.index('id="plan-pro"')]
    assert "hard limit" in free and f'plan={queries.find_plan("free").id}">1<' in free
    ent = page[page.index('id="plan-enterprise"'):]
    assert "unlimited" in ent and "archived" in ent and "Restore" in ent and 'data-confirm="Restore' in ent
    assert 'data-confirm="Archive Pro?' in pro


def test_empty_catalogue_says_what_to_do(staff_client):
    page = text(staff_client.get("/admin/plans/"))
    assert "No plans yet" in page and "/admin/plans/new" in page


def test_create_converts_major_units_and_audits(staff_client):
    response = staff_client.form("/admin/plans/new", GOOD)
    assert response.headers["Location"] == "/admin/plans/"
    assert "Plan Growth created." in text(follow(staff_client, response))
    fresh()
    plan = queries.find_plan("growth")
    assert (plan.price_monthly, plan.price_annual, plan.trial_days) == (4900, 49000, 14)
    assert plan.quotas == {"api_calls": {"included": 250000, "overage": "0.1"}}
    assert plan.overage_price("api_calls") == Decimal("0.1")
    assert (plan.rate_limit_per_second, plan.rate_limit_per_minute, plan.max_webhook_endpoints) == (20, 600, 5)
    assert plan.max_members is None and plan.features == ["api", "webhooks"] and plan.is_public
    [event] = audit_events("plan.created")
    assert event.targets[0]["id"] == plan.id and event.actor_id == staff_client.user.id


def test_blank_quota_is_unlimited_and_blank_overage_a_hard_limit(staff_client):
    staff_client.form("/admin/plans/new", GOOD | {"code": "open", "api_calls_included": "", "api_calls_overage": ""})
    staff_client.form("/admin/plans/new", GOOD | {"code": "capped", "api_calls_overage": ""})
    fresh()
    assert queries.find_plan("open").included("api_calls") is None
    capped = queries.find_plan("capped")
    assert capped.is_hard_limit("api_calls") and capped.included("api_calls") == 250000


def test_jpy_has_no_minor_units(staff_client):
    staff_client.form("/admin/plans/new", GOOD | {"code": "yen", "currency": "JPY", "price_monthly": "5000",
                                                   "price_annual": "50000", "api_calls_overage": "0.5"})
    fresh()
    plan = queries.find_plan("yen")
    assert (plan.price_monthly, plan.overage_price("api_calls")) == (5000, Decimal("0.5"))
    assert "¥5,000/month" in text(staff_client.get("/admin/plans/"))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("price_monthly", "49.001", "USD has 2 decimal places"),
    ("price_monthly", "forty", "Enter an amount like 49.00"),
    ("price_annual", "-1", "0 or more"),
    ("price_monthly", "1e999999999", "Enter an amount like"),
    ("api_calls_overage", "cheap", "Enter a price per call like 0.001"),
    ("api_calls_included", "lots", "Enter a whole number."),
    ("code", "Not A Code!", "2–40 characters"),
    ("rate_limit_per_second", "0", "Enter a number from 1"),
    ("features", "ok, not ok", "Feature keys use"),
])
def test_bad_input_is_422_with_the_field_message_and_creates_nothing(staff_client, field, value, message):
    response = staff_client.form("/admin/plans/new", GOOD | {field: value})
    assert response.status_code == 422
    page = text(response)
    assert message in page and f'id="e-{field}"' in page
    assert 'value="Growth"' in page  # the rest of the form is kept
    fresh()
    assert db.session.query(Plan).count() == 0
    assert audit_events("plan.created") == []


def test_taken_code_is_refused(staff_client, make):
    make.plans()
    response = staff_client.form("/admin/plans/new", GOOD | {"code": "pro"})
    assert response.status_code == 422 and "Another plan has this code." in text(response)


def test_htmx_form_errors_come_back_as_the_form_fragment(staff_client):
    response = staff_client.form("/admin/plans/new", GOOD | {"price_monthly": "x"}, htmx=True)
    assert response.status_code == 422 and is_fragment(response, "plan-form")


def test_edit_form_shows_major_units(staff_client, make):
    make.plans()
    page = text(staff_client.get(f"/admin/plans/{queries.find_plan('pro').id}/edit"))
    assert 'value="49.00"' in page and 'value="490.00"' in page and 'value="0.001"' in page
    assert 'value="100000"' in page and 'value="api, audit_export, webhooks"' in page


def test_edit_saves_and_audits_the_changes(staff_client, make):
    make.plans()
    pro = queries.find_plan("pro")
    response = staff_client.form(f"/admin/plans/{pro.id}/edit", GOOD | {"code": "pro", "name": "Pro",
                                                                          "price_monthly": "59.50"})
    follow(staff_client, response)
    fresh()
    db.session.refresh(pro)
    assert pro.price_monthly == 5950 and pro.quotas["api_calls"] == {"included": 250000, "overage": "0.1"}
    [event] = audit_events("plan.updated")
    assert event.changes["price_monthly"] == [4900, 5950]


def test_edit_with_bad_input_changes_nothing(staff_client, make):
    make.plans()
    pro = queries.find_plan("pro")
    response = staff_client.form(f"/admin/plans/{pro.id}/edit", GOOD | {"code": "pro", "name": "",
                                                                          "price_monthly": "1"})
    assert response.status_code == 422 and "Enter a name" in text(response)
    fresh()
    db.session.refresh(pro)
    assert (pro.name, pro.price_monthly) == ("Pro", 4900) and audit_events("plan.updated") == []


def test_archive_and_restore(staff_client, make):
    make.plans()
    pro = queries.find_plan("pro")
    page = text(follow(staff_client, staff_client.form(f"/admin/plans/{pro.id}/archive")))
    assert "Plan Pro archived" in page
    fresh()
    db.session.refresh(pro)
    assert pro.archived and audit_events("plan.archived")
    again = text(follow(staff_client, staff_client.form(f"/admin/plans/{pro.id}/archive")))
    assert "already archived" in again and len(audit_events("plan.archived")) == 1
    follow(staff_client, staff_client.form(f"/admin/plans/{pro.id}/restore"))
    fresh()
    db.session.refresh(pro)
    assert not pro.archived and audit_events("plan.restored")


def test_a_late_fee_and_late_interest_are_set_in_major_units_and_shown_again(staff_client, make):
    make.plans()
    pro = queries.find_plan("pro")
    bad = staff_client.form(f"/admin/plans/{pro.id}/edit", GOOD | {"code": "pro", "name": "Pro",
                                                                     "late_fee_percent": "150"})
    assert bad.status_code == 422 and "A percentage from 0 to 100" in text(bad)
    late = {"code": "pro", "name": "Pro", "late_fee": "12.50", "late_fee_percent": "1.5"}
    response = staff_client.form(f"/admin/plans/{pro.id}/edit", GOOD | late)
    follow(staff_client, response)
    fresh()
    db.session.refresh(pro)
    assert (pro.late_fee, pro.late_fee_percent) == (1250, Decimal("1.5"))
    page = text(staff_client.get(f"/admin/plans/{pro.id}/edit"))
    assert 'value="12.50"' in page and 'value="1.5"' in page
    [event] = audit_events("plan.updated")
    assert event.changes["late_fee"] == [0, 1250]
