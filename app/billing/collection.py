"""Collecting an invoice: the cascade, dunning, and suspension for debts.

When an invoice is finalized (and at each dunning retry) `collect()` goes down BILLING_COLLECTION_ORDER —
by default the tenant's prepaid credits ("wallet") first, then the card on file ("card", Stripe) — and
records each step as a Payment. Paid in full: the invoice is paid. A card payment the provider is still
processing leaves the invoice open until its webhook says how it ended; so does a tenant that pays outside
(the manual provider, with a payment method such as "bank_transfer" recorded on its billing profile),
until staff mark the invoice paid. Otherwise the attempt failed:
`invoice.payment_failed` is published, the subscription goes past_due, and the invoice enters dunning.

Dunning (an InvoiceCollection per invoice) retries BILLING_DUNNING_DAYS after the first failure (default
1, 3, 5 and 7 days). After the last retry fails the collection is exhausted and, with
BILLING_SUSPEND_AFTER_DUNNING (default on), the tenant is suspended (`tenant.suspended`). Once the debt is
settled — paid by any route, voided or written off — the tenant is resumed (`tenant.resumed`) unless
another exhausted debt still holds it. Every step is audited and published.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.billing import providers, wallets
from app.billing.invoice_models import Invoice
from app.billing.payment_models import InvoiceCollection, Payment
from app.events import service as events
from app.extensions import db
from app.security import Actor

log = logging.getLogger(__name__)
SYSTEM = Actor.system("billing")


def order() -> list[str]:
    return [step.strip() for step in current_app.config["BILLING_COLLECTION_ORDER"].split(",") if step.strip()]


def dunning_days() -> list[int]:
    return list(current_app.config["BILLING_DUNNING_DAYS"])


def _payment(invoice: Invoice, provider: str, amount: int, status: str, attempt: int, reference: str | None = None,
             code: str = "", message: str = "") -> Payment:
    now = clock.now()
    payment = Payment(tenant_id=invoice.tenant_id, invoice_id=invoice.id, purpose="invoice", provider=provider,
                      provider_ref=reference, amount=amount, currency=invoice.currency, status=status,
                      attempt=attempt, failure_code=code[:100], failure_message=message[:500], created_at=now,
                      updated_at=now)
    db.session.add(payment)
    return payment


def collection_of(invoice_id: str) -> InvoiceCollection | None:
    known = (db.session.info.get("billing_batch") or {}).get("collections")
    if known is not None and invoice_id in known[0]:  # loaded for the billing run's batch
        return known[1].get(invoice_id)
    return db.session.scalar(select(InvoiceCollection).where(InvoiceCollection.invoice_id == invoice_id))


def collect(actor: Actor, invoice: Invoice) -> str:
    """Try to collect an open invoice's amount due (in the caller's transaction). Returns "paid",
    "pending" (the provider answers later) or "failed"."""
    from app.billing import invoices

    existing = collection_of(invoice.id)
    attempt = (existing.attempts + 1) if existing is not None else 1
    failure = ("no_payment_method", "No credit left and no card on file.")
    for step in order():
        due = invoice.amount_due
        if due <= 0:
            break
        if step == "wallet":
            taken = wallets.apply(invoice.tenant_id, invoice.currency, due, invoice.id)
            if taken:
                invoice.amount_paid += taken
                _payment(invoice, "wallet", taken, "succeeded", attempt)
        elif step == "card" and providers.name() == "manual":
            from app.billing.invoicing import remembered
            from app.billing.tax import get_profile

            profile = remembered(("profile", invoice.tenant_id), lambda: get_profile(invoice.tenant_id))
            if profile is not None and profile.default_payment_method:
                return "pending"  # paid outside (e.g. by bank transfer): staff mark it paid
        elif step == "card":
            result = providers.charge(invoice.tenant_id, due, invoice.currency,
                                      idempotency_key=f"tenantry-{invoice.id}-attempt-{attempt}",
                                      metadata={"invoice_id": invoice.id, "tenant_id": invoice.tenant_id,
                                                "invoice_number": invoice.number or ""},
                                      description=f"Tenantry invoice {invoice.number or invoice.id}")
            _payment(invoice, "stripe", due, result.status, attempt, result.reference, result.failure_code,
                     result.failure_message)
            if result.status == "succeeded":
                invoice.amount_paid += due
            elif result.status == "pending":
                return "pending"
            else:
                failure = (result.failure_code or "card_declined", result.failure_message)
    if invoice.amount_due <= 0:
        invoices._paid(actor, invoice, "collected")
        return "paid"
    failed(actor, invoice, *failure)
    return "failed"


def failed(actor: Actor, invoice: Invoice, code: str, message: str) -> None:
    """A collection attempt failed: publish it, put the subscription past due, schedule the next retry or,
    after the last, exhaust the dunning (and suspend the tenant, if configured)."""
    from app.billing.common import changed, history, invoice_changed, mrr, snapshot
    from app.billing.lifecycle import mark_past_due
    from app.billing.models import Subscription

    now = clock.now()
    collection = collection_of(invoice.id)
    if collection is None:
        collection = InvoiceCollection(tenant_id=invoice.tenant_id, invoice_id=invoice.id, attempts=0,
                                       first_failed_at=now, created_at=now, updated_at=now)
        db.session.add(collection)
        known = (db.session.info.get("billing_batch") or {}).get("collections")
        if known is not None:
            known[1][invoice.id] = collection
    collection.attempts += 1
    collection.last_error, collection.updated_at = f"{code}: {message}"[:500], now
    days = dunning_days()
    retries_done = collection.attempts - 1
    next_at: datetime | None = None
    if retries_done < len(days):
        next_at = collection.first_failed_at + timedelta(days=days[retries_done])
        collection.status, collection.next_attempt_at = "retrying", next_at
    else:
        collection.status, collection.next_attempt_at = "exhausted", None
    invoice_changed(invoice, actor, "invoice.payment_failed", "invoice.payment_failed", {},
                    {"reason": code, "message": message, "attempt": collection.attempts,
                     "next_attempt_at": next_at.isoformat() if next_at else None})
    sub = db.session.get(Subscription, invoice.subscription_id)
    if sub is not None and sub.status in ("active", "trialing"):
        before, mrr_before = snapshot(sub), mrr(sub)
        mark_past_due(sub, now)
        history(sub, "past_due", actor, before, mrr_before, invoice_id=invoice.id)
        changed(sub, before, actor, "subscription.past_due", "subscription.updated",
                {"reason": "payment_failed", "invoice_id": invoice.id})
    if collection.status == "exhausted" and current_app.config["BILLING_SUSPEND_AFTER_DUNNING"]:
        _suspend(collection, invoice)


def _suspend(collection: InvoiceCollection, invoice: Invoice) -> None:
    from app.tenancy.models import Tenant

    tenant = db.session.get(Tenant, invoice.tenant_id)
    if tenant is None or tenant.status != "active":
        return
    collection.suspended_tenant = True
    reason = f"Invoice {invoice.number or invoice.id} unpaid after every payment retry."
    tenant.status, tenant.status_reason = "suspended", reason
    _after_status_change(tenant, "suspended", reason, invoice)


def _after_status_change(tenant, status: str, reason: str, invoice: Invoice) -> None:
    from app.auth import keycache

    keycache.bump_after_commit(db.session, [tenant.id])
    verb = "suspended" if status == "suspended" else "resumed"
    audit.record(SYSTEM, f"tenant.{verb}", tenant_id=tenant.id, targets=[
        Target("tenant", tenant.id, tenant.name), Target("invoice", invoice.id, invoice.number or "")],
        changes={"status": ["active" if status == "suspended" else "suspended", status]},
        metadata={"reason": reason, "by": "dunning"}, severity="warning" if status == "suspended" else "info")
    events.publish(tenant.id, f"tenant.{verb}", {"tenant": {"id": tenant.id, "slug": tenant.slug, "status": status},
                                                 "reason": reason, "invoice_id": invoice.id})


def settle(invoice: Invoice) -> None:
    """The invoice no longer owes anything (paid, voided, written off): end its dunning, and resume the
    tenant if dunning suspended it and no other exhausted debt holds it. In the caller's transaction."""
    from app.tenancy.models import Tenant

    collection = collection_of(invoice.id)
    if collection is None or collection.status == "settled":
        return
    was_suspending = collection.suspended_tenant
    collection.status, collection.next_attempt_at, collection.updated_at = "settled", None, clock.now()
    collection.suspended_tenant = False
    if not was_suspending:
        return
    others = db.session.scalar(select(InvoiceCollection.id).where(
        InvoiceCollection.tenant_id == invoice.tenant_id, InvoiceCollection.suspended_tenant.is_(True),
        InvoiceCollection.id != collection.id))
    tenant = db.session.get(Tenant, invoice.tenant_id)
    if others is None and tenant is not None and tenant.status == "suspended":
        tenant.status, tenant.status_reason = "active", ""
        _after_status_change(tenant, "active", f"Invoice {invoice.number or invoice.id} settled.", invoice)


