"""Invoice use cases: finalize (gapless number, immutable from then, then collect), mark paid, void,
mark uncollectible, credit notes, and the CSV export.

Numbers are INV-YYYY-NNNNNN (credit notes CN-YYYY-NNNNNN), one series per year of finalization, taken
from a counter row locked FOR UPDATE in the finalizing transaction: a rollback gives the number back, and
concurrent finalizations wait for each other, so numbers have neither gaps nor repeats.
"""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select

from app import clock
from app.billing import tax as tax_service
from app.billing.common import changed, get_invoice, history, invoice_changed, invoice_payload, mrr, snapshot
from app.billing.invoice_models import CREDIT_NOTE_REASONS, CreditNote, DocumentSequence, Invoice
from app.billing.invoicing import price, remembered
from app.billing.models import Subscription
from app.errors import Conflict, Invalid
from app.events import service as events
from app.extensions import db
from app.money import Money
from app.security import Actor
from app.tenancy.models import Tenant


def next_number(prefix: str) -> str:
    """The next number of a series (INV or CN) for this year, under a row lock held until commit."""
    series = f"{prefix}-{clock.now().year}"
    stmt = select(DocumentSequence).where(DocumentSequence.series == series).with_for_update()
    row = remembered(("sequence", series), lambda: _locked_sequence(series, stmt))
    row.last += 1
    return f"{series}-{row.last:06d}"


def _locked_sequence(series: str, stmt) -> DocumentSequence:
    row = db.session.scalar(stmt)
    if row is None:
        if db.session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        db.session.execute(insert(DocumentSequence).values(series=series, last=0).on_conflict_do_nothing())
        row = db.session.scalar(stmt)
    return row


def _customer(tenant_id: str) -> dict[str, Any]:
    tenant = db.session.get(Tenant, tenant_id)
    profile = remembered(("profile", tenant_id), lambda: tax_service.get_profile(tenant_id))
    return {"name": tenant.name, "slug": tenant.slug, "email": tenant.billing_email,
            "country": profile.country if profile else tenant.country, "region": profile.region if profile else "",
            "tax_id": profile.tax_id if profile else ""}


def finalize(actor: Actor, invoice_id: str) -> Invoice:
    """Draft → open: price it once more (usage that arrived during the grace), freeze the customer's
    billing details, take the next number; then collect. Commits."""
    invoice = get_invoice(None, invoice_id, lock=True)
    if invoice.status != "draft":
        raise Conflict(f"The invoice is {invoice.status}; only a draft can be finalized.")
    finalize_locked(actor, invoice)
    db.session.commit()
    return invoice


def finalize_locked(actor: Actor, invoice: Invoice) -> None:
    """finalize() of a draft the caller has locked, in the caller's transaction (the billing run's batches)."""
    price(invoice)
    invoice.customer = _customer(invoice.tenant_id)
    invoice.number = next_number("INV")
    invoice.status, invoice.finalized_at = "open", clock.now()
    invoice_changed(invoice, actor, "invoice.finalized", "invoice.finalized",
                    {"status": ["draft", "open"], "number": [None, invoice.number], "total": [None, invoice.total]})
    _collect(actor, invoice)


def _collect(actor: Actor, invoice: Invoice) -> None:
    """Nothing due: paid at once. Otherwise the collection cascade (app.billing.collection): prepaid
    credits, then the card on file; what it cannot collect is published as invoice.payment_failed, puts the
    subscription past_due and enters dunning."""
    if invoice.amount_due == 0:
        _paid(actor, invoice, "nothing_due")
        return
    from app.billing import collection

    collection.collect(actor, invoice)


def _paid(actor: Actor, invoice: Invoice, how: str) -> None:
    old = invoice.status
    invoice.amount_paid += invoice.amount_due
    invoice.status, invoice.paid_at = "paid", clock.now()
    invoice_changed(invoice, actor, "invoice.paid", "invoice.paid", {"status": [old, "paid"]}, {"how": how})
    from app.billing import collection

    collection.settle(invoice)  # dunning ends; a tenant it suspended is resumed
    sub = db.session.get(Subscription, invoice.subscription_id)
    if sub is not None and sub.status == "past_due" and not _owes(sub):
        before, mrr_before = snapshot(sub), mrr(sub)
        sub.status, sub.past_due_since, sub.grace_until = "active", None, None
        history(sub, "recovered", actor, before, mrr_before, invoice_id=invoice.id)
        changed(sub, before, actor, "subscription.recovered", "subscription.updated", {"reason": "paid"})


def _owes(sub: Subscription) -> bool:
    rows = db.session.scalars(select(Invoice).where(Invoice.subscription_id == sub.id,
                                                    Invoice.status.in_(("open", "uncollectible")))).all()
    return any(row.amount_due > 0 for row in rows)


def mark_paid(actor: Actor, invoice_id: str, reference: str = "") -> Invoice:
    """Record an open or uncollectible invoice as paid outside the payment provider (staff). Commits."""
    invoice = get_invoice(None, invoice_id, lock=True)
    if invoice.status not in ("open", "uncollectible"):
        raise Conflict(f"The invoice is {invoice.status}; only an open or uncollectible one can be paid.")
    _paid(actor, invoice, str(reference or "manual")[:100])
    db.session.commit()
    return invoice


