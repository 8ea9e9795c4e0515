"""Invoices: overage from the rollup tables, coupons before tax, tax per line, finalization with gapless
numbers, immutability, payment states, credit notes and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest

from app import clock
from app.billing import coupons, invoices, run, subscriptions, tax
from app.billing.invoicing import price
from app.billing.models import Subscription
from app.errors import Conflict, Invalid
from app.extensions import db
from tests.billing.conftest import STAFF, SYSTEM, T0, add_usage, history_of, invoices_of, lines_of, outbox_types


def _renew(tenant_id: str, sub_id: str):
    """Run the billing run at the subscription's period end; return the new (draft) invoice."""
    sub = db.session.get(Subscription, sub_id)
    with clock.travel(sub.current_period_end):
        run.run(sub.current_period_end.date())
    return invoices_of(tenant_id)[-1]


def test_overage_is_billed_in_arrears_from_the_rollup_tables(subscribe):
    tenant, sub = subscribe("pro")
    add_usage(tenant.id, T0.date(), 90_000)
    add_usage(tenant.id, (T0 + timedelta(days=10)).date(), 60_000)  # 150,000 calls, 100,000 included
    add_usage(tenant.id, T0.replace(month=2).date(), 1_000_000)  # the next period's day: not in this window
    invoice = _renew(tenant.id, sub.id)
    assert invoice.billing_reason == "subscription_cycle"
    assert lines_of(invoice) == [("subscription", 4900), ("overage", 5000)]  # 50,000 × 0.1 minor units
    overage = invoice.lines[1]
    assert (overage.metric, overage.quantity, overage.unit_amount) == ("api_calls", 50_000, Decimal("0.1"))
    assert (invoice.usage_start, invoice.usage_end) == (T0, T0.replace(month=2))
    assert invoice.total == 9900


def test_usage_that_arrives_during_the_grace_is_billed_at_finalization(subscribe):
    tenant, sub = subscribe("pro")
    invoice = _renew(tenant.id, sub.id)
    assert invoice.total == 4900
    add_usage(tenant.id, (T0 + timedelta(days=20)).date(), 100_010)  # a late rollup
    with clock.travel(invoice.finalize_after):
        report = run.finalize_due()
    assert report.finalized == 1  # (the run at the period end finalized the first period's invoice)
    invoice = invoices_of(tenant.id)[-1]
    assert invoice.status == "open" and lines_of(invoice) == [("subscription", 4900), ("overage", 1)]


def test_finalizing_numbers_without_gaps_and_freezes_the_invoice(subscribe):
    numbers = []
    for _ in range(3):
        tenant, _sub = subscribe("pro")
        [invoice] = invoices_of(tenant.id)
        numbers.append(invoices.finalize(SYSTEM, invoice.id).number)
    assert numbers == ["INV-2030-000001", "INV-2030-000002", "INV-2030-000003"]
    invoice = invoices_of(tenant.id)[0]
    assert invoice.customer["slug"] == tenant.slug
    with pytest.raises(RuntimeError, match="immutable"):
        price(invoice)
    with pytest.raises(Conflict):
        invoices.finalize(SYSTEM, invoice.id)
    assert "invoice.finalized" in outbox_types(tenant.id)


def test_no_payment_method_fails_collection_and_puts_the_subscription_past_due(subscribe):
    tenant, sub = subscribe("pro")
    [invoice] = invoices_of(tenant.id)
    invoices.finalize(SYSTEM, invoice.id)
    assert db.session.get(Subscription, sub.id).status == "past_due"
    assert "invoice.payment_failed" in outbox_types(tenant.id)
    invoices.mark_paid(STAFF, invoice.id, "wire 123")
    assert db.session.get(Subscription, sub.id).status == "active"
    assert [e.type for e in history_of(tenant.id)][-2:] == ["past_due", "recovered"]
    assert invoices_of(tenant.id)[0].status == "paid"


def test_with_a_payment_method_the_invoice_stays_open_for_the_provider(subscribe, make):
    tenant = make.tenant()
    profile = tax.set_profile(SYSTEM, tenant.id, {"country": "US"})
    profile.default_payment_method = "pm_card_visa"
    db.session.commit()
    sub = subscriptions.create(SYSTEM, tenant.id, "pro", trial=False)
    [invoice] = invoices_of(tenant.id)
    assert invoices.finalize(SYSTEM, invoice.id).status == "open"
    assert db.session.get(Subscription, sub.id).status == "active"


def test_a_free_plan_invoice_is_paid_when_finalized(subscribe):
    tenant, _ = subscribe("free")
    [invoice] = invoices_of(tenant.id)
    assert invoices.finalize(SYSTEM, invoice.id).status == "paid"
    assert "invoice.paid" in outbox_types(tenant.id)