def charge_late_fees(now: datetime | None = None) -> int:
    """Once per invoice still unpaid BILLING_PAST_DUE_GRACE after its first failed collection: its plan's
    late fee plus late interest (a percentage of what it still owes) as a `late_fee` line on the
    subscription's next invoice (never discounted by a coupon). Audited. Returns how many were charged."""
    from app.billing.common import invoice_changed, percent_of
    from app.billing.invoicing import pending_line
    from app.billing.models import Subscription
    from app.plans.models import Plan

    now = now or clock.now()
    grace = current_app.config["BILLING_PAST_DUE_GRACE"]
    due = db.session.execute(select(InvoiceCollection, Invoice)
                             .join(Invoice, Invoice.id == InvoiceCollection.invoice_id)
                             .where(InvoiceCollection.status.in_(("retrying", "exhausted")),
                                    InvoiceCollection.late_fee_charged_at.is_(None),
                                    InvoiceCollection.first_failed_at <= now - grace, Invoice.status == "open")
                             .with_for_update(of=InvoiceCollection, skip_locked=True)).tuples().all()
    charged = 0
    for collection, invoice in due:
        plan = db.session.get(Plan, invoice.plan_id)
        owed = invoice.amount_due
        amount = (plan.late_fee or 0) + (percent_of(owed, plan.late_fee_percent) if plan.late_fee_percent else 0)
        collection.late_fee_charged_at = now
        sub = db.session.get(Subscription, invoice.subscription_id)
        if amount <= 0 or owed <= 0 or sub is None:
            continue
        pending_line(sub, f"Late fee: {invoice.number} unpaid since {collection.first_failed_at:%Y-%m-%d}", amount,
                     now, now, kind="late_fee")
        invoice_changed(invoice, SYSTEM, "invoice.late_fee_charged", None, {},
                        {"amount": amount, "owed": owed, "fee": plan.late_fee or 0,
                         "percent": str(plan.late_fee_percent or 0)})
        charged += 1
    db.session.commit()
    return charged


