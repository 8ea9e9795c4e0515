"""Collecting invoices: prepaid credits, the card on file through Stripe (the real `stripe` package against a
local fake of its API), dunning through time, and suspension of a tenant whose debt stays unpaid."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app import clock
from app.billing import collection, invoices, providers, wallets
from app.billing.models import Subscription
from app.billing.payment_models import CreditGrant, InvoiceCollection, Payment, WalletTransaction
from app.errors import Invalid
from app.extensions import db
from app.tenancy.models import Tenant
from tests.billing.conftest import STAFF, SYSTEM, T0, invoices_of
from tests.billing.fake_stripe import stripe_api  # noqa: F401  (fixture)
from tests.webhooks import inbound_helpers


def _outbox(tenant_id: str) -> list[str]:
    from app.events.models import OutboxEvent

    return [e.type for e in db.session.scalars(select(OutboxEvent).where(OutboxEvent.tenant_id == tenant_id)
                                               .order_by(OutboxEvent.created_at, OutboxEvent.id))]


def _audit(tenant_id: str) -> list[str]:
    from app.audit.models import AuditEvent

    return [e.action for e in db.session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
                                                 .order_by(AuditEvent.id))]


def _finalize_first(tenant):
    [invoice] = invoices_of(tenant.id)
    return invoices.finalize(SYSTEM, invoice.id)


def _fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


# --- credits ---------------------------------------------------------------------------------------------


def test_credits_go_expiring_first_then_granted_then_paid_and_the_ledger_always_adds_up(make, frozen):
    tenant = make.tenant()
    paid = wallets.add(STAFF, tenant.id, "paid", {"amount": 500, "currency": "USD"})
    granted = wallets.add(STAFF, tenant.id, "granted", {"amount": 300, "currency": "usd"})
    soon = wallets.add(STAFF, tenant.id, "granted", {"amount": 200, "currency": "USD",
                                                     "expires_at": T0 + timedelta(days=10)})
    later = wallets.add(STAFF, tenant.id, "granted", {"amount": 50, "currency": "USD",
                                                      "expires_at": T0 + timedelta(days=5)})
    assert wallets.balance(tenant.id, "USD") == 1050 and wallets.balances(tenant.id) == {"USD": 1050}
    assert wallets.apply(tenant.id, "USD", 600, None) == 600
    db.session.commit()
    left = {g.id: _fresh(CreditGrant, g.id).remaining for g in (paid, granted, soon, later)}
    assert left == {later.id: 0, soon.id: 0, granted.id: 0, paid.id: 450}
    assert wallets.apply(tenant.id, "USD", 10_000, None) == 450  # never more than there is
    db.session.commit()
    assert wallets.balance(tenant.id, "USD") == 0
    for grant in (paid, granted, soon, later):
        ledger = db.session.scalars(select(WalletTransaction.amount).where(WalletTransaction.grant_id == grant.id))
        assert sum(ledger) == _fresh(CreditGrant, grant.id).remaining == 0
    assert _audit(tenant.id).count("credits.granted") == 3 and "credits.purchased" in _audit(tenant.id)


def test_unused_credit_expires_on_time_and_the_expiry_is_recorded(make, frozen):
    tenant = make.tenant()
    grant = wallets.add(STAFF, tenant.id, "granted", {"amount": 700, "currency": "USD",
                                                      "expires_at": T0 + timedelta(days=30)})
    wallets.apply(tenant.id, "USD", 200, None)
    db.session.commit()
    assert wallets.expire() == 0
    with clock.travel(T0 + timedelta(days=30)):
        assert wallets.balance(tenant.id, "USD") == 0  # expired credit never counts, job or not
        assert wallets.expire() == 1
        assert wallets.expire() == 0
    grant = _fresh(CreditGrant, grant.id)
    assert (grant.remaining, grant.expired_at) == (0, T0 + timedelta(days=30))
    kinds = list(db.session.execute(select(WalletTransaction.kind, WalletTransaction.amount)
                                    .where(WalletTransaction.grant_id == grant.id).order_by(WalletTransaction.id)))
    assert sorted(kinds) == sorted([("granted", 700), ("applied", -200), ("expired", -500)])
    assert "credits.expired" in _audit(tenant.id)


@pytest.mark.parametrize("data, field", [
    ({"amount": 0, "currency": "USD"}, "amount"), ({"amount": 1.5, "currency": "USD"}, "amount"),
    ({"amount": 100, "currency": "XYZ"}, "currency"), ({"amount": 100, "currency": "USD", "note": "x" * 301}, "note"),
])
def test_a_bad_grant_is_refused_naming_the_field(make, frozen, data, field):
    tenant = make.tenant()
    with pytest.raises(Invalid) as refused:
        wallets.add(STAFF, tenant.id, "granted", data)
    assert field in refused.value.errors


def test_credits_pay_an_invoice_in_full_before_any_card_is_tried(subscribe, make):
    tenant, sub = subscribe("pro")
    wallets.add(STAFF, tenant.id, "granted", {"amount": 100_000, "currency": "USD"})
    invoice = _finalize_first(tenant)
    assert invoice.status == "paid" and invoice.amount_paid == invoice.total > 0
    [payment] = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()
    assert (payment.provider, payment.status, payment.amount) == ("wallet", "succeeded", invoice.total)
    assert wallets.balance(tenant.id, "USD") == 100_000 - invoice.total
    assert "invoice.paid" in _outbox(tenant.id) and _fresh(Subscription, sub.id).status == "active"


# --- dunning (manual provider: no card can be charged) -----------------------------------------------------


def test_an_unpaid_debt_is_retried_on_schedule_then_suspends_the_tenant_and_paying_it_resumes(subscribe):
    tenant, sub = subscribe("pro")
    wallets.add(STAFF, tenant.id, "granted", {"amount": 1_000, "currency": "USD"})  # less than the invoice
    invoice = _finalize_first(tenant)
    assert (invoice.status, invoice.amount_paid) == ("open", 1_000)
    assert _fresh(Subscription, sub.id).status == "past_due"
    dunning = collection.collection_of(invoice.id)
    assert (dunning.status, dunning.attempts, dunning.next_attempt_at) == ("retrying", 1, T0 + timedelta(days=1))
    for day, attempts in ((1, 2), (3, 3), (5, 4)):
        assert collection.retry_due(T0 + timedelta(days=day) - timedelta(seconds=1)) == {}  # not yet
        with clock.travel(T0 + timedelta(days=day)):
            assert collection.retry_due() == {"failed": 1}
        dunning = _fresh(InvoiceCollection, dunning.id)
        assert dunning.attempts == attempts and _fresh(Tenant, tenant.id).status == "active"
    with clock.travel(T0 + timedelta(days=7)):
        assert collection.retry_due() == {"failed": 1}
    dunning = _fresh(InvoiceCollection, dunning.id)
    assert (dunning.status, dunning.attempts, dunning.next_attempt_at, dunning.suspended_tenant) == (
        "exhausted", 5, None, True)
    tenant = _fresh(Tenant, tenant.id)
    assert tenant.status == "suspended" and invoice.number in tenant.status_reason
    assert _outbox(tenant.id).count("invoice.payment_failed") == 5 and "tenant.suspended" in _outbox(tenant.id)
    assert "tenant.suspended" in _audit(tenant.id)

    with clock.travel(T0 + timedelta(days=9)):
        invoices.mark_paid(STAFF, invoice.id, "bank transfer 2030-01-24")
    assert _fresh(Tenant, tenant.id).status == "active"
    assert _fresh(InvoiceCollection, dunning.id).status == "settled"
    assert _fresh(Subscription, sub.id).status == "active"
    assert "tenant.resumed" in _outbox(tenant.id) and "tenant.resumed" in _audit(tenant.id)


def test_credit_added_during_dunning_is_taken_at_the_next_retry(subscribe):
    tenant, sub = subscribe("pro")
    invoice = _finalize_first(tenant)
    assert invoice.status == "open" and _fresh(Subscription, sub.id).status == "past_due"
    wallets.add(STAFF, tenant.id, "granted", {"amount": invoice.total, "currency": "USD"})
    with clock.travel(T0 + timedelta(days=1)):
        assert collection.retry_due() == {"paid": 1}
    assert invoices_of(tenant.id)[0].status == "paid"
    assert collection.collection_of(invoice.id).status == "settled"
    assert _fresh(Subscription, sub.id).status == "active"


def test_voiding_the_debt_ends_dunning_without_suspension(subscribe, monkeypatch, app):
    monkeypatch.setitem(app.config, "BILLING_DUNNING_DAYS", [1])
    tenant, _ = subscribe("pro")
    invoice = _finalize_first(tenant)
    with clock.travel(T0 + timedelta(days=1)):
        collection.retry_due()
    assert _fresh(Tenant, tenant.id).status == "suspended"
    invoices.void(STAFF, invoice.id, "goodwill")
    assert _fresh(Tenant, tenant.id).status == "active"
    assert collection.collection_of(invoice.id).status == "settled"


def test_with_suspension_turned_off_an_exhausted_debt_leaves_the_tenant_active(subscribe, monkeypatch, app):
    monkeypatch.setitem(app.config, "BILLING_DUNNING_DAYS", [])
    monkeypatch.setitem(app.config, "BILLING_SUSPEND_AFTER_DUNNING", False)
    tenant, _ = subscribe("pro")
    invoice = _finalize_first(tenant)
    assert collection.collection_of(invoice.id).status == "exhausted"
    assert _fresh(Tenant, tenant.id).status == "active"


# --- Stripe ------------------------------------------------------------------------------------------------


def _add_card(client, app, tenant, stripe_api, monkeypatch):  # noqa: F811
    """Checkout in setup mode, then the webhook Stripe sends when the tenant has entered a card."""
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", inbound_helpers.SECRET)
    url = providers.setup_checkout(tenant.id, "https://app.example/ok", "https://app.example/cancel")
    account = providers.account(tenant.id)
    assert url.startswith("https://checkout.example/cs_") and account.customer_ref.startswith("cus_")
    setup = stripe_api.complete_setup(account.customer_ref)
    body = inbound_helpers.stripe_event(f"evt_setup_{tenant.id}", "checkout.session.completed")
    import json

    event = json.loads(body)
    event["data"]["object"] = {"object": "checkout.session", "id": "cs_x", "mode": "setup",
                               "setup_intent": setup["id"], "metadata": {"tenant_id": tenant.id}}
    body = json.dumps(event)
    assert inbound_helpers.post_stripe(client, body).status_code == 200
    inbound_helpers.run_jobs("billing")
    return setup


def test_a_card_added_through_checkout_pays_the_next_invoice_off_session(client, app, subscribe, stripe_api,  # noqa: F811
                                                                          monkeypatch):
    tenant, sub = subscribe("pro")
    setup = _add_card(client, app, tenant, stripe_api, monkeypatch)
    account = providers.account(tenant.id)
    db.session.refresh(account)
    assert (account.payment_method_ref, account.card_brand, account.card_last4, account.card_exp) == (
        setup["payment_method"], "visa", "4242", "12/2034")
    [created] = stripe_api.posts("/v1/customers")[:1]
    assert created.headers["idempotency-key"] == f"tenantry-customer-{tenant.id}"
    assert created.params["metadata[tenant_id]"] == tenant.id
    [session] = stripe_api.posts("/v1/checkout/sessions")
    assert (session.params["mode"], session.params["customer"]) == ("setup", account.customer_ref)
    default = stripe_api.posts(f"/v1/customers/{account.customer_ref}")[-1]
    assert default.params["invoice_settings[default_payment_method]"] == setup["payment_method"]

    invoice = _finalize_first(tenant)
    assert invoice.status == "paid" and invoice.amount_paid == invoice.total
    [charge] = stripe_api.posts("/v1/payment_intents")
    assert charge.params["amount"] == str(invoice.total) and charge.params["currency"] == "usd"
    assert (charge.params["off_session"], charge.params["confirm"]) == ("true", "true")
    assert charge.params["payment_method"] == setup["payment_method"]
    assert charge.params["metadata[invoice_id]"] == invoice.id
    assert charge.headers["idempotency-key"] == f"tenantry-{invoice.id}-attempt-1"
    assert charge.headers["authorization"] == "Bearer sk_test_tenantry"
    [payment] = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()
    assert (payment.provider, payment.status, payment.provider_ref[:3]) == ("stripe", "succeeded", "pi_")
    assert _fresh(Subscription, sub.id).status == "active"


def test_a_declined_card_enters_dunning_and_the_retry_charges_again_under_a_new_key(
        client, app, subscribe, stripe_api, monkeypatch):  # noqa: F811
    tenant, sub = subscribe("pro")
    _add_card(client, app, tenant, stripe_api, monkeypatch)
    stripe_api.next_charge = ["declined", "succeeded"]
    invoice = _finalize_first(tenant)
    assert invoice.status == "open" and _fresh(Subscription, sub.id).status == "past_due"
    [failed] = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()
    assert (failed.status, failed.failure_code) == ("failed", "insufficient_funds")
    assert "insufficient funds" in failed.failure_message and failed.provider_ref.startswith("pi_")
    assert "insufficient_funds" in collection.collection_of(invoice.id).last_error
    with clock.travel(T0 + timedelta(days=1)):
        assert collection.retry_due() == {"paid": 1}
    keys = [r.headers["idempotency-key"] for r in stripe_api.posts("/v1/payment_intents")]
    assert keys == [f"tenantry-{invoice.id}-attempt-1", f"tenantry-{invoice.id}-attempt-2"]
    assert invoices_of(tenant.id)[0].status == "paid" and _fresh(Subscription, sub.id).status == "active"


def test_a_processing_payment_is_settled_by_its_webhook_once(client, app, subscribe, stripe_api,  # noqa: F811
                                                             monkeypatch):
    tenant, _ = subscribe("pro")
    _add_card(client, app, tenant, stripe_api, monkeypatch)
    stripe_api.next_charge = ["processing"]
    invoice = _finalize_first(tenant)
    assert invoice.status == "open" and collection.collection_of(invoice.id) is None  # waiting, not failing
    [payment] = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()
    assert payment.status == "pending"
    import json

    for event_id in ("evt_pi_ok_1", "evt_pi_ok_1", "evt_pi_ok_2"):  # a replay, then a redelivery as a new event
        event = json.loads(inbound_helpers.stripe_event(event_id, "payment_intent.succeeded"))
        event["data"]["object"] = {"object": "payment_intent", "id": payment.provider_ref, "status": "succeeded"}
        assert inbound_helpers.post_stripe(client, json.dumps(event)).status_code == 200
        inbound_helpers.run_jobs("billing")
    [paid] = invoices_of(tenant.id)
    assert paid.status == "paid" and paid.amount_paid == paid.total
    assert _outbox(tenant.id).count("invoice.paid") == 1


def test_a_processing_payment_that_fails_later_enters_dunning(client, app, subscribe, stripe_api,  # noqa: F811
                                                              monkeypatch):
    tenant, sub = subscribe("pro")
    _add_card(client, app, tenant, stripe_api, monkeypatch)
    stripe_api.next_charge = ["processing"]
    invoice = _finalize_first(tenant)
    payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))
    import json

    event = json.loads(inbound_helpers.stripe_event("evt_pi_failed", "payment_intent.payment_failed"))
    event["data"]["object"] = {"object": "payment_intent", "id": payment.provider_ref,
                               "last_payment_error": {"code": "card_declined", "decline_code": "expired_card",
                                                      "message": "Your card has expired."}}
    assert inbound_helpers.post_stripe(client, json.dumps(event)).status_code == 200
    inbound_helpers.run_jobs("billing")
    dunning = collection.collection_of(invoice.id)
    assert dunning.status == "retrying" and "expired_card" in dunning.last_error
    assert _fresh(Subscription, sub.id).status == "past_due"
    assert _fresh(Payment, payment.id).status == "failed"


def test_a_top_up_buys_credit_with_the_card_and_needs_one(client, app, make, frozen, stripe_api,  # noqa: F811
                                                          monkeypatch):
    tenant = make.tenant()
    with pytest.raises(Invalid):
        collection.top_up(STAFF, tenant.id, 2_000, "USD")
    _add_card(client, app, tenant, stripe_api, monkeypatch)
    payment = collection.top_up(STAFF, tenant.id, 2_000, "USD")
    assert (payment.status, payment.purpose) == ("succeeded", "top_up")
    assert wallets.balance(tenant.id, "USD") == 2_000
    [grant] = wallets.grants(tenant.id)
    assert (grant.kind, grant.amount) == ("paid", 2_000)
    assert stripe_api.posts("/v1/payment_intents")[-1].headers["idempotency-key"] == f"tenantry-top-up-{payment.id}"


def test_card_first_when_the_order_says_so(client, app, subscribe, stripe_api, monkeypatch):  # noqa: F811
    monkeypatch.setitem(app.config, "BILLING_COLLECTION_ORDER", "card,wallet")
    tenant, _ = subscribe("pro")
    wallets.add(STAFF, tenant.id, "granted", {"amount": 100_000, "currency": "USD"})
    _add_card(client, app, tenant, stripe_api, monkeypatch)
    invoice = _finalize_first(tenant)
    assert invoice.status == "paid"
    assert [p.provider for p in db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id))] == [
        "stripe"]
    assert wallets.balance(tenant.id, "USD") == 100_000


def test_dunning_retries_and_credit_expiry_are_scheduled_jobs():
    from app.billing import jobs
    from app.cron import JOBS

    scheduled = {job.func: job for job in JOBS}
    assert scheduled[jobs.retry_dunning].queue == "billing" and scheduled[jobs.retry_dunning].interval == 3600
    assert scheduled[jobs.expire_credits].interval == 3600


def test_a_late_invoice_charges_its_plans_late_fee_once_on_the_next_invoice(subscribe, app):
    from app.billing.invoice_models import InvoiceLine
    from app.plans import queries as plans_queries
    from app.plans import service as plans_service

    tenant, sub = subscribe("pro")
    pro = plans_queries.find_plan("pro")
    plans_service.update_plan(STAFF, pro.id, {"late_fee": 1_000, "late_fee_percent": "1.5"})
    invoice = _finalize_first(tenant)
    grace = app.config["BILLING_PAST_DUE_GRACE"]
    assert collection.charge_late_fees(T0 + grace - timedelta(seconds=1)) == 0  # not late yet
    with clock.travel(T0 + grace):
        assert collection.charge_late_fees() == 1
        assert collection.charge_late_fees() == 0  # once per invoice
    [fee] = db.session.scalars(select(InvoiceLine).where(InvoiceLine.kind == "late_fee")).all()
    owed = invoice.total
    assert fee.invoice_id is None and fee.amount == 1_000 + round(owed * 0.015)
    assert invoice.number in fee.description
    assert "invoice.late_fee_charged" in _audit(tenant.id)
    # the next invoice carries it; the coupon-free total is the fee plus the renewal
    from app.billing import run

    with clock.travel(sub.current_period_end + timedelta(hours=2)):
        run.run(sub.current_period_end.date())
    renewal = invoices_of(tenant.id)[1]
    kinds = {line.kind: line.amount for line in renewal.lines}
    assert kinds["late_fee"] == fee.amount and renewal.total == sum(line.amount for line in renewal.lines)


def test_a_plan_without_late_fees_charges_none(subscribe, app):
    from app.billing.invoice_models import InvoiceLine

    tenant, _ = subscribe("pro")
    _finalize_first(tenant)
    with clock.travel(T0 + app.config["BILLING_PAST_DUE_GRACE"] + timedelta(days=1)):
        assert collection.charge_late_fees() == 0
    assert db.session.scalars(select(InvoiceLine).where(InvoiceLine.kind == "late_fee")).all() == []
