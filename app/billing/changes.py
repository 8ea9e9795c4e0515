"""Plan changes: upgrade now with proration by the second (as Stripe), downgrade at the period end
unless staff choose now, and preview_change(), which computes the same lines without writing anything.

Which is which: the change's MRR (annual ÷ 12, before discounts) against the current one. An upgrade
takes effect now: the unused part of the old price is credited and the same part of the new price
charged, as two pending lines that the next invoice takes (Stripe's create_prorations). A downgrade is
scheduled for the period end (Lago, Kill Bill END_OF_TERM); staff may apply it now (when="now"), with the
same proration. Changing the interval now starts a new period at once (new billing anchor), crediting the
unused part of the old one. An upgrade during a trial ends the trial: the first paid period starts now.
Choosing the current plan and interval again cancels a scheduled change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from app import clock
from app.billing.common import changed, get_subscription, history, mrr, plan_price, snapshot
from app.billing.invoicing import pending_line, span
from app.billing.lifecycle import catch_up, end_trial, set_plan, start_period
from app.billing.models import LIVE_STATUSES, Subscription
from app.billing.periods import prorate, share
from app.billing.subscriptions import _can_act, _interval, find_plan
from app.errors import Conflict, Invalid
from app.extensions import db
from app.plans.models import Plan
from app.security import Actor

WHEN = ("auto", "now", "period_end")


@dataclass
class ChangePreview:
    """What a plan change would do: kind (upgrade | downgrade | same), when it takes effect, and the
    proration lines (description, amount in minor units) it would add to the next invoice."""

    kind: str
    effective: str  # now | period_end
    at: datetime
    plan: Plan
    interval: str
    currency: str
    mrr_before: int
    mrr_after: int
    ends_trial: bool = False
    new_period: bool = False  # an interval change now starts a new period (and its invoice) at once
    fraction: Decimal | None = None  # the remaining part of the period, exact
    lines: list[tuple[str, int]] = field(default_factory=list)

    @property
    def net(self) -> int:
        return sum(amount for _, amount in self.lines)


def _plan_mrr(plan: Plan, interval: str) -> Decimal:
    return Decimal(plan_price(plan, interval)) / (12 if interval == "annual" else 1)


def _preview(actor: Actor, sub: Subscription, plan: Plan, interval: str, when: str) -> ChangePreview:
    if when not in WHEN:
        raise Invalid("Choose when the change takes effect.", errors={"when": f"One of {', '.join(WHEN)}."})
    if sub.status in ("canceled", "paused"):
        raise Invalid(f"The subscription is {sub.status}.", errors={"plan": "Reactivate or resume it first."})
    if plan.currency != sub.currency:
        raise Invalid("The plan is in another currency.",
                      errors={"plan": f"The subscription is billed in {sub.currency}; this plan in {plan.currency}."})
    if plan.archived and plan.id != sub.plan_id:
        raise Invalid("This plan is archived.", errors={"plan": "This plan is archived; choose another."})
    now = clock.now()
    if sub.status in LIVE_STATUSES and sub.current_period_end <= now:
        raise Conflict(f"The period ended at {sub.current_period_end:%Y-%m-%d %H:%M} UTC and is being renewed; "
                       "try again in a few minutes.")
    old, new = _plan_mrr(sub.plan, sub.interval), _plan_mrr(plan, interval)
    kind = "same" if plan.id == sub.plan_id and interval == sub.interval else "upgrade" if new > old else "downgrade"
    effective = "now" if kind == "upgrade" else "period_end"
    if when != "auto":
        effective = when
    if effective == "now" and kind == "downgrade" and actor.type not in ("staff", "system"):
        raise Invalid("A downgrade takes effect at the end of the period.",
                      errors={"when": "Only staff can apply a downgrade before the period ends."})
    if kind == "same":
        effective = "period_end"
    preview = ChangePreview(kind, effective, now if effective == "now" else sub.current_period_end, plan, interval,
                            sub.currency, mrr(sub), mrr(sub, plan=plan, interval=interval))
    if effective != "now":
        return preview
    if sub.status == "trialing":
        preview.ends_trial = kind == "upgrade"
        return preview
    start, end = sub.current_period_start, sub.current_period_end
    old_price, new_price = plan_price(sub.plan, sub.interval), plan_price(plan, interval)
    if interval != sub.interval:
        preview.new_period = True
        preview.fraction = prorate(old_price, old_price, start, end, now).fraction
        unused = share(old_price, start, end, now, end)
        if unused:
            preview.lines.append((f"Unused time on {sub.plan.name} ({sub.interval}) · {span(now, end)}", -unused))
        return preview
    proration = prorate(old_price, new_price, start, end, now)
    preview.fraction = proration.fraction
    if proration.credit:
        preview.lines.append((f"Unused time on {sub.plan.name} ({sub.interval}) · {span(now, end)}",
                              proration.credit))
    if proration.debit:
        preview.lines.append((f"Remaining time on {plan.name} ({interval}) · {span(now, end)}", proration.debit))
    return preview


def preview_change(actor: Actor, tenant_id: str, plan: str, interval: str | None = None,
                   when: str = "auto") -> ChangePreview:
    """The proration lines and timing a change would have, without writing anything. Conflict in the
    minutes between a period's end and the billing run closing it (change_plan closes it itself)."""
    _can_act(actor, tenant_id)
    sub = get_subscription(tenant_id)
    with db.session.no_autoflush:
        return _preview(actor, sub, find_plan(plan), _interval(interval or sub.interval), when)


