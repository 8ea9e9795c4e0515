"""Concurrency against a real PostgreSQL: two billing runs at once make one invoice per period, and
finalizations in parallel number invoices without gaps or repeats (a rollback gives its number back).
The UNIQUE constraint that backs the run is checked on every database."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.billing import invoices, run
from app.billing.invoice_models import Invoice
from app.billing.models import Subscription, SubscriptionEvent
from app.config import test_settings_from_env as settings_from_env
from app.errors import Conflict
from app.extensions import db
from tests.billing.conftest import SYSTEM, T0, invoices_of

POSTGRES_ONLY = pytest.mark.skipif(not settings_from_env()["database_url"],
                                   reason="row locks between connections: PostgreSQL only (SQLite lets one "
                                          "writer in at a time)")


def _in_threads(app, count: int, work) -> list:
    """Run work(index) in `count` threads at once, each with its own app context and session."""
    barrier, results, errors = threading.Barrier(count), [None] * count, []

    def target(index: int) -> None:
        with app.app_context():
            try:
                barrier.wait(10)
                results[index] = work(index)
            except Exception as exc:  # noqa: BLE001 - reported to the test below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_a_second_invoice_for_the_same_period_is_refused_by_the_database(subscribe):
    tenant, sub = subscribe("pro")
    [invoice] = invoices_of(tenant.id)
    db.session.add(Invoice(tenant_id=tenant.id, subscription_id=sub.id, billing_reason="subscription_cycle",
                           currency="USD", plan_id=sub.plan_id, interval="monthly", period_start=invoice.period_start,
                           period_end=invoice.period_end, finalize_after=T0))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


@POSTGRES_ONLY
def test_two_billing_runs_at_once_make_one_invoice_per_period(app, subscribe):
    subs = [subscribe("pro")[1].id for _ in range(12)]
    db.session.commit()
    db.session.remove()
    day = T0.replace(month=2) + timedelta(hours=2)
    with clock.travel(day):
        reports = _in_threads(app, 2, lambda _: run.run(day.date()))
    assert sum(r.periods_closed for r in reports) == 12
    assert sum(r.invoices_created for r in reports) == 12
    assert sum(r.finalized for r in reports) == 24
    assert not any(r.failed for r in reports)
    per_period = db.session.execute(select(Invoice.subscription_id, Invoice.period_start, func.count())
                                    .group_by(Invoice.subscription_id, Invoice.period_start)).all()
    assert len(per_period) == 24 and {row[2] for row in per_period} == {1}
    renewals = db.session.scalar(select(func.count()).select_from(SubscriptionEvent)
                                 .where(SubscriptionEvent.type == "renewed"))
    assert renewals == 12
    assert {db.session.get(Subscription, s).current_period_end for s in subs} == {T0.replace(month=3)}


@POSTGRES_ONLY
def test_parallel_finalization_numbers_without_gaps(app, subscribe, monkeypatch):
    ids = [invoices_of(subscribe("pro")[0].id)[0].id for _ in range(24)]
    db.session.commit()
    db.session.remove()
    real_collect, failed_once = invoices._collect, threading.Event()

    def collect_failing_once(actor, invoice):
        if invoice.id == ids[5] and not failed_once.is_set():
            failed_once.set()  # this transaction has taken a number: its rollback must give it back
            raise RuntimeError("provider timeout")
        return real_collect(actor, invoice)

    monkeypatch.setattr(invoices, "_collect", collect_failing_once)

    def finalize_all(index: int) -> int:
        done = 0
        order = ids if index % 2 == 0 else list(reversed(ids))
        for invoice_id in order:
            try:
                invoices.finalize(SYSTEM, invoice_id)
                done += 1
            except (Conflict, RuntimeError):
                db.session.rollback()
        return done

    with clock.travel(T0):
        results = _in_threads(app, 4, finalize_all)
    assert sum(results) == 24 and failed_once.is_set()
    numbers = sorted(db.session.scalars(select(Invoice.number)))
    assert numbers == [f"INV-2030-{n:06d}" for n in range(1, 25)]



@POSTGRES_ONLY
def test_a_coupon_limited_to_one_redemption_is_redeemed_once_under_concurrency(app, make, frozen):
    from app.billing import coupons, subscriptions
    from app.billing.models import Coupon

    coupon_id = coupons.create_coupon(SYSTEM, {"name": "One", "code": "ONLYONE", "percent_off": "50",
                                               "duration": "once", "max_redemptions": 1}).id
    tenants = [make.tenant().id for _ in range(4)]
    db.session.commit()
    db.session.remove()

    def redeem(index: int) -> bool:
        try:
            subscriptions.create(SYSTEM, tenants[index], "pro", trial=False, coupon="ONLYONE")
            return True
        except Exception:  # noqa: BLE001 - the refused ones
            db.session.rollback()
            return False

    results = _in_threads(app, 4, redeem)
    assert sum(results) == 1
    assert db.session.get(Coupon, coupon_id).times_redeemed == 1