def retry_due(now: datetime | None = None) -> dict[str, int]:
    """Dunning retries that are due (the periodic job): each collected again in its own transaction."""
    from app.billing.common import get_invoice

    now = now or clock.now()
    due = list(db.session.scalars(select(InvoiceCollection.invoice_id).where(
        InvoiceCollection.status == "retrying", InvoiceCollection.next_attempt_at <= now)))
    outcomes: dict[str, int] = {}
    for invoice_id in due:
        try:
            invoice = get_invoice(None, invoice_id, lock=True)
            collection = collection_of(invoice_id)
            if collection is None or collection.status != "retrying" or collection.next_attempt_at > now:
                db.session.rollback()
                continue
            if invoice.status != "open" or invoice.amount_due <= 0:
                settle(invoice)
                outcome = "settled"
            else:
                outcome = collect(SYSTEM, invoice)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("dunning retry of invoice %s failed", invoice_id)
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def payment_succeeded(reference: str, amount: int | None = None) -> str:
    """The provider says a pending or failed payment went through (webhook; safe to repeat)."""
    from app.billing import invoices

    payment = db.session.scalar(select(Payment).where(Payment.provider == "stripe", Payment.provider_ref == reference)
                                .with_for_update())
    if payment is None:
        return "unknown"
    if payment.status == "succeeded":
        return "already"
    payment.status, payment.updated_at = "succeeded", clock.now()
    if payment.purpose == "top_up":
        wallets.add(SYSTEM, payment.tenant_id, "paid", {"amount": payment.amount, "currency": payment.currency,
                                                        "note": f"Top-up {payment.provider_ref}"}, commit=False)
        return "credited"
    invoice = db.session.scalar(select(Invoice).where(Invoice.id == payment.invoice_id).with_for_update())
    if invoice.status in ("open", "uncollectible"):
        invoice.amount_paid += min(payment.amount, invoice.amount_due)
        if invoice.amount_due <= 0:
            invoices._paid(SYSTEM, invoice, "collected")
    return "applied"


