"""Staff billing pages: invoices across tenants with filters, one invoice's actions (mark paid, void, write
off, credit note), a tenant's billing (grant credit, change plan now, cancel, subscribe) — validated,
audited, and hidden from everyone but staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app import clock
from app.audit.models import AuditEvent
from app.billing import invoices, subscriptions, wallets
from app.billing.invoice_models import CreditNote, Invoice
from app.billing.models import Subscription
from app.extensions import db
from app.tenancy.models import Tenant
from tests.billing.conftest import SYSTEM, T0

BASE = "/admin/billing"


@pytest.fixture
def billed(make, frozen):
    tenant = make.tenant(slug="acme-billing", name="Acme Billing")
    sub = subscriptions.create(SYSTEM, tenant.id, "pro", trial=False)
    invoice = db.session.scalar(select(Invoice).where(Invoice.tenant_id == tenant.id))
    invoices.finalize(SYSTEM, invoice.id)
    return {"tenant": tenant, "sub": sub, "invoice": db.session.get(Invoice, invoice.id)}


@pytest.fixture
def staff(frozen, staff_client):
    """A staff client signed in at T0 (a session from the real now would have expired by then)."""
    return staff_client


def _actions() -> list[str]:
    return [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_only_staff_see_billing(client, as_role, billed):
    assert client.get(BASE + "/").status_code in (302, 303, 404)
    assert as_role("owner").get(BASE + "/").status_code == 404
    assert as_role("owner").get(f"{BASE}/invoices/{billed['invoice'].id}").status_code == 404


def test_invoices_are_listed_and_filtered(staff, billed, make):
    other = make.tenant(slug="other-billing")
    subscriptions.create(SYSTEM, other.id, "pro", trial=False)
    others = db.session.scalar(select(Invoice).where(Invoice.tenant_id == other.id))
    page = staff.get(BASE + "/").get_data(as_text=True)
    assert billed["invoice"].number in page and f'id="invoice-{others.id}"' in page and "Acme Billing" in page
    mine = staff.get(BASE + "/?tenant=acme-billing").get_data(as_text=True)
    assert f'id="invoice-{billed["invoice"].id}"' in mine and f'id="invoice-{others.id}"' not in mine
    assert "No invoices" in staff.get(BASE + "/?tenant=acme-billing&status=paid").get_data(as_text=True)
    bad = staff.get(BASE + "/?status=nope")
    assert bad.status_code == 422 and "Status is one of" in bad.get_data(as_text=True)
    unknown = staff.get(BASE + "/?tenant=nobody")
    assert unknown.status_code == 422
    assert "dunning" in page.lower() and billed["invoice"].id in page  # no card, no credit: in dunning


def test_staff_record_a_payment_and_issue_a_credit_note(staff, billed):
    invoice = billed["invoice"]
    url = f"{BASE}/invoices/{invoice.id}"
    html = staff.get(url).get_data(as_text=True)
    assert "Mark paid" in html and "Void" in html and "Write off" in html and "Issue credit note" in html
    assert staff.form(f"{url}/mark-paid", {"reference": "wire 42"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).status == "paid"
    assert db.session.get(Subscription, billed["sub"].id).status == "active"
    too_much = staff.form(f"{url}/credit-note", {"amount": "100", "reason": "other"})
    assert too_much.status_code == 422 and "left to credit" in too_much.get_data(as_text=True)
    garbage = staff.form(f"{url}/credit-note", {"amount": "ten", "reason": "other"})
    assert garbage.status_code == 422
    assert staff.form(f"{url}/credit-note", {"amount": "10", "reason": "order_change",
                                                    "memo": "late feature"}).status_code == 303
    note = db.session.scalar(select(CreditNote))
    assert (note.amount, note.reason, note.memo) == (1000, "order_change", "late feature")
    assert {"invoice.paid", "credit_note.created"} <= set(_actions())
    csv = staff.get(f"{url}/csv")
    assert csv.status_code == 200 and invoice.number in csv.get_data(as_text=True)
    assert staff.form(f"{url}/explode").status_code == 404


def test_voiding_and_writing_off(staff, billed, make):
    invoice = billed["invoice"]
    assert staff.form(f"{BASE}/invoices/{invoice.id}/uncollectible").status_code == 303
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).status == "uncollectible"
    assert staff.form(f"{BASE}/invoices/{invoice.id}/void", {"reason": "duplicate"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).status == "void"
    again = staff.form(f"{BASE}/invoices/{invoice.id}/void")  # refused: shown as a toast, nothing changes
    assert again.status_code == 303


def test_staff_grant_credit_with_an_expiry_and_the_form_names_bad_fields(staff, billed):
    tenant = billed["tenant"]
    url = f"{BASE}/tenants/{tenant.id}"
    assert "No credit." in staff.get(url).get_data(as_text=True)
    bad = staff.form(f"{url}/credits", {"amount": "-5", "currency": "USD", "expires": "someday"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "A date such as 2026-12-31" in html and "An amount such as" in html
    ok = staff.form(f"{url}/credits", {"amount": "25.50", "currency": "USD", "expires": "2030-03-01",
                                              "note": "sorry for the outage"})
    assert ok.status_code == 303
    assert wallets.balance(tenant.id, "USD") == 2550
    [grant] = wallets.grants(tenant.id)
    assert grant.expires_at.date().isoformat() == "2030-03-01" and grant.note == "sorry for the outage"
    assert "credits.granted" in _actions()
    assert staff.get(f"{BASE}/tenants/acme-billing").status_code == 200  # by slug too
    assert staff.get(f"{BASE}/tenants/ten_nope").status_code == 404


def test_staff_downgrade_now_and_cancel_and_subscribe(app, staff, billed, make):
    from tests.conftest import login

    tenant = billed["tenant"]
    url = f"{BASE}/tenants/{tenant.id}"
    with clock.travel(T0 + timedelta(days=10)):
        login(staff, staff.user.email, make.PASSWORD, staff=True)  # a fresh session, ten days on
        assert staff.form(f"{url}/change", {"plan": "free", "interval": "monthly", "when": "now"}
                                 ).status_code == 303
        db.session.expire_all()
        assert db.session.get(Subscription, billed["sub"].id).plan.code == "free"
        assert db.session.get(Tenant, tenant.id).plan.code == "free"
        refused = staff.form(f"{url}/change", {"plan": "nope", "when": "now"})
        assert refused.status_code == 422
        assert staff.form(f"{url}/cancel", {"when": "now", "prorate": "1"}).status_code == 303
        db.session.expire_all()
        assert db.session.get(Subscription, billed["sub"].id).status == "canceled"
    fresh = make.tenant(slug="fresh-billing")
    page = staff.get(f"{BASE}/tenants/{fresh.id}").get_data(as_text=True)
    assert "No subscription" in page
    assert staff.form(f"{BASE}/tenants/{fresh.id}/subscribe", {"plan": "pro", "interval": "annual"}
                             ).status_code == 303
    sub = db.session.scalar(select(Subscription).where(Subscription.tenant_id == fresh.id))
    assert (sub.plan.code, sub.interval, sub.status) == ("pro", "annual", "active")
    dup = staff.form(f"{BASE}/tenants/{fresh.id}/subscribe", {"plan": "pro"})
    assert dup.status_code == 409


def test_staff_create_and_archive_coupons_and_the_form_names_bad_fields(staff):
    from app.billing.models import Coupon

    url = f"{BASE}/catalog"
    assert "No coupons yet" in staff.get(url).get_data(as_text=True)
    both = staff.form(f"{url}/coupons", {"name": "Bad", "kind": "percent", "value": "150", "duration": "once"})
    assert both.status_code == 422 and "A percentage above 0 and at most 100" in both.get_data(as_text=True)
    repeating = staff.form(f"{url}/coupons", {"name": "R", "kind": "percent", "value": "10", "duration": "repeating"})
    assert repeating.status_code == 422 and "How many invoices a repeating coupon" in repeating.get_data(as_text=True)
    assert staff.form(f"{url}/coupons", {"name": "Launch", "code": "launch20", "kind": "percent", "value": "20",
                                         "duration": "repeating", "duration_periods": "3", "max_redemptions": "100",
                                         "redeem_by": "2030-12-31"}).status_code == 303
    assert staff.form(f"{url}/coupons", {"name": "Ten off", "kind": "amount", "value": "10", "currency": "USD",
                                         "duration": "forever"}).status_code == 303
    launch = db.session.scalar(select(Coupon).where(Coupon.code == "LAUNCH20"))
    assert (launch.percent_off, launch.duration_periods, launch.max_redemptions) == (20, 3, 100)
    assert launch.redeem_by.date().isoformat() == "2030-12-31"
    assert db.session.scalar(select(Coupon.amount_off).where(Coupon.name == "Ten off")) == 1000
    dup = staff.form(f"{url}/coupons", {"name": "Again", "code": "LAUNCH20", "kind": "percent", "value": "5",
                                        "duration": "once"})
    assert dup.status_code == 422 and "Another coupon has this code" in dup.get_data(as_text=True)
    assert staff.form(f"{url}/coupons/{launch.id}/archive").status_code == 303
    db.session.refresh(launch)
    assert launch.archived_at is not None
    assert {"coupon.created", "coupon.archived"} <= set(_actions())


def test_staff_create_and_switch_tax_rates(staff):
    from app.billing.models import TaxRate

    url = f"{BASE}/catalog"
    bad = staff.form(f"{url}/tax-rates", {"country": "XX", "name": "VAT", "percentage": "19"})
    assert bad.status_code == 422 and "two-letter ISO 3166" in bad.get_data(as_text=True)
    assert staff.form(f"{url}/tax-rates", {"country": "de", "name": "VAT", "percentage": "19"}).status_code == 303
    again = staff.form(f"{url}/tax-rates", {"country": "DE", "name": "VAT", "percentage": "7"})
    assert again.status_code == 409
    rate = db.session.scalar(select(TaxRate))
    assert (rate.country, rate.percentage, rate.active) == ("DE", 19, True)
    assert staff.form(f"{url}/tax-rates/{rate.id}/toggle").status_code == 303
    db.session.refresh(rate)
    assert rate.active is False
    assert "19%" in staff.get(url).get_data(as_text=True)


def test_staff_record_that_a_tenant_pays_by_bank_transfer(staff, make):
    from app.billing import collection, tax

    tenant = make.tenant(slug="wire-payer")
    url = f"{BASE}/tenants/{tenant.id}"
    bad = staff.form(f"{url}/profile", {"country": "DE", "tax_exempt": "none", "default_payment_method": "cash"})
    assert bad.status_code == 422 and "bank_transfer" in bad.get_data(as_text=True)
    assert staff.form(f"{url}/profile", {"country": "DE", "tax_id": "DE123456789", "tax_exempt": "reverse",
                                         "default_payment_method": "bank_transfer"}).status_code == 303
    profile = tax.get_profile(tenant.id)
    assert (profile.tax_exempt, profile.default_payment_method) == ("reverse", "bank_transfer")
    subscriptions.create(SYSTEM, tenant.id, "pro", trial=False)
    draft = db.session.scalar(select(Invoice).where(Invoice.tenant_id == tenant.id))
    invoice = invoices.finalize(SYSTEM, draft.id)
    assert invoice.status == "open" and collection.collection_of(invoice.id) is None  # waits; no dunning
    assert db.session.scalar(select(Subscription.status).where(Subscription.tenant_id == tenant.id)) == "active"
    assert "billing_profile.updated" in _actions()