def change_plan(actor: Actor, tenant_id: str, plan: str, interval: str | None = None,
                when: str = "auto") -> ChangePreview:
    """Apply a plan (and/or interval) change as preview_change() describes it; commits. Returns the
    preview that was applied."""
    _can_act(actor, tenant_id)
    sub = get_subscription(tenant_id, lock=True)
    catch_up(sub, actor)
    preview = _preview(actor, sub, find_plan(plan), _interval(interval or sub.interval), when)
    before, mrr_before = snapshot(sub), mrr(sub)
    if preview.kind == "same":
        if not sub.pending_plan_id:
            raise Invalid("The subscription is already on this plan.", errors={"plan": "Choose another plan."})
        sub.pending_plan_id, sub.pending_plan, sub.pending_interval = None, None, None
        history(sub, "change_unscheduled", actor, before, mrr_before)
        changed(sub, before, actor, "subscription.change_unscheduled", "subscription.updated",
                {"reason": "change_unscheduled"})
    elif preview.effective == "period_end":
        if sub.cancel_at_period_end:
            raise Invalid("The subscription ends at the period end.", errors={"plan": "Reactivate it first."})
        sub.pending_plan_id, sub.pending_plan, sub.pending_interval = preview.plan.id, preview.plan, preview.interval
        history(sub, "downgrade_scheduled", actor, before, mrr_before, plan=preview.plan.code,
                interval=preview.interval, at=preview.at)
        changed(sub, before, actor, "subscription.change_scheduled", "subscription.updated",
                {"reason": "change_scheduled", "effective_at": preview.at})
    else:
        _apply_now(actor, sub, preview, before, mrr_before)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("The subscription changed at the same moment; try again.") from None
    return preview


def _apply_now(actor: Actor, sub: Subscription, preview: ChangePreview, before: dict, mrr_before: int) -> None:
    now, end = preview.at, sub.current_period_end
    for description, amount in preview.lines:
        pending_line(sub, description, amount, now, end, quantity=preview.fraction)
    set_plan(sub, preview.plan, preview.interval)
    kind = "upgraded" if preview.kind == "upgrade" else "downgraded"
    metadata: dict = {"reason": kind, "proration": preview.net}
    if preview.new_period:
        invoice = start_period(sub, actor, now, "subscription_update", new_anchor=True)
        metadata["invoice_id"] = invoice.id
    history(sub, kind, actor, before, mrr_before, proration=preview.net, lines=preview.lines,
            **({"invoice_id": metadata["invoice_id"]} if "invoice_id" in metadata else {}))
    changed(sub, before, actor, f"subscription.{kind}", "subscription.updated", metadata)
    if preview.ends_trial:
        end_trial(sub, actor, now, "subscription_update")
