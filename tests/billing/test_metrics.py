"""Revenue metrics from the subscription history: a small business walked through four months with the real
services (subscribe, upgrade, staff downgrade, cancel now and at period end, reactivate, a trial that
converts), every figure checked against numbers computed by hand; recomputing a past month later gives the
same numbers; overage revenue, aging buckets and the collection rates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import clock
from app.audit.models import AuditEvent
from app.billing import changes, invoices, metrics, run, subscriptions, wallets
from app.billing.metrics_models import RevenueMonth, RevenueTopTenant
from app.billing.payment_models import Payment
from app.extensions import db
from app.plans import service as plans_service
from tests.billing.conftest import STAFF, SYSTEM, add_usage, invoices_of

JAN, FEB, MAR, APR = date(2030, 1, 1), date(2030, 2, 1), date(2030, 3, 1), date(2030, 4, 1)
COUNTS = ("customers_start", "customers_end", "new_customers", "reactivated_customers", "churned_customers")
RATES = ("customer_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "net_revenue_retention")


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2030, month, day, hour, tzinfo=UTC)


def row(month: date, currency: str = "USD") -> RevenueMonth:
    db.session.expire_all()
    found = db.session.get(RevenueMonth, (month, currency))
    assert found is not None, f"no row for {month} {currency}"
    return found


def figures(found: RevenueMonth) -> dict:
    return {name: getattr(found, name) for name in metrics.FIGURES}


@pytest.fixture
def business(make, frozen):
    """Four months of history (USD; MRR in cents):

    Jan 15 A subscribes Pro monthly (4900) · Jan 20 B Enterprise monthly (50000) · Jan 25 C Pro annual
    (49000 / 12 = 4083)                                    → new 58983
    Feb 3 A upgrades to Enterprise (+45100) · Feb 10 staff downgrade B to Pro now (−45100) · Feb 12 C
    cancels now (−4083)                                    → expansion 45100, contraction 45100, churn 4083
    Mar 1 E starts a 14-day Pro trial · Mar 5 C reactivates (+4083) · Mar 8 D subscribes Pro (+4900) · Mar 15
    E's trial converts (+4900, the billing run of Mar 16) · Mar 20 A cancels at the period end (no change yet)
                                                           → reactivation 4083, new 9800
    Apr 15 A's period ends: canceled (−50000, the billing run of Apr 16) → churn 50000
    D reports 150,000 API calls in March (100,000 included, 0.1 cent each beyond): 5000 of overage on the
    invoice that opens at its renewal on Apr 8.
    """
    tenants = {name: make.tenant(name=f"Tenant {name}", slug=f"biz-{name.lower()}") for name in "ABCDE"}
    ids = {name: tenant.id for name, tenant in tenants.items()}
    seen: dict[date, dict] = {}
    with clock.travel(at(1, 15)):
        subscriptions.create(SYSTEM, ids["A"], "pro", trial=False)
    with clock.travel(at(1, 20)):
        subscriptions.create(SYSTEM, ids["B"], "enterprise", trial=False)
    with clock.travel(at(1, 25)):
        subscriptions.create(SYSTEM, ids["C"], "pro", interval="annual", trial=False)
    with clock.travel(at(2, 3)):
        assert changes.change_plan(SYSTEM, ids["A"], "enterprise").kind == "upgrade"
    with clock.travel(at(2, 10)):
        assert changes.change_plan(STAFF, ids["B"], "pro", when="now").kind == "downgrade"
    with clock.travel(at(2, 12)):
        subscriptions.cancel(SYSTEM, ids["C"], at_period_end=False)
    with clock.travel(at(2, 28, 23)):  # what the hourly job saw at the end of February
        metrics.refresh()
        seen[FEB] = figures(row(FEB))
    with clock.travel(at(3, 1)):
        subscriptions.create(SYSTEM, ids["E"], "pro", trial=True)
    with clock.travel(at(3, 5)):
        subscriptions.reactivate(SYSTEM, ids["C"])
    with clock.travel(at(3, 8)):
        subscriptions.create(SYSTEM, ids["D"], "pro", trial=False)
    add_usage(ids["D"], date(2030, 3, 10), 150_000)
    with clock.travel(at(3, 16)):
        run.run(date(2030, 3, 16))
    with clock.travel(at(3, 20)):
        subscriptions.cancel(SYSTEM, ids["A"], at_period_end=True)
    with clock.travel(at(4, 16)):
        run.run(date(2030, 4, 16))
    with clock.travel(at(4, 20)):
        yield {"ids": ids, "seen": seen}


def test_each_month_has_the_movements_and_figures_computed_by_hand(business):
    assert metrics.rebuild_all() == 4  # January to April, one currency
    money = {  # MRR start, new, expansion, reactivation, contraction, churn, net new, MRR end, ARR, ARPA
        JAN: (0, 58983, 0, 0, 0, 0, 58983, 58983, 707796, 19661),  # ARPA 58983 / 3
        FEB: (58983, 0, 45100, 0, 45100, 4083, -4083, 54900, 658800, 27450),  # 54900 / 2
        MAR: (54900, 9800, 0, 4083, 0, 0, 13883, 68783, 825396, 13757),  # 68783 / 5 = 13756.6
        APR: (68783, 0, 0, 0, 0, 50000, -50000, 18783, 225396, 4696),  # 18783 / 4 = 4695.75
    }
    counts = {  # customers at start, at end, new, reactivated, churned
        JAN: (0, 3, 3, 0, 0), FEB: (3, 2, 0, 0, 1), MAR: (2, 5, 2, 1, 0), APR: (5, 4, 0, 0, 1),
    }
    rates = {  # customer churn, gross MRR churn, net MRR churn, net revenue retention (%)
        JAN: (None, None, None, None),  # nothing at the start to divide by
        FEB: (Decimal("33.3333"),  # 1 / 3
              Decimal("83.3850"),  # (4083 + 45100) / 58983
              Decimal("6.9223"),  # (4083 + 45100 − 45100 − 0) / 58983
              Decimal("93.0777")),  # (A 50000 + B 4900 + C 0) / 58983
        MAR: (Decimal("0.0000"), Decimal("0.0000"),
              Decimal("-7.4372"),  # (0 + 0 − 0 − 4083) / 54900
              Decimal("100.0000")),  # (50000 + 4900) / 54900
        APR: (Decimal("20.0000"),  # 1 / 5
              Decimal("72.6924"), Decimal("72.6924"),  # 50000 / 68783
              Decimal("27.3076")),  # 18783 / 68783
    }
    fields = ("mrr_start", "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr", "churn_mrr",
              "net_new_mrr", "mrr_end", "arr", "arpa")
    for month in (JAN, FEB, MAR, APR):
        got = row(month)
        assert tuple(getattr(got, name) for name in fields) == money[month], month
        assert tuple(getattr(got, name) for name in COUNTS) == counts[month], month
        assert tuple(getattr(got, name) for name in RATES) == rates[month], month
        assert got.mrr_start + got.net_new_mrr == got.mrr_end


def test_recomputing_a_past_month_later_gives_the_same_numbers(business):
    """February was computed on Feb 28; the renewals dated in February were written only in March (by the
    run and by the catch-up of A's cancellation). Recomputed in April, every figure is the same."""
    before = business["seen"][FEB]
    assert before["mrr_end"] == 54900
    metrics.rebuild(FEB)
    assert figures(row(FEB)) == before
    assert row(FEB).computed_at == clock.now()
    metrics.rebuild(FEB)  # and again: idempotent
    assert db.session.scalar(select(db.func.count()).select_from(RevenueMonth)) == 2  # Jan and Feb, once each


def test_top_tenants_are_ranked_by_month_end_mrr(business):
    metrics.rebuild_months([FEB, APR])
    ids = business["ids"]
    top = {month: [(r.rank, r.tenant_id, r.mrr) for r in db.session.scalars(
        select(RevenueTopTenant).where(RevenueTopTenant.month == month).order_by(RevenueTopTenant.rank))]
        for month in (FEB, APR)}
    assert top[FEB] == [(1, ids["A"], 50000), (2, ids["B"], 4900)]
    assert [(rank, mrr) for rank, _, mrr in top[APR]] == [(1, 4900), (2, 4900), (3, 4900), (4, 4083)]
    assert top[APR][3][1] == ids["C"] and ids["A"] not in {tenant for _, tenant, _ in top[APR]}


def test_overage_revenue_is_counted_separately_from_mrr(business):
    metrics.rebuild_months([MAR, APR])
    d_invoices = invoices_of(business["ids"]["D"])
    renewal = next(i for i in d_invoices if i.billing_reason == "subscription_cycle")
    assert [(line.kind, line.amount) for line in renewal.lines] == [("subscription", 4900), ("overage", 5000)]
    assert renewal.finalized_at is not None and renewal.finalized_at.month == 4
    assert (row(MAR).overage_revenue, row(APR).overage_revenue) == (0, 5000)
    assert row(APR).mrr_end == 18783  # the overage is not MRR


def test_coupons_pause_and_resume_move_mrr(make, frozen):
    """A 50% coupon is contraction; pausing is churn (paused subscriptions have no MRR) and resuming is
    reactivation; a trial that is canceled never counts."""
    from app.billing import coupons

    coupon = coupons.create_coupon(SYSTEM, {"name": "Half", "percent_off": "50", "duration": "forever"})
    paying, trialing = make.tenant(), make.tenant()
    subscriptions.create(SYSTEM, paying.id, "pro", trial=False)
    subscriptions.create(SYSTEM, trialing.id, "pro", trial=True)
    with clock.travel(at(1, 20)):
        subscriptions.apply_coupon(SYSTEM, paying.id, coupon.id)
    with clock.travel(at(1, 22)):
        subscriptions.cancel(SYSTEM, trialing.id, at_period_end=False)
    with clock.travel(at(2, 2)):
        subscriptions.pause(STAFF, paying.id)
    with clock.travel(at(2, 9)):
        subscriptions.resume(STAFF, paying.id)
        metrics.rebuild_months([JAN, FEB])
    jan, feb = row(JAN), row(FEB)
    assert (jan.new_mrr, jan.contraction_mrr, jan.mrr_end, jan.customers_end) == (4900, 2450, 2450, 1)
    assert (feb.churn_mrr, feb.reactivation_mrr, feb.mrr_end) == (2450, 2450, 2450)
    assert (feb.churned_customers, feb.customers_end, feb.net_revenue_retention) == (0, 1, Decimal("100.0000"))
    assert (feb.gross_mrr_churn_rate, feb.net_mrr_churn_rate) == (Decimal("100.0000"), Decimal("0.0000"))


def test_each_currency_has_its_own_row(make, frozen):
    plans_service.ensure_default_plans(SYSTEM)
    plans_service.create_plan(SYSTEM, {"code": "pro-eur", "name": "Pro EUR", "currency": "EUR",
                                       "price_monthly": 4500, "price_annual": 45000, "trial_days": 0,
                                       "quotas": {"api_calls": {"included": 100_000, "overage": None}}})
    db.session.commit()
    usd, eur = make.tenant(), make.tenant()
    subscriptions.create(SYSTEM, usd.id, "pro", trial=False)
    subscriptions.create(SYSTEM, eur.id, "pro-eur", trial=False)
    assert metrics.rebuild(JAN) == 2
    assert (row(JAN, "USD").mrr_end, row(JAN, "EUR").mrr_end) == (4900, 4500)


def _finalized(make, when: datetime, credit: int = 0) -> str:
    """A tenant subscribed at `when` whose first invoice (4900) is finalized then; with `credit`, its
    prepaid credit pays it; without, the collection fails and it stays open."""
    tenant = make.tenant()
    with clock.travel(when):
        if credit:
            wallets.add(STAFF, tenant.id, "granted", {"amount": credit, "currency": "USD"})
        subscriptions.create(SYSTEM, tenant.id, "pro", trial=False)
        [invoice] = invoices_of(tenant.id)
        invoices.finalize(SYSTEM, invoice.id)
    return invoice.id


def test_aging_buckets_and_collection_rates(make, frozen):
    ages = {days: _finalized(make, at(5, 1) - timedelta(days=days)) for days in (120, 75, 42, 21, 5)}
    paid_by_credit = _finalized(make, at(4, 10), credit=10_000)
    with clock.travel(at(4, 28)):
        invoices.mark_paid(STAFF, ages[42])  # finalized Mar 20, paid in April
    with clock.travel(at(5, 1, 8)):
        invoices.mark_paid(STAFF, ages[21])  # finalized Apr 10, paid after April ended
    with clock.travel(at(4, 26)):  # a declined first card attempt for the invoice finalized Apr 26
        db.session.add(Payment(tenant_id=invoices.get_invoice(None, ages[5]).tenant_id, invoice_id=ages[5],
                               provider="stripe", provider_ref="pi_declined", amount=4900, currency="USD",
                               status="failed", attempt=1, created_at=clock.now(), updated_at=clock.now()))
        db.session.commit()
    with clock.travel(at(5, 1, 10)):
        metrics.rebuild_months([APR, date(2030, 5, 1)])
    april, may = row(APR), row(date(2030, 5, 1))
    # April, as of May 1 00:00: 120 days before May 1 10:00 is 119 then (90+), 75 → 74, 21 → 20 (paid later), 5 → 4
    assert april.aging_as_of == at(5, 1, 0)
    assert (april.aging_0_30, april.aging_31_60, april.aging_61_90, april.aging_90_plus) == (9800, 0, 4900, 4900)
    # May, as of now (May 1 10:00): the invoice paid this morning is no longer owed
    assert may.aging_as_of == at(5, 1, 10)
    assert (may.aging_0_30, may.aging_31_60, may.aging_61_90, may.aging_90_plus) == (4900, 0, 4900, 4900)
    # April's finalized invoices: Apr 10 (paid May 1), Apr 10 (paid by credit), Apr 26 (open) → 2 of 3 paid
    assert (april.invoices_due, april.invoices_paid, april.collection_rate) == (3, 2, Decimal("66.6667"))
    # first attempts decided in April: the credit paid one, the card declined the other
    assert (april.first_attempts, april.first_attempt_successes, april.first_attempt_rate) == (2, 1, Decimal("50.0000"))
    assert invoices.get_invoice(None, paid_by_credit).status == "paid"
    assert (may.invoices_due, may.collection_rate, may.first_attempt_rate) == (0, None, None)


def test_nothing_to_compute_without_billing_data(make, frozen):
    make.tenant()
    assert metrics.first_month() is None
    assert metrics.rebuild_all() == 0
    assert metrics.rebuild(JAN) == 0
    assert db.session.scalar(select(db.func.count()).select_from(RevenueMonth)) == 0


def test_recompute_is_audited(make, frozen):
    subscriptions.create(SYSTEM, make.tenant().id, "pro", trial=False)
    assert metrics.recompute(STAFF, date(2030, 1, 9)) == 1
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "revenue.recomputed"))
    assert event is not None and event.meta == {"months": ["2030-01"], "rows": 1}


