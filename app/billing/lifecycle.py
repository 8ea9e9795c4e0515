"""Period mechanics shared by the subscription services and the billing run: start a period (with its
invoice), end a trial, close a period (renew, apply a scheduled change, or end a canceled subscription).

These run inside the caller's transaction and never commit.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from app import clock
from app.auth import keycache
from app.billing import tax as tax_service
from app.billing.common import changed, history, mrr, snapshot
from app.billing.invoice_models import Invoice
from app.billing.invoicing import open_invoice
from app.billing.models import LIVE_STATUSES, Subscription
from app.billing.periods import next_boundary
from app.extensions import db
from app.plans.models import Plan
from app.security import Actor
from app.tenancy.models import Tenant


def sync_tenant_plan(sub: Subscription) -> None:
    """The tenant's plan (quotas, limits, features) follows its subscription's plan."""
    tenant = db.session.get(Tenant, sub.tenant_id)
    if tenant is not None and tenant.plan_id != sub.plan_id:
        tenant.plan_id = sub.plan_id
        keycache.bump_after_commit(db.session, [tenant.id])


def set_plan(sub: Subscription, plan: Plan, interval: str) -> None:
    sub.plan_id, sub.plan, sub.interval = plan.id, plan, interval
    sub.pending_plan_id, sub.pending_plan, sub.pending_interval = None, None, None
    sync_tenant_plan(sub)


def start_period(sub: Subscription, actor: Actor, start: datetime, reason: str, *,
                 usage: tuple[Plan, datetime, datetime] | None = None, new_anchor: bool = False) -> Invoice:
    """Begin the period that starts at `start` and open its invoice (fee in advance, plus the overage of a
    closed usage window when given). With new_anchor, periods are counted from `start` from now on."""
    if new_anchor:
        sub.billing_anchor = start
    sub.current_period_start = start
    sub.current_period_end = next_boundary(sub.billing_anchor, sub.interval, start)
    plan, usage_start, usage_end = usage if usage else (None, None, None)
    return open_invoice(sub, actor, reason, start, sub.current_period_end, usage_plan=plan,
                        usage_start=usage_start, usage_end=usage_end)


def mark_past_due(sub: Subscription, at: datetime) -> None:
    """past_due from `at`, with BILLING_PAST_DUE_GRACE before dunning may act on it."""
    sub.status = "past_due"
    sub.past_due_since = at
    sub.grace_until = at + current_app.config["BILLING_PAST_DUE_GRACE"]


def end_trial(sub: Subscription, actor: Actor, at: datetime, reason: str) -> Invoice:
    """End the trial at `at`: the first paid period starts there (the billing anchor moves to it, as
    Stripe does) and its invoice opens. Without a way to pay, the subscription goes past_due."""
    before, mrr_before = snapshot(sub), mrr(sub)
    sub.trial_end = at
    if tax_service.has_payment_method(sub.tenant_id):
        sub.status = "active"
    else:
        mark_past_due(sub, at)
    invoice = start_period(sub, actor, at, reason, new_anchor=True)
    history(sub, "trial_ended", actor, before, mrr_before, at, invoice_id=invoice.id,
            payment_method=sub.status == "active")
    changed(sub, before, actor, "subscription.trial_ended", "subscription.updated",
            {"reason": "trial_ended", "invoice_id": invoice.id})
    return invoice


def close_period(sub: Subscription, actor: Actor) -> Invoice | None:
    """Close the subscription's current period at its end: end the trial, end a subscription canceled
    at period end (with a final invoice for the period's usage), or renew, applying a scheduled plan
    change first. Returns the invoice opened (None when a trial is canceled)."""
    closed_start, closed_end, closed_plan = sub.current_period_start, sub.current_period_end, sub.plan
    closed_interval = sub.interval
    if sub.cancel_at_period_end:
        return end_subscription(sub, actor, closed_end)
    if sub.pending_plan_id:
        apply_scheduled_change(sub, actor, closed_end)
    if sub.status == "trialing":
        return end_trial(sub, actor, closed_end, "subscription_cycle")
    before, mrr_before = snapshot(sub), mrr(sub)
    invoice = start_period(sub, actor, closed_end, "subscription_cycle",
                           usage=(closed_plan, closed_start, closed_end), new_anchor=sub.interval != closed_interval)
    history(sub, "renewed", actor, before, mrr_before, closed_end, invoice_id=invoice.id)
    changed(sub, before, actor, "subscription.renewed", "subscription.updated",
            {"reason": "renewed", "invoice_id": invoice.id})
    return invoice


def catch_up(sub: Subscription, actor: Actor) -> int:
    """Close the periods of a live subscription that ended before now and that the billing run has not
    closed yet (a change made then applies to the period it falls in). Returns how many were closed."""
    closed = 0
    while sub.status in LIVE_STATUSES and sub.current_period_end <= clock.now():
        close_period(sub, actor)
        closed += 1
    return closed


def apply_scheduled_change(sub: Subscription, actor: Actor, at: datetime) -> None:
    """Switch to the plan/interval scheduled for the period end (a downgrade)."""
    before, mrr_before = snapshot(sub), mrr(sub)
    plan, interval = sub.pending_plan, sub.pending_interval or sub.interval
    set_plan(sub, plan, interval)
    kind = "downgraded" if mrr(sub) < mrr_before else "upgraded" if mrr(sub) > mrr_before else "interval_changed"
    history(sub, kind, actor, before, mrr_before, at, scheduled=True)
    changed(sub, before, actor, f"subscription.{kind}", "subscription.updated", {"reason": kind})


def end_subscription(sub: Subscription, actor: Actor, at: datetime, *, final_invoice: bool = True,
                     reason: str = "") -> Invoice | None:
    """Cancel now (at `at`): a final invoice bills the usage of [period start, at) and any pending lines
    (no fee); a trial ends without one."""
    before, mrr_before = snapshot(sub), mrr(sub)
    usage_start = sub.current_period_start
    was_trial = sub.status == "trialing"
    sub.status, sub.ended_at, sub.cancel_at_period_end = "canceled", at, False
    sub.canceled_at = sub.canceled_at or at
    sub.pending_plan_id, sub.pending_plan, sub.pending_interval = None, None, None
    if was_trial:
        sub.trial_end = at
    invoice = None
    if final_invoice and not was_trial:
        invoice = open_invoice(sub, actor, "subscription_cancel", at, at, charge_fee=False, usage_plan=sub.plan,
                               usage_start=usage_start, usage_end=at)
    sub.current_period_end = at
    history(sub, "canceled", actor, before, mrr_before, at, invoice_id=invoice.id if invoice else None, reason=reason)
    changed(sub, before, actor, "subscription.canceled", "subscription.canceled",
            {"reason": reason or "canceled", "invoice_id": invoice.id if invoice else None})
    return invoice