def void(actor: Actor, invoice_id: str, reason: str = "") -> Invoice:
    """Void a draft, open or uncollectible invoice: it is kept (with its number) but owes nothing. Commits."""
    invoice = get_invoice(None, invoice_id, lock=True)
    if invoice.status not in ("draft", "open", "uncollectible"):
        raise Conflict(f"The invoice is {invoice.status}; it cannot be voided.")
    old = invoice.status
    invoice.status, invoice.voided_at = "void", clock.now()
    invoice_changed(invoice, actor, "invoice.voided", "invoice.voided", {"status": [old, "void"]},
                    {"reason": str(reason or "")[:200]})
    from app.billing import collection

    collection.settle(invoice)
    db.session.commit()
    return invoice


def mark_uncollectible(actor: Actor, invoice_id: str) -> Invoice:
    """Open → uncollectible (written off; it may still be paid or voided later). Commits."""
    invoice = get_invoice(None, invoice_id, lock=True)
    if invoice.status != "open":
        raise Conflict(f"The invoice is {invoice.status}; only an open one can be marked uncollectible.")
    invoice.status, invoice.uncollectible_at = "uncollectible", clock.now()
    invoice_changed(invoice, actor, "invoice.marked_uncollectible", None, {"status": ["open", "uncollectible"]})
    from app.billing import collection

    collection.settle(invoice)  # written off: no more retries, and the tenant is not held for it
    db.session.commit()
    return invoice


def create_credit_note(actor: Actor, invoice_id: str, amount: int, reason: str = "other",
                       memo: str = "") -> CreditNote:
    """Credit part or all of an open or paid invoice (a refund or a correction), never more than is left
    to credit. Its tax share is amount × the invoice's tax / total, rounded half-up. An open invoice whose
    amount due reaches 0 is paid. Commits."""
    invoice = get_invoice(None, invoice_id, lock=True)
    errors: dict[str, str] = {}
    if invoice.status not in ("open", "paid"):
        raise Conflict(f"The invoice is {invoice.status}; credit notes apply to open or paid invoices.")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        errors["amount"] = "A positive amount in minor units."
    elif amount > invoice.creditable:
        errors["amount"] = (f"At most {Money(invoice.creditable, invoice.currency)} is left to credit "
                            "on this invoice.")
    if reason not in CREDIT_NOTE_REASONS:
        errors["reason"] = f"One of {', '.join(CREDIT_NOTE_REASONS)}."
    if len(memo or "") > 500:
        errors["memo"] = "At most 500 characters."
    if errors:
        raise Invalid("Some fields need attention.", errors=errors)
    tax = int((Decimal(amount) * invoice.tax / invoice.total).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    note = CreditNote(tenant_id=invoice.tenant_id, invoice_id=invoice.id, number=next_number("CN"),
                      currency=invoice.currency, amount=amount, tax_amount=tax, reason=reason, memo=memo or "",
                      created_at=clock.now())
    db.session.add(note)
    old_credited = invoice.amount_credited
    invoice.amount_credited += amount
    db.session.flush()
    invoice_changed(invoice, actor, "credit_note.created", None,
                    {"amount_credited": [old_credited, invoice.amount_credited]},
                    {"credit_note": note.number, "amount": amount, "reason": reason})
    events.publish(invoice.tenant_id, "credit_note.created",
                   {"credit_note": {"id": note.id, "number": note.number, "amount": amount, "tax_amount": tax,
                                    "currency": note.currency, "reason": reason},
                    "invoice": invoice_payload(invoice)})
    if invoice.status == "open" and invoice.amount_due == 0:
        _paid(actor, invoice, "credit_note")
    db.session.commit()
    return note


def credited_total(invoice_id: str) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(CreditNote.amount), 0))
                                 .where(CreditNote.invoice_id == invoice_id)))


CSV_COLUMNS = ("invoice", "status", "position", "kind", "description", "metric", "quantity", "unit_amount",
               "amount", "currency", "tax_percent", "tax_amount", "tax_note", "period_start", "period_end")


def _cell(value: Any) -> Any:
    """Text a spreadsheet would run as a formula is quoted with a leading apostrophe (OWASP); only the
    free-text columns go through this, numbers are written as numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def invoice_csv(tenant_id: str | None, invoice_id: str) -> str:
    """The invoice as CSV: one row per line, then a total row. Amounts in major units (e.g. 49.00);
    quantities and unit amounts (minor units per unit) as exact decimals. Scoped to the tenant (None: staff)."""
    invoice = get_invoice(tenant_id, invoice_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    ref = invoice.number or invoice.id

    def major(amount: int) -> str:
        return f"{Money(amount, invoice.currency).major():f}"

    for line in invoice.lines:
        writer.writerow([
            ref, invoice.status, line.position, line.kind, _cell(line.description), _cell(line.metric or ""),
            "" if line.quantity is None else f"{line.quantity.normalize():f}",
            "" if line.unit_amount is None else f"{line.unit_amount.normalize():f}", major(line.amount),
            line.currency, "" if line.tax_percent is None else f"{line.tax_percent.normalize():f}",
            major(line.tax_amount), _cell(line.tax_note),
            line.period_start.isoformat() if line.period_start else "",
            line.period_end.isoformat() if line.period_end else ""])
    writer.writerow([ref, invoice.status, "", "total", "Total", "", "", "", major(invoice.total), invoice.currency,
                     "", major(invoice.tax), "", invoice.period_start.isoformat(), invoice.period_end.isoformat()])
    return out.getvalue()