def payment_failed(reference: str, code: str, message: str) -> str:
    """The provider says a pending payment failed (webhook; safe to repeat): dunning takes over."""
    payment = db.session.scalar(select(Payment).where(Payment.provider == "stripe", Payment.provider_ref == reference)
                                .with_for_update())
    if payment is None:
        return "unknown"
    if payment.status != "pending":
        return "already"
    payment.status, payment.failure_code, payment.failure_message = "failed", code[:100], message[:500]
    payment.updated_at = clock.now()
    if payment.purpose == "invoice":
        invoice = db.session.scalar(select(Invoice).where(Invoice.id == payment.invoice_id).with_for_update())
        if invoice.status == "open" and invoice.amount_due > 0:
            failed(SYSTEM, invoice, code, message)
    return "failed"


def top_up(actor: Actor, tenant_id: str, amount: int, currency: str) -> Payment:
    """Buy credit with the card on file: a paid grant once the charge succeeds. Commits."""
    from app.errors import Invalid

    wallets._clean({"amount": amount, "currency": currency})
    now = clock.now()
    payment = Payment(tenant_id=tenant_id, purpose="top_up", provider="stripe", amount=amount,
                      currency=currency.upper(), status="pending", created_at=now, updated_at=now)
    db.session.add(payment)
    db.session.flush()
    result = providers.charge(tenant_id, amount, currency, idempotency_key=f"tenantry-top-up-{payment.id}",
                              metadata={"tenant_id": tenant_id, "top_up": payment.id},
                              description="Tenantry prepaid credit")
    if result.status == "failed" and result.failure_code == "no_payment_method":
        db.session.rollback()
        raise Invalid("Add a card first.", errors={"payment_method": "No card on file."})
    payment.provider_ref, payment.status = result.reference, result.status
    payment.failure_code, payment.failure_message = result.failure_code[:100], result.failure_message[:500]
    audit.record(actor, "credits.top_up_" + result.status, tenant_id=tenant_id,
                 targets=[Target("payment", payment.id, f"{amount} {currency.upper()}")],
                 metadata={"amount": amount, "currency": currency.upper(), "reference": result.reference})
    if result.status == "succeeded":
        payment.status = "succeeded"
        wallets.add(actor, tenant_id, "paid", {"amount": amount, "currency": currency.upper(),
                                               "note": f"Top-up {result.reference}"}, commit=False)
    db.session.commit()
    return payment