def test_the_hourly_job_recomputes_the_current_and_previous_month(make, frozen):
    subscriptions.create(SYSTEM, make.tenant().id, "pro", trial=False)
    with clock.travel(at(2, 3)):
        assert metrics.refresh() == {"months": ["2030-01-01", "2030-02-01"], "rows": 2}
    assert (row(JAN).new_mrr, row(FEB).mrr_start, row(FEB).mrr_end) == (4900, 4900, 4900)


def test_the_cli_rebuilds_from_a_month(app, make, frozen):
    subscriptions.create(SYSTEM, make.tenant().id, "pro", trial=False)
    with clock.travel(at(3, 2)):
        result = app.test_cli_runner().invoke(args=["billing", "metrics", "--from", "2030-02"])
        assert result.exit_code == 0, result.output
        assert "2 month/currency row(s)" in result.output
        bad = app.test_cli_runner().invoke(args=["billing", "metrics", "--from", "March"])
        assert bad.exit_code != 0 and "YYYY-MM" in bad.output
    assert db.session.get(RevenueMonth, (JAN, "USD")) is None and row(MAR).mrr_end == 4900


def test_percent_and_months():
    assert metrics.percent(1, 3) == Decimal("33.3333") and metrics.percent(5, 0) is None
    assert metrics.add_months(date(2030, 12, 1), 1) == date(2031, 1, 1)
    assert metrics.add_months(date(2030, 1, 1), -13) == date(2028, 12, 1)
    assert metrics.bounds(date(2030, 2, 1)) == (at(2, 1, 0), at(3, 1, 0))


@pytest.mark.skipif(not __import__("app.config", fromlist=["x"]).test_settings_from_env()["database_url"],
                    reason="row locks between connections: PostgreSQL only (SQLite lets one writer in at a time)")
def test_rebuilds_at_the_same_moment_both_succeed_with_one_row(app, business):
    from tests.billing.test_concurrency import _in_threads

    metrics.rebuild(FEB)
    months = business["seen"]
    with clock.travel(at(4, 20)):
        results = _in_threads(app, 4, lambda _: metrics.rebuild(FEB))
    assert results == [1, 1, 1, 1]
    db.session.expire_all()
    assert db.session.scalar(select(db.func.count()).select_from(RevenueMonth)
                             .where(RevenueMonth.month == FEB)) == 1
    assert figures(row(FEB)) == months[FEB]