def test_void_and_uncollectible(subscribe):
    tenant, _ = subscribe("pro")
    [invoice] = invoices_of(tenant.id)
    invoices.finalize(SYSTEM, invoice.id)
    invoices.mark_uncollectible(STAFF, invoice.id)
    invoices.void(STAFF, invoice.id, "duplicate")
    assert invoices_of(tenant.id)[0].status == "void"
    with pytest.raises(Conflict):
        invoices.mark_paid(STAFF, invoice.id)
    assert "invoice.voided" in outbox_types(tenant.id)


def test_credit_notes_never_exceed_what_is_left(subscribe):
    tenant, _ = subscribe("pro")
    [invoice] = invoices_of(tenant.id)
    with pytest.raises(Conflict):
        invoices.create_credit_note(STAFF, invoice.id, 100)  # a draft
    invoices.finalize(SYSTEM, invoice.id)
    first = invoices.create_credit_note(STAFF, invoice.id, 900, "order_change", "goodwill")
    assert first.number == "CN-2030-000001"
    with pytest.raises(Invalid) as error:
        invoices.create_credit_note(STAFF, invoice.id, 4001)
    assert "amount" in error.value.errors
    with pytest.raises(Invalid) as error:
        invoices.create_credit_note(STAFF, invoice.id, 10, reason="because")
    assert "reason" in error.value.errors
    invoices.create_credit_note(STAFF, invoice.id, 4000)
    invoice = invoices_of(tenant.id)[0]
    assert (invoice.amount_credited, invoice.amount_due, invoice.status) == (4900, 0, "paid")
    assert outbox_types(tenant.id).count("credit_note.created") == 2


def test_percent_coupon_forever_applies_before_tax(subscribe, make):
    coupon = coupons.create_coupon(STAFF, {"name": "Launch 20%", "code": "launch20", "percent_off": "20",
                                           "duration": "forever"})
    tax.create_tax_rate(STAFF, {"country": "DE", "name": "VAT", "percentage": "19"})
    tenant = make.tenant(country="DE")
    subscriptions.create(SYSTEM, tenant.id, "pro", trial=False, coupon="LAUNCH20")
    [invoice] = invoices_of(tenant.id)
    assert lines_of(invoice) == [("subscription", 4900), ("discount", -980), ("tax", 745)]
    assert [line.tax_amount for line in invoice.lines] == [931, -186, 745]  # per line, half-up
    assert (invoice.subtotal, invoice.discount, invoice.tax, invoice.total) == (4900, 980, 745, 4665)
    assert history_of(tenant.id)[0].mrr_after == 3920
    assert db.session.get(type(coupon), coupon.id).times_redeemed == 1


def test_a_repeating_coupon_ends_after_its_periods(subscribe):
    coupons.create_coupon(STAFF, {"name": "Two months", "code": "TWO", "amount_off": 1000, "currency": "USD",
                                  "duration": "repeating", "duration_periods": 2})
    tenant, sub = subscribe("pro", coupon="two")
    second = _renew(tenant.id, sub.id)
    third = _renew(tenant.id, sub.id)
    first = invoices_of(tenant.id)[0]
    assert [inv.total for inv in (first, second, third)] == [3900, 3900, 4900]
    ended = [e for e in history_of(tenant.id) if e.type == "coupon_ended"]
    assert [(e.mrr_before, e.mrr_after) for e in ended] == [(3900, 4900)]


def test_coupon_limits_expiry_and_currency(subscribe, make, frozen):
    coupons.create_coupon(STAFF, {"name": "Once", "code": "ONE", "percent_off": "10", "duration": "once",
                                  "max_redemptions": 1})
    coupons.create_coupon(STAFF, {"name": "Old", "code": "OLD", "percent_off": "10", "duration": "once",
                                  "redeem_by": T0 - timedelta(days=1)})
    coupons.create_coupon(STAFF, {"name": "Euro", "code": "EURO", "amount_off": 500, "currency": "EUR",
                                  "duration": "once"})
    subscribe("pro", coupon="ONE")
    for code, message in (("ONE", "redeemed"), ("OLD", "expired"), ("EURO", "EUR")):
        tenant = make.tenant()
        with pytest.raises(Invalid, match=message) as error:
            subscriptions.create(SYSTEM, tenant.id, "pro", coupon=code)
        assert "coupon" in error.value.errors
    with pytest.raises(Invalid) as error:
        coupons.create_coupon(STAFF, {"name": "Both", "percent_off": "5", "amount_off": 5, "duration": "once"})
    assert "percent_off" in error.value.errors
    with pytest.raises(Invalid) as error:
        coupons.create_coupon(STAFF, {"name": "N", "percent_off": "5", "duration": "repeating"})
    assert "duration_periods" in error.value.errors


