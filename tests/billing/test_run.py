"""The billing run through time: a trial, renewals, an upgrade, a downgrade and a cancellation; running
twice; catching up; one tenant's failure recorded and retried; the CLI command, jobs and schedule."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app import clock
from app.billing import changes, invoices, jobs, run, subscriptions, tax
from app.billing.invoice_models import BillingRunFailure, Invoice
from app.billing.models import Subscription
from app.billing.periods import add_months
from app.cron import JOBS
from app.extensions import db
from tests.billing.conftest import STAFF, SYSTEM, T0, history_of, invoices_of, lines_of


def _with_card(make):
    tenant = make.tenant()
    profile = tax.set_profile(SYSTEM, tenant.id, {"country": "US"})
    profile.default_payment_method = "pm_card_visa"
    db.session.commit()
    return tenant


def _sub(sub_id: str) -> Subscription:
    db.session.expire_all()
    return db.session.get(Subscription, sub_id)


def _run_at(moment):
    with clock.travel(moment):
        return run.run(moment.date())


def test_trial_renewal_upgrade_downgrade_cancel(make, frozen):
    tenant = _with_card(make)
    sub = subscriptions.create(SYSTEM, tenant.id, "pro")
    trial_end = T0 + timedelta(days=14)
    assert _run_at(trial_end - timedelta(seconds=1)).periods_closed == 0  # not yet

    report = _run_at(trial_end)
    assert (report.periods_closed, report.invoices_created) == (1, 1)
    sub = _sub(sub.id)
    assert sub.status == "active" and sub.current_period_end == add_months(trial_end, 1)
    first = invoices_of(tenant.id)[0]
    assert lines_of(first) == [("subscription", 4900)] and first.status == "draft"
    assert _run_at(trial_end + timedelta(minutes=61)).finalized == 1  # after the 1 h grace
    invoices.mark_paid(STAFF, first.id)

    second_start = sub.current_period_end
    _run_at(second_start)
    middle = second_start + (_sub(sub.id).current_period_end - second_start) / 2
    with clock.travel(middle):
        changes.change_plan(SYSTEM, tenant.id, "enterprise")
    third_start = _sub(sub.id).current_period_end
    _run_at(third_start)
    third = invoices_of(tenant.id)[-1]
    assert sorted(lines_of(third)) == [("proration", -2450), ("proration", 25000), ("subscription", 50000)]
    assert third.total == 72550

    with clock.travel(third_start + timedelta(days=3)):
        changes.change_plan(SYSTEM, tenant.id, "pro")
    assert _sub(sub.id).plan.code == "enterprise"
    fourth_start = _sub(sub.id).current_period_end
    _run_at(fourth_start)
    assert _sub(sub.id).plan.code == "pro"
    assert lines_of(invoices_of(tenant.id)[-1]) == [("subscription", 4900)]

    with clock.travel(fourth_start + timedelta(days=1)):
        subscriptions.cancel(SYSTEM, tenant.id)
    end = _sub(sub.id).current_period_end
    _run_at(end)
    sub = _sub(sub.id)
    assert (sub.status, sub.ended_at) == ("canceled", end)
    final = invoices_of(tenant.id)[-1]
    assert (final.billing_reason, final.total) == ("subscription_cancel", 0)
    assert _run_at(end + timedelta(days=40)).periods_closed == 0  # a canceled subscription is never billed

    moves = [(e.type, e.mrr_before, e.mrr_after) for e in history_of(tenant.id)]
    assert moves == [
        ("created", 0, 0), ("trial_started", 0, 0), ("trial_ended", 0, 4900), ("renewed", 4900, 4900),
        ("upgraded", 4900, 50000), ("renewed", 50000, 50000), ("downgrade_scheduled", 50000, 50000),
        ("downgraded", 50000, 4900), ("renewed", 4900, 4900), ("cancel_scheduled", 4900, 4900),
        ("canceled", 4900, 0)]
    assert [e.occurred_at for e in history_of(tenant.id)][2] == trial_end  # dated when it took effect


def test_a_trial_that_ends_with_no_way_to_pay_goes_past_due_with_a_grace(app, subscribe):
    tenant, sub = subscribe("pro", trial=True)
    end = sub.current_period_end
    _run_at(end)
    sub = _sub(sub.id)
    assert sub.status == "past_due"
    assert (sub.past_due_since, sub.grace_until) == (end, end + app.config["BILLING_PAST_DUE_GRACE"])
    assert history_of(tenant.id)[-1].status_after == "past_due"


def test_running_twice_creates_nothing_new(subscribe):
    for _ in range(3):
        subscribe("pro")
    day = T0.replace(month=2) + timedelta(hours=2)
    first = _run_at(day)
    count = db.session.scalar(select(func.count()).select_from(Invoice))
    second = _run_at(day)
    assert (first.invoices_created, first.finalized) == (3, 6)  # the periods ended 2 h ago: past the grace
    assert (second.periods_closed, second.invoices_created, second.finalized) == (0, 0, 0)
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == count == 6


def test_a_subscription_months_behind_is_caught_up_period_by_period(subscribe):
    tenant, sub = subscribe("pro")
    report = _run_at(T0.replace(month=4) + timedelta(hours=1))
    assert report.periods_closed == 3
    assert [i.period_start for i in invoices_of(tenant.id)] == [T0, T0.replace(month=2), T0.replace(month=3),
                                                               T0.replace(month=4)]
    assert _sub(sub.id).current_period_end == T0.replace(month=5)


def test_one_tenants_failure_is_recorded_and_retried_without_stopping_the_others(subscribe, monkeypatch):
    broken, broken_sub = subscribe("pro")
    healthy, _ = subscribe("pro")
    real = run.close_period

    def failing(sub, actor):
        if sub.id == broken_sub.id:
            raise RuntimeError("tax service down")
        return real(sub, actor)

    monkeypatch.setattr(run, "close_period", failing)
    day = T0.replace(month=2)
    report = _run_at(day)
    assert report.failed == [broken_sub.id]
    assert len(invoices_of(healthy.id)) == 2 and len(invoices_of(broken.id)) == 1
    _run_at(day + timedelta(hours=1))
    [failure] = run.open_failures()
    assert (failure.stage, failure.subject_id, failure.attempts) == ("renew", broken_sub.id, 2)
    assert "tax service down" in failure.error

    monkeypatch.setattr(run, "close_period", real)
    assert _run_at(day + timedelta(hours=2)).periods_closed == 1
    assert run.open_failures() == []
    assert db.session.scalar(select(BillingRunFailure.resolved_at)) is not None
    assert len(invoices_of(broken.id)) == 2


def test_the_cli_command_runs_for_a_date(app, subscribe):
    subscribe("pro")
    runner = app.test_cli_runner()
    with clock.travel(T0.replace(month=3)):
        result = runner.invoke(args=["billing", "run", "--date", "2030-02-15"])
        assert result.exit_code == 0, result.output
        assert "1 period(s) closed, 1 invoice(s) created" in result.output
        result = runner.invoke(args=["billing", "run", "--date", "2030-02-15"])
        assert "0 period(s) closed" in result.output
        assert runner.invoke(args=["billing", "run", "--date", "15/02/2030"]).exit_code == 2


def test_jobs_and_the_schedule(subscribe):
    tenant, sub = subscribe("pro")
    schedule = [(job.cron, job.interval) for job in JOBS if job.func is jobs.billing_run]
    assert schedule == [("5 0 * * *", None), (None, 900)]  # daily, and every 15 minutes
    with clock.travel(T0 + timedelta(hours=2)):
        assert jobs.finalize_due()["finalized"] == 1
    with clock.travel(T0.replace(month=2)):
        assert jobs.billing_run("2030-02-15")["periods_closed"] == 1
        assert jobs.close_subscription(sub.id)["periods_closed"] == 0
    draft = invoices_of(tenant.id)[-1]
    assert jobs.finalize_invoice(draft.id) == "open"
    assert jobs.finalize_invoice(draft.id) == "already finalized"
