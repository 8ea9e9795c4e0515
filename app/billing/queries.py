"""Reads for the billing pages: a tenant's subscription, its next invoice as it stands, invoices (paged),
credits and payments."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from app import clock
from app.billing import wallets
from app.billing.common import coupon_discount, plan_price
from app.billing.invoice_models import Invoice, InvoiceLine
from app.billing.models import Subscription
from app.billing.payment_models import Payment
from app.db import Page, paginate
from app.extensions import db
from app.plans.models import Plan


@dataclass
class Upcoming:
    """The next invoice as it stands now (before tax): the next period's fee, prorations waiting for it,
    the overage of the current period so far, and the coupon's discount."""

    at: datetime
    currency: str
    lines: list[tuple[str, int]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(amount for _, amount in self.lines)


def subscription(tenant_id: str) -> Subscription | None:
    return db.session.scalar(select(Subscription).where(Subscription.tenant_id == tenant_id))


def upcoming(sub: Subscription) -> Upcoming | None:
    """What the renewal at the end of the current period would bill, as things stand (None when the
    subscription ends there or has ended)."""
    from app.billing.invoicing import overage, span

    if sub.status in ("canceled", "paused") or sub.cancel_at_period_end:
        return None
    plan = sub.pending_plan or sub.plan
    interval = sub.pending_interval or sub.interval
    preview = Upcoming(sub.current_period_end, sub.currency)
    fee = plan_price(plan, interval)
    if fee:
        preview.lines.append((f"{plan.name} ({interval}) from {sub.current_period_end:%Y-%m-%d}", fee))
    for line in db.session.scalars(select(InvoiceLine).where(InvoiceLine.subscription_id == sub.id,
                                                             InvoiceLine.invoice_id.is_(None))
                                   .order_by(InvoiceLine.created_at)):
        preview.lines.append((line.description, line.amount))
    if sub.status != "trialing":
        now = min(clock.now(), sub.current_period_end)
        for metric, quantity, _unit, amount in overage(sub.tenant_id, sub.plan, sub.current_period_start, now):
            if amount:
                preview.lines.append((f"Overage so far: {quantity:,} {metric} · {span(sub.current_period_start, now)}",
                                      amount))
    discount = coupon_discount(sub.coupon, sum(a for _, a in preview.lines)) if sub.coupon else 0
    if discount:
        preview.lines.append((f"Coupon {sub.coupon.name}", -discount))
    return preview


def invoices_page(tenant_id: str | None, page: int, per_page: int = 20, status: str | None = None,
                  include_drafts: bool = False) -> Page:
    """Invoices newest first (a tenant's, or everyone's for staff with tenant_id None)."""
    stmt = select(Invoice)
    if tenant_id is not None:
        stmt = stmt.where(Invoice.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(Invoice.status == status)
    elif not include_drafts:
        stmt = stmt.where(Invoice.status != "draft")
    return paginate(db.session, stmt.order_by(Invoice.period_start.desc(), Invoice.id.desc()), page, per_page)


def payments_of(invoice_id: str) -> list[Payment]:
    return list(db.session.scalars(select(Payment).where(Payment.invoice_id == invoice_id)
                                   .order_by(Payment.created_at, Payment.id)))


def credits(tenant_id: str) -> dict:
    return {"balances": wallets.balances(tenant_id), "grants": wallets.grants(tenant_id, limit=20)}


def public_plans(currency: str) -> list[Plan]:
    """The plans a tenant may switch to: public, not archived, in its currency."""
    return list(db.session.scalars(select(Plan).where(Plan.is_public.is_(True), Plan.archived_at.is_(None),
                                                      Plan.currency == currency)
                                   .order_by(Plan.sort_order, Plan.price_monthly)))
