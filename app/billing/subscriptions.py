"""Subscription use cases: subscribe, apply a coupon, cancel (at period end or now), reactivate, pause
and resume. Plan changes are in changes.py; closing periods is the billing run's (run.py).

Each call is one transaction: the change, its dated history row (with MRR before/after), its audit event
and its outbox event commit together. Periods start and invoices open at clock.now().
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.billing import coupons as coupon_service
from app.billing.common import changed, get_subscription, history, mrr, plan_price, snapshot
from app.billing.invoicing import pending_line, span
from app.billing.lifecycle import catch_up, end_subscription, set_plan, start_period, sync_tenant_plan
from app.billing.models import INTERVALS, Subscription
from app.billing.periods import share
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.plans import queries as plan_queries
from app.plans.models import Plan
from app.security import Actor
from app.tenancy.models import Tenant


def find_plan(reference: str | None, field: str = "plan") -> Plan:
    """A plan by id or code that can be subscribed to; Invalid (naming `field`) otherwise."""
    plan = plan_queries.find_plan(reference) if reference else None
    if plan is None:
        raise Invalid("Choose a plan.", errors={field: "No such plan."})
    return plan


def _interval(value: Any) -> str:
    if value not in INTERVALS:
        raise Invalid("Choose monthly or annual billing.", errors={"interval": f"One of {', '.join(INTERVALS)}."})
    return value


def _can_act(actor: Actor, tenant_id: str) -> None:
    if not actor.can("billing:write") or (actor.type in ("user", "api_key") and actor.tenant_id != tenant_id):
        raise NotFound("The tenant has no subscription.")


def create(actor: Actor, tenant_id: str, plan: str | None = None, interval: str = "monthly",
           coupon: str | None = None, trial: bool = True) -> Subscription:
    """Subscribe a tenant (default: to its current plan). With the plan's trial_days (and trial=True) it
    starts trialing for that many days and is billed nothing until the trial ends; otherwise it is active
    and the first period's invoice opens now. A coupon (id or code) is redeemed now. Commits."""
    _can_act(actor, tenant_id)
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    chosen = find_plan(plan or tenant.plan_id)
    interval = _interval(interval)
    if chosen.archived and chosen.id != tenant.plan_id:
        raise Invalid("This plan is archived.", errors={"plan": "This plan is archived; choose another."})
    if db.session.scalar(select(Subscription.id).where(Subscription.tenant_id == tenant_id)):
        raise Conflict("The tenant already has a subscription; change its plan or reactivate it.")
    now = clock.now()
    sub = Subscription(tenant_id=tenant_id, plan_id=chosen.id, plan=chosen, interval=interval, currency=chosen.currency,
                       status="trialing" if trial and chosen.trial_days else "active", billing_anchor=now,
                       current_period_start=now, current_period_end=now)
    db.session.add(sub)
    if coupon:
        _attach_coupon(sub, coupon)
    sync_tenant_plan(sub)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("The tenant already has a subscription.") from None
    metadata: dict[str, Any] = {}
    if sub.status == "trialing":
        sub.trial_start, sub.trial_end = now, now + timedelta(days=chosen.trial_days)
        sub.current_period_end = sub.trial_end
        history(sub, "created", actor, None, 0)
        history(sub, "trial_started", actor, None, 0, trial_days=chosen.trial_days)
    else:
        invoice = start_period(sub, actor, now, "subscription_create")
        history(sub, "created", actor, None, 0, invoice_id=invoice.id)
        metadata["invoice_id"] = invoice.id
    changed(sub, {}, actor, "subscription.created", "subscription.created", metadata)
    db.session.commit()
    return sub


def _attach_coupon(sub: Subscription, reference: str) -> None:
    found = coupon_service.find(reference)
    sub.coupon_periods_left = coupon_service.redeem(found, sub.currency)
    sub.coupon_id, sub.coupon = found.id, found


def apply_coupon(actor: Actor, tenant_id: str, coupon: str) -> Subscription:
    """Put a coupon (id or code) on the subscription, replacing any other; it discounts the next
    invoices (once, N of them, or forever). Commits."""
    _can_act(actor, tenant_id)
    sub = get_subscription(tenant_id, lock=True)
    catch_up(sub, actor)
    if sub.status == "canceled":
        raise Invalid("The subscription is canceled.", errors={"coupon": "Reactivate the subscription first."})
    before, mrr_before = snapshot(sub), mrr(sub)
    _attach_coupon(sub, coupon)
    history(sub, "coupon_applied", actor, before, mrr_before, coupon_id=sub.coupon_id)
    changed(sub, before, actor, "subscription.coupon_applied", "subscription.updated", {"reason": "coupon_applied"})
    db.session.commit()
    return sub