def test_inclusive_tax_is_shown_not_added(make, frozen):
    tax.create_tax_rate(STAFF, {"country": "GB", "name": "VAT", "percentage": "20", "inclusive": True})
    tenant = make.tenant(country="GB")
    subscriptions.create(SYSTEM, tenant.id, "pro", trial=False)
    [invoice] = invoices_of(tenant.id)
    assert lines_of(invoice) == [("subscription", 4900), ("tax", 0)]
    assert invoice.lines[0].tax_amount == 817  # 4900 − 4900 / 1.2 (4083, half-up)
    assert (invoice.tax, invoice.total) == (817, 4900)
    assert invoice.lines[1].description == "VAT 20% (included)"


def test_a_regions_rate_wins_over_the_countrys(make, frozen):
    tax.create_tax_rate(STAFF, {"country": "CA", "name": "GST", "percentage": "5"})
    tax.create_tax_rate(STAFF, {"country": "CA", "region": "QC", "name": "GST+QST", "percentage": "14.975"})
    tenant = make.tenant(country="CA")
    tax.set_profile(SYSTEM, tenant.id, {"country": "CA", "region": "qc"})
    subscriptions.create(SYSTEM, tenant.id, "pro", trial=False)
    [invoice] = invoices_of(tenant.id)
    assert lines_of(invoice) == [("subscription", 4900), ("tax", 734)]  # 733.775 → 734


def test_reverse_charge_makes_a_zero_rated_line_with_a_note(app, make, frozen):
    tax.create_tax_rate(STAFF, {"country": "FR", "name": "TVA", "percentage": "20"})
    tenant = make.tenant(country="FR")
    tax.set_profile(SYSTEM, tenant.id, {"country": "FR", "tax_id": "FR40303265045"})
    app.config["BILLING_SELLER_COUNTRY"] = "DE"
    try:
        subscriptions.create(SYSTEM, tenant.id, "pro", trial=False)
    finally:
        app.config["BILLING_SELLER_COUNTRY"] = ""
    [invoice] = invoices_of(tenant.id)
    assert lines_of(invoice) == [("subscription", 4900), ("tax", 0)]
    assert invoice.lines[0].tax_percent == 0 and "Reverse charge" in invoice.lines[0].tax_note
    assert "Reverse charge" in invoice.lines[1].description


def test_bad_profile_and_rate_fields_are_named(make, frozen):
    tenant = make.tenant()
    with pytest.raises(Invalid) as error:
        tax.set_profile(SYSTEM, tenant.id, {"country": "XX", "tax_exempt": "maybe", "tax_id": "!"})
    assert set(error.value.errors) == {"country", "tax_exempt", "tax_id"}
    with pytest.raises(Invalid) as error:
        tax.create_tax_rate(STAFF, {"country": "DE", "name": "VAT", "percentage": "101"})
    assert "percentage" in error.value.errors


def test_csv_export_has_a_row_per_line_and_a_total(subscribe):
    coupons.create_coupon(STAFF, {"name": "Ten", "code": "CSV", "percent_off": "10", "duration": "once"})
    tenant, _ = subscribe("pro", coupon="CSV")
    [invoice] = invoices_of(tenant.id)
    invoices.finalize(SYSTEM, invoice.id)
    rows = list(csv.DictReader(io.StringIO(invoices.invoice_csv(tenant.id, invoice.id))))
    assert [(r["kind"], r["amount"]) for r in rows] == [("subscription", "49.00"), ("discount", "-4.90"),
                                                        ("total", "44.10")]
    assert rows[0]["invoice"] == "INV-2030-000001"
    assert rows[0]["period_start"] == T0.isoformat()
    assert invoices._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"  # no formulas in a spreadsheet
    other = subscribe("pro")[0]
    from app.errors import NotFound

    with pytest.raises(NotFound):
        invoices.invoice_csv(other.id, invoice.id)


def test_the_database_layer_refuses_changes_to_a_finalized_invoice(subscribe):
    from app.billing.invoice_models import ImmutableInvoice

    tenant, _ = subscribe("pro")
    [invoice] = invoices_of(tenant.id)
    invoices.finalize(SYSTEM, invoice.id)
    invoice = invoices_of(tenant.id)[0]
    invoice.total += 1
    with pytest.raises(ImmutableInvoice, match="total"):
        db.session.flush()
    db.session.rollback()
    invoice = invoices_of(tenant.id)[0]
    invoice.lines[0].amount = 1
    with pytest.raises(ImmutableInvoice, match="lines"):
        db.session.flush()
    db.session.rollback()
