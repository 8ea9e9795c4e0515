"""Subscribing, trials, plan changes with proration, cancellation and reactivation, through the services."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import clock
from app.billing import changes, subscriptions
from app.billing.invoice_models import Invoice, InvoiceLine
from app.billing.models import Subscription, SubscriptionEvent
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.tenancy.models import Tenant
from tests.billing.conftest import (
    STAFF,
    SYSTEM,
    T0,
    audit_actions,
    history_of,
    invoices_of,
    lines_of,
    outbox_types,
)


def test_a_plan_with_trial_days_starts_trialing_and_bills_nothing(subscribe):
    tenant, sub = subscribe("pro", trial=True)
    assert sub.status == "trialing"
    assert (sub.trial_start, sub.trial_end) == (T0, T0 + timedelta(days=14))
    assert (sub.current_period_start, sub.current_period_end) == (T0, T0 + timedelta(days=14))
    assert invoices_of(tenant.id) == []
    assert [(e.type, e.mrr_before, e.mrr_after) for e in history_of(tenant.id)] == [
        ("created", 0, 0), ("trial_started", 0, 0)]
    assert "subscription.created" in outbox_types(tenant.id)
    assert "subscription.created" in audit_actions(tenant.id)


def test_without_a_trial_the_first_period_is_invoiced_in_advance(subscribe):
    tenant, sub = subscribe("pro")
    assert sub.status == "active"
    assert sub.current_period_end == T0.replace(month=2)
    [invoice] = invoices_of(tenant.id)
    assert (invoice.status, invoice.billing_reason, invoice.total) == ("draft", "subscription_create", 4900)
    assert lines_of(invoice) == [("subscription", 4900)]
    assert [(e.type, e.mrr_after) for e in history_of(tenant.id)] == [("created", 4900)]
    assert {"subscription.created", "invoice.created"} <= set(outbox_types(tenant.id))


def test_annual_mrr_is_a_twelfth_of_the_price(subscribe):
    tenant, sub = subscribe("pro", interval="annual")
    assert sub.current_period_end == T0.replace(year=2031)
    assert history_of(tenant.id)[0].mrr_after == 4083  # 49000 / 12 = 4083.33, half-even


def test_one_subscription_per_tenant(subscribe):
    tenant, _ = subscribe("pro")
    with pytest.raises(Conflict):
        subscriptions.create(SYSTEM, tenant.id, "pro")


def test_an_unknown_plan_or_interval_names_the_field(make, frozen):
    tenant = make.tenant()
    with pytest.raises(Invalid) as error:
        subscriptions.create(SYSTEM, tenant.id, "nope")
    assert "plan" in error.value.errors
    with pytest.raises(Invalid) as error:
        subscriptions.create(SYSTEM, tenant.id, "pro", interval="weekly")
    assert "interval" in error.value.errors


def test_another_tenants_user_gets_not_found(make, subscribe):
    tenant, _ = subscribe("pro")
    other = make.tenant()
    intruder = make.actor_for(other, "owner")
    with pytest.raises(NotFound):
        changes.change_plan(intruder, tenant.id, "enterprise")
    viewer = make.actor_for(tenant, "admin")  # admins have no billing:write
    with pytest.raises(NotFound):
        subscriptions.cancel(viewer, tenant.id)


def test_an_upgrade_mid_period_prorates_by_the_second_as_pending_lines(subscribe):
    tenant, sub = subscribe("pro")
    start, end = sub.current_period_start, sub.current_period_end
    with clock.travel(start + (end - start) / 2):
        preview = changes.preview_change(SYSTEM, tenant.id, "enterprise")
        assert (preview.kind, preview.effective) == ("upgrade", "now")
        assert db.session.scalar(select(func.count()).select_from(InvoiceLine)
                                 .where(InvoiceLine.invoice_id.is_(None))) == 0  # the preview wrote nothing
        applied = changes.change_plan(SYSTEM, tenant.id, "enterprise")
    assert [amount for _, amount in applied.lines] == [-2450, 25000]  # half of 4900 back, half of 50000 due
    assert applied.lines == preview.lines
    sub = db.session.get(Subscription, sub.id)
    assert sub.plan.code == "enterprise" and sub.status == "active"
    assert db.session.get(Tenant, tenant.id).plan.code == "enterprise"  # quotas and limits follow
    pending = db.session.scalars(select(InvoiceLine).where(InvoiceLine.subscription_id == sub.id,
                                                           InvoiceLine.invoice_id.is_(None))).all()
    assert sorted(line.amount for line in pending) == [-2450, 25000]
    upgraded = history_of(tenant.id)[-1]
    assert (upgraded.type, upgraded.mrr_before, upgraded.mrr_after) == ("upgraded", 4900, 50000)
    assert "subscription.upgraded" in audit_actions(tenant.id)
    from app.audit.models import AuditEvent

    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "subscription.upgraded"))
    from app.plans.queries import find_plan

    assert event.changes["plan_id"] == [find_plan("pro").id, find_plan("enterprise").id]  # old and new
    assert event.actor_type == "system" and event.meta["proration"] == 22550


def test_an_upgrade_during_a_trial_ends_the_trial(subscribe):
    tenant, sub = subscribe("pro", trial=True)
    later = T0 + timedelta(days=3)
    with clock.travel(later):
        changes.change_plan(SYSTEM, tenant.id, "enterprise")
    sub = db.session.get(Subscription, sub.id)
    assert sub.trial_end == later and sub.billing_anchor == later
    assert (sub.current_period_start, sub.current_period_end) == (later, later.replace(month=2))
    assert sub.status == "past_due"  # no payment method yet
    [invoice] = invoices_of(tenant.id)
    assert lines_of(invoice) == [("subscription", 50000)]
    types = [e.type for e in history_of(tenant.id)]
    assert types[-2:] == ["upgraded", "trial_ended"]


def test_a_downgrade_waits_for_the_period_end(subscribe):
    tenant, sub = subscribe("enterprise")
    with clock.travel(T0 + timedelta(days=5)):
        preview = changes.change_plan(SYSTEM, tenant.id, "pro")
    assert (preview.kind, preview.effective, preview.at) == ("downgrade", "period_end", sub.current_period_end)
    sub = db.session.get(Subscription, sub.id)
    assert sub.plan.code == "enterprise" and sub.pending_plan.code == "pro"
    assert history_of(tenant.id)[-1].type == "downgrade_scheduled"
    with clock.travel(T0 + timedelta(days=6)):  # choosing the current plan again unschedules it
        changes.change_plan(SYSTEM, tenant.id, "enterprise")
    assert db.session.get(Subscription, sub.id).pending_plan_id is None


def test_only_staff_downgrade_now(make, subscribe):
    tenant, sub = subscribe("enterprise")
    owner = make.actor_for(tenant, "owner")
    with clock.travel(T0 + timedelta(days=5)), pytest.raises(Invalid) as error:
        changes.change_plan(owner, tenant.id, "pro", when="now")
    assert "when" in error.value.errors
    with clock.travel(T0 + timedelta(days=5)):
        applied = changes.change_plan(STAFF, tenant.id, "pro", when="now")
    assert applied.net < 0
    assert db.session.get(Subscription, sub.id).plan.code == "pro"


def test_cancel_at_period_end_and_reactivate(subscribe):
    tenant, sub = subscribe("pro")
    subscriptions.cancel(SYSTEM, tenant.id)
    sub = db.session.get(Subscription, sub.id)
    assert sub.cancel_at_period_end and sub.status == "active"
    with pytest.raises(Conflict):
        subscriptions.cancel(SYSTEM, tenant.id)
    subscriptions.reactivate(SYSTEM, tenant.id)
    assert not db.session.get(Subscription, sub.id).cancel_at_period_end
    assert [e.type for e in history_of(tenant.id)][-2:] == ["cancel_scheduled", "reactivated"]


def test_cancel_now_with_proration_credits_the_unused_fee_on_a_final_invoice(subscribe):
    tenant, sub = subscribe("pro")
    start, end = sub.current_period_start, sub.current_period_end
    with clock.travel(start + (end - start) / 4):
        subscriptions.cancel(SYSTEM, tenant.id, at_period_end=False, prorate=True)
    sub = db.session.get(Subscription, sub.id)
    assert sub.status == "canceled"
    _, final = invoices_of(tenant.id)
    assert final.billing_reason == "subscription_cancel"
    assert lines_of(final) == [("proration", -3675)]
    assert final.total == -3675 and final.amount_due == 0
    canceled = history_of(tenant.id)[-1]
    assert (canceled.type, canceled.mrr_before, canceled.mrr_after) == ("canceled", 4900, 0)
    assert "subscription.canceled" in outbox_types(tenant.id)


def test_reactivating_an_ended_subscription_starts_a_new_period(subscribe):
    tenant, sub = subscribe("pro")
    with clock.travel(T0 + timedelta(days=1)):
        subscriptions.cancel(SYSTEM, tenant.id, at_period_end=False)
    with clock.travel(T0 + timedelta(days=40)):
        subscriptions.reactivate(SYSTEM, tenant.id)
    sub = db.session.get(Subscription, sub.id)
    assert sub.status == "active" and sub.billing_anchor == T0 + timedelta(days=40)
    reactivated = history_of(tenant.id)[-1]
    assert (reactivated.type, reactivated.mrr_before, reactivated.mrr_after) == ("reactivated", 0, 4900)
    assert invoices_of(tenant.id)[-1].billing_reason == "subscription_update"


def test_every_change_has_one_history_row_with_its_time(subscribe):
    tenant, _ = subscribe("pro")
    with clock.travel(T0 + timedelta(days=2)):
        changes.change_plan(SYSTEM, tenant.id, "enterprise")
    rows = db.session.scalars(select(SubscriptionEvent).where(SubscriptionEvent.tenant_id == tenant.id)
                              .order_by(SubscriptionEvent.occurred_at)).all()
    assert [(r.type, r.occurred_at) for r in rows] == [("created", T0), ("upgraded", T0 + timedelta(days=2))]
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1


def test_monthly_to_annual_is_scheduled_and_starts_a_new_anchor_at_the_period_end(subscribe):
    from app.billing import run

    tenant, sub = subscribe("pro")
    with clock.travel(T0 + timedelta(days=3)):
        preview = changes.change_plan(SYSTEM, tenant.id, "pro", interval="annual")
    assert (preview.kind, preview.effective) == ("downgrade", "period_end")  # 49000 / 12 < 4900 a month
    end = sub.current_period_end
    with clock.travel(end):
        run.run(end.date())
    sub = db.session.get(Subscription, sub.id)
    assert (sub.interval, sub.billing_anchor, sub.current_period_end) == ("annual", end, end.replace(year=2031))
    assert lines_of(invoices_of(tenant.id)[-1]) == [("subscription", 49000)]


def test_annual_to_monthly_now_credits_the_unused_year_and_starts_a_month(subscribe):
    tenant, sub = subscribe("pro", interval="annual")
    year = sub.current_period_end - sub.current_period_start
    at = T0 + year / 2
    with clock.travel(at):
        applied = changes.change_plan(SYSTEM, tenant.id, "pro", interval="monthly")
    assert (applied.kind, applied.new_period) == ("upgrade", True)
    assert applied.lines[0][1] == -24500
    sub = db.session.get(Subscription, sub.id)
    assert (sub.interval, sub.billing_anchor, sub.current_period_start) == ("monthly", at, at)
    invoice = invoices_of(tenant.id)[-1]
    assert sorted(lines_of(invoice)) == [("proration", -24500), ("subscription", 4900)]
    assert invoice.billing_reason == "subscription_update"


def test_pause_stops_billing_and_resume_starts_a_new_period(subscribe):
    from app.billing import run

    tenant, sub = subscribe("pro")
    subscriptions.pause(STAFF, tenant.id)
    with clock.travel(T0.replace(month=3)):
        assert run.run().periods_closed == 0
    with clock.travel(T0.replace(month=4)):
        subscriptions.resume(STAFF, tenant.id)
    sub = db.session.get(Subscription, sub.id)
    assert (sub.status, sub.current_period_start) == ("active", T0.replace(month=4))
    assert [e.type for e in history_of(tenant.id)][-2:] == ["paused", "resumed"]
    assert (history_of(tenant.id)[-2].mrr_after, history_of(tenant.id)[-1].mrr_after) == (0, 4900)


def test_a_change_after_the_period_ended_closes_it_first(subscribe):
    tenant, _ = subscribe("pro")
    after = T0.replace(month=2) + timedelta(hours=3)  # the run has not closed the period yet
    with clock.travel(after), pytest.raises(Conflict, match="being renewed"):
        changes.preview_change(SYSTEM, tenant.id, "enterprise")
    with clock.travel(after):
        applied = changes.change_plan(SYSTEM, tenant.id, "enterprise")
    renewal = invoices_of(tenant.id)[1]
    assert (renewal.period_start, lines_of(renewal)) == (T0.replace(month=2), [("subscription", 4900)])
    assert applied.fraction == Decimal(28 * 86400 - 3 * 3600) / Decimal(28 * 86400)  # of the new period
    assert [e.type for e in history_of(tenant.id)] == ["created", "renewed", "upgraded"]