def cancel(actor: Actor, tenant_id: str, at_period_end: bool = True, prorate: bool = False,
           reason: str = "") -> Subscription:
    """Cancel. At period end (the default): the subscription runs and is billed to the end of the paid
    period, then ends (reactivate() undoes it until then). Now: it ends at once; a final invoice bills the
    period's usage so far and pending prorations, and with prorate=True credits the unused part of the
    fee (by the second, as Stripe). Commits."""
    _can_act(actor, tenant_id)
    sub = get_subscription(tenant_id, lock=True)
    catch_up(sub, actor)
    if sub.status == "canceled":
        raise Conflict("The subscription is already canceled.")
    reason = str(reason or "").strip()[:200]
    now = clock.now()
    if at_period_end:
        if sub.cancel_at_period_end:
            raise Conflict("The subscription is already set to cancel at the period end.")
        before, mrr_before = snapshot(sub), mrr(sub)
        sub.cancel_at_period_end, sub.canceled_at = True, now
        sub.pending_plan_id, sub.pending_plan, sub.pending_interval = None, None, None
        history(sub, "cancel_scheduled", actor, before, mrr_before, reason=reason, ends_at=sub.current_period_end)
        changed(sub, before, actor, "subscription.cancel_scheduled", "subscription.updated",
                {"reason": "cancel_scheduled", "ends_at": sub.current_period_end})
    else:
        if prorate and sub.status in ("active", "past_due"):
            start, end = sub.current_period_start, sub.current_period_end
            unused = share(plan_price(sub.plan, sub.interval), start, end, now, end)
            if unused:
                pending_line(sub, f"Unused time on {sub.plan.name} ({sub.interval}) · "
                             f"{span(now, sub.current_period_end)}", -unused, now, sub.current_period_end)
        end_subscription(sub, actor, now, reason=reason)
    db.session.commit()
    return sub


def reactivate(actor: Actor, tenant_id: str) -> Subscription:
    """Undo a cancellation. Scheduled for the period end: it simply continues. Already ended: a new
    period starts now (new billing anchor, no trial) and its invoice opens. Commits."""
    _can_act(actor, tenant_id)
    sub = get_subscription(tenant_id, lock=True)
    catch_up(sub, actor)  # a cancellation at a period end that has passed takes effect first
    before, mrr_before = snapshot(sub), mrr(sub)
    now = clock.now()
    metadata: dict[str, Any] = {"reason": "reactivated"}
    if sub.status != "canceled":
        if not sub.cancel_at_period_end:
            raise Conflict("The subscription is not canceled.")
        sub.cancel_at_period_end, sub.canceled_at = False, None
    else:
        plan = sub.plan
        if plan.archived:
            raise Invalid("The subscription's plan is archived.", errors={"plan": "Subscribe to another plan."})
        sub.status, sub.canceled_at, sub.ended_at, sub.cancel_at_period_end = "active", None, None, False
        sub.past_due_since = sub.grace_until = None
        set_plan(sub, plan, sub.interval)
        invoice = start_period(sub, actor, now, "subscription_update", new_anchor=True)
        metadata["invoice_id"] = invoice.id
    history(sub, "reactivated", actor, before, mrr_before, **{k: v for k, v in metadata.items() if k != "reason"})
    changed(sub, before, actor, "subscription.reactivated", "subscription.updated", metadata)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("The subscription changed at the same moment; try again.") from None
    return sub


def pause(actor: Actor, tenant_id: str) -> Subscription:
    """Pause (staff): no periods are closed and nothing is billed while paused. Commits."""
    sub = get_subscription(tenant_id, lock=True)
    if actor.type not in ("staff", "system"):
        raise NotFound("The tenant has no subscription.")
    if sub.status not in ("active", "past_due"):
        raise Conflict(f"A {sub.status} subscription cannot be paused.")
    before, mrr_before = snapshot(sub), mrr(sub)
    sub.status = "paused"
    history(sub, "paused", actor, before, mrr_before)
    changed(sub, before, actor, "subscription.paused", "subscription.updated", {"reason": "paused"})
    db.session.commit()
    return sub


def resume(actor: Actor, tenant_id: str) -> Subscription:
    """Resume a paused subscription: a new period starts now (new billing anchor) and its invoice opens.
    Commits."""
    sub = get_subscription(tenant_id, lock=True)
    if actor.type not in ("staff", "system"):
        raise NotFound("The tenant has no subscription.")
    if sub.status != "paused":
        raise Conflict("The subscription is not paused.")
    before, mrr_before = snapshot(sub), mrr(sub)
    sub.status = "past_due" if sub.past_due_since else "active"
    invoice = start_period(sub, actor, clock.now(), "subscription_update", new_anchor=True)
    history(sub, "resumed", actor, before, mrr_before, invoice_id=invoice.id)
    changed(sub, before, actor, "subscription.resumed", "subscription.updated",
            {"reason": "resumed", "invoice_id": invoice.id})
    db.session.commit()
    return sub
