"""Shared pieces of the billing services: loading a tenant's subscription, MRR, the subscription history,
event payloads, and audit + outbox in one call."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.billing.invoice_models import Invoice
from app.billing.models import Coupon, Subscription, SubscriptionEvent
from app.db import is_id
from app.errors import NotFound
from app.events import service as events
from app.extensions import db
from app.plans.models import Plan
from app.security import Actor

SUBSCRIPTION_FIELDS = ("plan_id", "interval", "status", "current_period_start", "current_period_end",
                       "trial_end", "cancel_at_period_end", "canceled_at", "ended_at", "pending_plan_id",
                       "pending_interval", "coupon_id", "coupon_periods_left", "grace_until")


def plan_price(plan: Plan, interval: str) -> int:
    """The plan's price for one period of the interval, in minor units."""
    return plan.price_annual if interval == "annual" else plan.price_monthly


def percent_of(amount: int, percent: Decimal) -> int:
    """amount × percent / 100, rounded half-up once to a whole minor unit (discounts and tax)."""
    return int((Decimal(amount) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def coupon_discount(coupon: Coupon | None, subtotal: int) -> int:
    """What a coupon takes off a subtotal (≥ 0, never more than the subtotal)."""
    if coupon is None or subtotal <= 0:
        return 0
    off = percent_of(subtotal, coupon.percent_off) if coupon.percent_off is not None else coupon.amount_off or 0
    return min(off, subtotal)


def mrr(sub: Subscription, status: str | None = None, plan: Plan | None = None, interval: str | None = None,
        coupon: Coupon | None | bool = True) -> int:
    """Monthly recurring revenue of a subscription in minor units: 0 unless active or past_due; the
    period price (annual ÷ 12, rounded half-even) less the coupon (prorated the same way), no tax,
    no overage. Arguments override the subscription's own values (for "before/after" figures)."""
    status = status or sub.status
    if status not in ("active", "past_due"):
        return 0
    plan, interval = plan or sub.plan, interval or sub.interval
    chosen = sub.coupon if coupon is True else coupon or None
    price = plan_price(plan, interval)
    net = price - coupon_discount(chosen, price)
    months = 12 if interval == "annual" else 1
    return int((Decimal(net) / months).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def snapshot(sub: Subscription) -> dict[str, Any]:
    return {field: getattr(sub, field) for field in SUBSCRIPTION_FIELDS}


def get_subscription(tenant_id: str, lock: bool = False) -> Subscription:
    """The tenant's subscription (locked FOR UPDATE when asked); NotFound when it has none."""
    stmt = select(Subscription).where(Subscription.tenant_id == tenant_id)
    if lock:
        stmt = stmt.with_for_update(of=Subscription).execution_options(populate_existing=True)
    sub = db.session.scalar(stmt)
    if sub is None:
        raise NotFound("The tenant has no subscription.")
    return sub


def get_invoice(tenant_id: str | None, invoice_id: str, lock: bool = False) -> Invoice:
    """An invoice; scoped to a tenant unless tenant_id is None (staff). Anything else is NotFound."""
    if not is_id(invoice_id, "inv"):
        raise NotFound("No such invoice.")
    stmt = select(Invoice).where(Invoice.id == invoice_id)
    if tenant_id is not None:
        stmt = stmt.where(Invoice.tenant_id == tenant_id)
    if lock:
        stmt = stmt.with_for_update(of=Invoice).execution_options(populate_existing=True)
    invoice = db.session.scalar(stmt)
    if invoice is None:
        raise NotFound("No such invoice.")
    return invoice


def history(sub: Subscription, type_: str, actor: Actor, before: dict[str, Any] | None, mrr_before: int,
            at: datetime | None = None, **detail: Any) -> SubscriptionEvent:
    """Append a history row (MRR before → after) for a change already applied to `sub`, dated when it took
    effect (`at`, e.g. the period end a renewal closed; default now)."""
    before = before or {}
    row = SubscriptionEvent(
        tenant_id=sub.tenant_id, subscription_id=sub.id, type=type_, occurred_at=at or clock.now(),
        currency=sub.currency,
        mrr_before=mrr_before, mrr_after=mrr(sub), status_before=before.get("status"), status_after=sub.status,
        plan_before=before.get("plan_id"), plan_after=sub.plan_id, interval_before=before.get("interval"),
        interval_after=sub.interval, actor=(actor.display or actor.type)[:254], detail=audit.jsonable(detail))
    db.session.add(row)
    return row


def subscription_payload(sub: Subscription) -> dict[str, Any]:
    return {"id": sub.id, "tenant_id": sub.tenant_id, "plan": sub.plan.code if sub.plan else sub.plan_id,
            "interval": sub.interval, "status": sub.status, "currency": sub.currency,
            "current_period_start": sub.current_period_start, "current_period_end": sub.current_period_end,
            "trial_end": sub.trial_end, "cancel_at_period_end": sub.cancel_at_period_end,
            "pending_plan": sub.pending_plan.code if sub.pending_plan else None, "coupon_id": sub.coupon_id}


def invoice_payload(invoice: Invoice) -> dict[str, Any]:
    return {"id": invoice.id, "number": invoice.number, "status": invoice.status, "currency": invoice.currency,
            "subscription_id": invoice.subscription_id, "billing_reason": invoice.billing_reason,
            "period_start": invoice.period_start, "period_end": invoice.period_end, "subtotal": invoice.subtotal,
            "discount": invoice.discount, "tax": invoice.tax, "total": invoice.total,
            "amount_due": invoice.amount_due}


def changed(sub: Subscription, before: dict[str, Any], actor: Actor, action: str, event_type: str,
            metadata: dict[str, Any] | None = None) -> None:
    """Audit a subscription change (old/new values) and publish its event, in the caller's transaction."""
    after = snapshot(sub)
    audit.record(actor, action, tenant_id=sub.tenant_id, targets=[Target("subscription", sub.id, sub.plan.code)],
                 changes={k: [before.get(k), after[k]] for k in after}, metadata=metadata)
    events.publish(sub.tenant_id, event_type, {"subscription": subscription_payload(sub), **(metadata or {})})


def invoice_changed(invoice: Invoice, actor: Actor, action: str, event_type: str | None,
                    changes: dict[str, list[Any]], metadata: dict[str, Any] | None = None) -> None:
    """Audit an invoice change and publish its event (when it has one), in the caller's transaction."""
    audit.record(actor, action, tenant_id=invoice.tenant_id,
                 targets=[Target("invoice", invoice.id, invoice.number or "draft")], changes=changes,
                 metadata=metadata)
    if event_type:
        events.publish(invoice.tenant_id, event_type, {"invoice": invoice_payload(invoice), **(metadata or {})})
