"""Billing ORM, invoice side: invoices and their lines, credit notes, the per-year number sequences
and the billing run's recorded failures. A finalized invoice is immutable: mapper events refuse any change
to its amounts, identity or lines (only its status and payment fields move on)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Numeric, String, Text, UniqueConstraint, event, select
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE, get_history

from app.db import ID_LENGTH, PublicIdMixin, TenantScopedMixin, TimestampMixin
from app.extensions import db

INVOICE_STATUSES = ("draft", "open", "paid", "void", "uncollectible")
# subscription_create: the first period; subscription_cycle: a renewal; subscription_update: a new period
# started by a change (trial ended early, interval changed, reactivated); subscription_cancel: the final
# invoice of a subscription canceled before its period ended.
BILLING_REASONS = ("subscription_create", "subscription_cycle", "subscription_update", "subscription_cancel")
LINE_KINDS = ("subscription", "proration", "late_fee", "overage", "discount", "tax")
CREDIT_NOTE_REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory", "other")


class Invoice(PublicIdMixin, TenantScopedMixin, TimestampMixin, db.Model):
    """An invoice: draft (being computed) → open (finalized: numbered, immutable) → paid | void |
    uncollectible. total is always the sum of its lines.

    period_start/end is the service period its subscription fee covers; usage_start/end the closed
    period its overage is measured over (usage is billed in arrears, the fee in advance). One invoice per
    subscription and period start (a UNIQUE constraint), so the billing run can never bill one twice.
    """

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("subscription_id", "period_start"),)
    id_prefix = "inv"

    subscription_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("subscriptions.id"), index=True)
    number: Mapped[str | None] = mapped_column(String(24), unique=True, default=None)
    status: Mapped[str] = mapped_column(String(14), default="draft", index=True)
    billing_reason: Mapped[str] = mapped_column(String(24))
    currency: Mapped[str] = mapped_column(String(3))
    plan_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("plans.id"))
    interval: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[datetime] = mapped_column()
    period_end: Mapped[datetime] = mapped_column()
    charge_fee: Mapped[bool] = mapped_column(default=True)
    usage_plan_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("plans.id"), default=None)
    usage_start: Mapped[datetime | None] = mapped_column(default=None)
    usage_end: Mapped[datetime | None] = mapped_column(default=None)
    coupon_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("coupons.id"), default=None)
    subtotal: Mapped[int] = mapped_column(BigInteger, default=0)
    discount: Mapped[int] = mapped_column(BigInteger, default=0)
    tax: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_credited: Mapped[int] = mapped_column(BigInteger, default=0)
    customer: Mapped[dict] = mapped_column(default=dict)  # billing details, frozen when finalized
    finalize_after: Mapped[datetime] = mapped_column(index=True)
    finalized_at: Mapped[datetime | None] = mapped_column(default=None)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    voided_at: Mapped[datetime | None] = mapped_column(default=None)
    uncollectible_at: Mapped[datetime | None] = mapped_column(default=None)

    lines: Mapped[list[InvoiceLine]] = relationship(back_populates="invoice", order_by="InvoiceLine.position",
                                                    lazy="selectin")

    @property
    def amount_due(self) -> int:
        """What is still to collect (a negative total is owed to the tenant, never collected)."""
        return max(0, self.total - self.amount_paid - self.amount_credited)

    @property
    def creditable(self) -> int:
        """How much more credit notes may credit: the total less what was already credited."""
        return max(0, self.total - self.amount_credited)


class InvoiceLine(PublicIdMixin, TenantScopedMixin, db.Model):
    """A line. invoice_id None is a pending line (a proration) that the subscription's next invoice takes.

    amount is what the line adds to the total: for tax lines the exclusive tax, 0 for inclusive tax
    (already in the other lines' amounts) and for reverse charge. tax_amount is the tax in this line
    (exclusive: on top of amount; inclusive: contained in it), rounded half-up once per line.
    """

    __tablename__ = "invoice_lines"
    id_prefix = "il"

    invoice_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("invoices.id"), index=True,
                                                   default=None)
    subscription_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("subscriptions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(14))
    description: Mapped[str] = mapped_column(String(300))
    metric: Mapped[str | None] = mapped_column(String(40), default=None)
    quantity: Mapped[Decimal | None] = mapped_column(Numeric(24, 6), default=None)
    unit_amount: Mapped[Decimal | None] = mapped_column(Numeric(24, 6), default=None)  # minor units per unit
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    period_start: Mapped[datetime | None] = mapped_column(default=None)
    period_end: Mapped[datetime | None] = mapped_column(default=None)
    tax_rate_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("tax_rates.id"), default=None)
    tax_percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4), default=None)
    tax_inclusive: Mapped[bool] = mapped_column(default=False)
    tax_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_note: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column()

    invoice: Mapped[Invoice | None] = relationship(back_populates="lines")


class CreditNote(PublicIdMixin, TenantScopedMixin, db.Model):
    """A refund or correction against an open or paid invoice, numbered CN-YYYY-NNNNNN without gaps.
    amount (tax included) never exceeds what is left to credit on the invoice."""

    __tablename__ = "credit_notes"
    id_prefix = "cn"

    invoice_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("invoices.id"), index=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    tax_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(String(30))
    memo: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column()


class DocumentSequence(db.Model):
    """The last number used per document series and year ("INV-2026"): taken under a row lock in the
    finalizing transaction, so numbers have no gaps and no repeats."""

    __tablename__ = "document_sequences"

    series: Mapped[str] = mapped_column(String(16), primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


class BillingRunFailure(PublicIdMixin, TenantScopedMixin, db.Model):
    """A subscription (stage "renew") or an invoice (stage "finalize") the billing run could not process.
    The next run retries it; resolved_at is set when a later attempt succeeds."""

    __tablename__ = "billing_run_failures"
    id_prefix = "brf"

    stage: Mapped[str] = mapped_column(String(10))
    subject_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)  # a subscription or invoice id
    run_date: Mapped[date] = mapped_column(Date)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=1)
    first_failed_at: Mapped[datetime] = mapped_column()
    last_failed_at: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)


# --- immutability of finalized invoices ----------------------------------------------------------------

FROZEN_FIELDS = ("number", "currency", "plan_id", "interval", "period_start", "period_end", "usage_start",
                 "usage_end", "coupon_id", "subtotal", "discount", "tax", "total", "customer", "finalized_at")


class ImmutableInvoice(RuntimeError):
    """A change to a finalized invoice's amounts, lines or identity (a bug: services never attempt it)."""


@event.listens_for(Invoice, "before_update")
def _invoice_frozen(_mapper, _connection, invoice: Invoice) -> None:
    status = get_history(invoice, "status", PASSIVE_NO_INITIALIZE)  # as inspect(invoice).attrs.status.history
    was = status.deleted[0] if status.deleted else invoice.status
    if was == "draft":
        return
    changed = [name for name in FROZEN_FIELDS if get_history(invoice, name, PASSIVE_NO_INITIALIZE).has_changes()]
    if changed:
        raise ImmutableInvoice(f"invoice {invoice.id} is {was}: {', '.join(changed)} cannot change")


def _line_frozen(_mapper, connection, line: InvoiceLine) -> None:
    if line.invoice_id is None:
        return
    status = connection.scalar(select(Invoice.status).where(Invoice.id == line.invoice_id))
    if status not in (None, "draft"):
        raise ImmutableInvoice(f"invoice {line.invoice_id} is {status}: its lines cannot change")


for _event in ("before_insert", "before_update", "before_delete"):
    event.listen(InvoiceLine, _event, _line_frozen)
