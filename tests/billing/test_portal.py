"""The tenant billing page: plan and period, the next invoice, a plan change previewed before it is
confirmed, cancel and reactivate, credit, the card on file through Stripe Checkout, and invoices (page and
CSV) — each only for the roles that may see or change billing, and never another tenant's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app import clock
from app.billing import invoices, subscriptions, wallets
from app.billing.invoice_models import Invoice
from app.billing.models import Subscription
from app.extensions import db
from tests.billing.conftest import STAFF, SYSTEM, T0
from tests.billing.fake_stripe import stripe_api  # noqa: F401  (fixture)

BASE = "/t/tenant-a/billing"


@pytest.fixture
def billed(tenant_world, frozen):
    """Tenant A on Pro monthly since T0, its first invoice finalized (unpaid: no card, no credit)."""
    tenant = tenant_world["a"]["tenant"]
    sub = subscriptions.create(SYSTEM, tenant.id, "pro", trial=False)
    invoice = db.session.scalar(select(Invoice).where(Invoice.tenant_id == tenant.id))
    invoices.finalize(SYSTEM, invoice.id)
    return {"tenant": tenant, "sub": sub, "invoice": db.session.get(Invoice, invoice.id)}


def test_owners_and_admins_see_billing_members_and_viewers_do_not(as_role, billed):
    page = as_role("owner").get(BASE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Pro · monthly · $49.00 a month" in html and "past due" in html
    assert billed["invoice"].number in html and "Confirm the change" in html and "Cancel subscription" in html
    assert 'id="upcoming-total">$49.00' in html  # the next renewal, before tax
    admin = as_role("admin").get(BASE).get_data(as_text=True)
    assert billed["invoice"].number in admin
    assert "Confirm the change" not in admin and "Cancel subscription" not in admin
    for role in ("member", "viewer"):
        assert as_role(role).get(BASE).status_code == 403
        assert "Billing" not in as_role(role).get("/t/tenant-a").get_data(as_text=True).split("</nav>")[0]
    assert as_role("owner").get("/t/tenant-b/billing").status_code in (403, 404)


def test_a_plan_change_is_previewed_then_confirmed(as_role, billed):
    with clock.travel(T0 + timedelta(days=15)):
        client = as_role("owner")  # signed in mid-period (a session from T0 would have expired)
        upgrade = client.form(f"{BASE}/preview", {"plan": "enterprise", "interval": "monthly"}, htmx=True)
        html = upgrade.get_data(as_text=True)
        assert upgrade.status_code == 200 and "Upgrade now" in html and "Unused time on Pro" in html
        assert "Remaining time on Enterprise" in html and 'id="preview-net"' in html
        assert db.session.get(Subscription, billed["sub"].id).plan.code == "pro"  # a preview writes nothing
        downgrade = client.form(f"{BASE}/preview", {"plan": "free", "interval": "monthly"}, htmx=True)
        assert "Downgrade on 2030-02-15" in downgrade.get_data(as_text=True)
        bad = client.form(f"{BASE}/preview", {"plan": "nope", "interval": "monthly"}, htmx=True)
        assert bad.status_code == 422 and 'id="preview-error"' in bad.get_data(as_text=True)

        assert client.form(f"{BASE}/change", {"plan": "free", "interval": "monthly"}).status_code == 303
        page = client.get(BASE).get_data(as_text=True)
        assert 'id="sub-scheduled">Free (monthly) from' in page
        assert client.form(f"{BASE}/change", {"plan": "enterprise", "interval": "monthly"}).status_code == 303
    sub = db.session.get(Subscription, billed["sub"].id)
    db.session.refresh(sub)
    assert sub.plan.code == "enterprise" and sub.pending_plan_id is None
    assert as_role("admin").form(f"{BASE}/change", {"plan": "pro"}).status_code == 403


def test_cancel_at_period_end_then_reactivate(as_role, billed):
    client = as_role("owner")
    assert client.form(f"{BASE}/cancel").status_code == 303
    page = client.get(BASE).get_data(as_text=True)
    assert "ends" in page and "Reactivate" in page and "No further invoice" in page
    assert client.form(f"{BASE}/reactivate").status_code == 303
    sub = db.session.get(Subscription, billed["sub"].id)
    db.session.refresh(sub)
    assert sub.cancel_at_period_end is False


def test_the_invoice_page_and_csv_and_nobody_elses(as_role, billed, make):
    client = as_role("admin")
    invoice = billed["invoice"]
    page = client.get(f"{BASE}/invoices/{invoice.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and f"Invoice {invoice.number}" in html and "@media print" not in html
    assert 'id="invoice-total">$49.00' in html and 'id="invoice-due">$49.00' in html and "data-print" in html
    assert "4,900" not in html  # the unit price shows in dollars, not in cents
    csv = client.get(f"{BASE}/invoices/{invoice.id}/csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv" and invoice.number in csv.get_data(as_text=True)
    assert f'filename="{invoice.number}.csv"' in csv.headers["Content-Disposition"]
    other = make.tenant()
    subscriptions.create(SYSTEM, other.id, "pro", trial=False)
    others = db.session.scalar(select(Invoice).where(Invoice.tenant_id == other.id))
    assert client.get(f"{BASE}/invoices/{others.id}").status_code == 404  # another tenant's
    assert client.get(f"{BASE}/invoices/inv_nope").status_code == 404
    assert as_role("owner", "b").get(f"/t/tenant-b/billing/invoices/{invoice.id}").status_code == 404


def test_credit_shows_and_a_card_is_added_through_checkout(as_role, billed, stripe_api, app):  # noqa: F811
    tenant = billed["tenant"]
    wallets.add(STAFF, tenant.id, "granted", {"amount": 2_500, "currency": "USD", "note": "welcome"})
    client = as_role("owner")
    html = client.get(BASE).get_data(as_text=True)
    assert "$25.00</strong> available" in html and "welcome" in html and "No card on file" in html
    assert "Buy credit" not in html  # only with a card
    answer = client.form(f"{BASE}/card")
    assert answer.status_code == 303 and answer.headers["Location"].startswith("https://checkout.example/cs_")
    [session] = stripe_api.posts("/v1/checkout/sessions")
    assert session.params["success_url"].endswith("/t/tenant-a/billing?card=added")
    assert as_role("admin").form(f"{BASE}/card").status_code == 403


def test_a_top_up_with_a_bad_amount_is_refused_with_the_reason(as_role, billed, stripe_api, monkeypatch, app):  # noqa: F811
    from app.billing import providers
    from app.billing.payment_models import PaymentAccount

    tenant = billed["tenant"]
    providers.ensure_customer(tenant.id)
    account = db.session.scalar(select(PaymentAccount).where(PaymentAccount.tenant_id == tenant.id))
    account.payment_method_ref, account.card_brand, account.card_last4 = "pm_fake", "visa", "4242"
    db.session.commit()
    client = as_role("owner")
    assert "Visa ending in 4242" in client.get(BASE).get_data(as_text=True)
    bad = client.form(f"{BASE}/top-up", {"amount": "12.345"})
    assert bad.status_code == 422 and "An amount such as 50 or 49.99" in bad.get_data(as_text=True)
    ok = client.form(f"{BASE}/top-up", {"amount": "30"})
    assert ok.status_code == 303
    assert wallets.balance(tenant.id, "USD") == 3_000


def test_an_owner_sets_billing_details_and_redeems_a_coupon(as_role, billed):
    from app.billing import coupons, tax
    from tests.billing.conftest import STAFF

    coupons.create_coupon(STAFF, {"name": "Half off", "code": "HALF", "percent_off": "50",
                                        "duration": "once"})
    client = as_role("owner")
    bad = client.form(f"{BASE}/details", {"country": "Germany", "region": "", "tax_id": ""})
    assert bad.status_code == 422 and "two-letter ISO 3166" in bad.get_data(as_text=True)
    assert client.form(f"{BASE}/details", {"country": "de", "region": "", "tax_id": "de123456789"}).status_code == 303
    profile = tax.get_profile(billed["tenant"].id)
    assert (profile.country, profile.tax_id) == ("DE", "DE123456789")
    unknown = client.form(f"{BASE}/coupon", {"coupon": "NOPE"})
    assert unknown.status_code in (404, 422) and 'id="e-coupon"' in unknown.get_data(as_text=True)
    assert client.form(f"{BASE}/coupon", {"coupon": "half"}).status_code == 303
    page = client.get(BASE).get_data(as_text=True)
    assert "Coupon Half off" in page and 'id="upcoming-total">$24.50' in page  # the next renewal, half off
    assert as_role("admin").form(f"{BASE}/coupon", {"coupon": "HALF"}).status_code == 403
    assert 'id="details-form"' not in as_role("admin").get(BASE).get_data(as_text=True)
