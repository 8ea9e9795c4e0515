"""Revenue metrics, computed from the dated subscription history (so any past month can be recomputed) and
kept pre-aggregated in revenue_months / revenue_top_tenants for the staff page.

Definitions (ChartMogul's; one customer is one tenant, per currency, all amounts in minor units):

- MRR of a customer at a moment: the mrr_after of its latest history row before that moment (annual ÷ 12,
  after discounts, without tax or overage; trialing, paused and canceled subscriptions count 0). A month's
  MRR is taken at its end (exclusive), ARR = 12 × MRR.
- Movements, one per history row that changes a customer's MRR inside the month: new (0 → x, the first
  time the customer pays), reactivation (0 → x after having paid before), expansion (x → more), contraction
  (x → less, not 0), churn (x → 0). Contraction and churn are stored positive. Each row's change is measured
  from the customer's previous row, so MRR at start + net new MRR = MRR at end always holds.
- Customers (logos) at start/end: customers with MRR > 0 then. Churned customers: paying at the start, not
  at the end; new: paying at the end, not at the start, first paid this month; reactivated: the same but paid
  before. Customer churn rate = churned ÷ customers at start.
- ARPA = MRR at end ÷ customers at end (half-even to a minor unit).
- Gross MRR churn rate = (churn + contraction) ÷ MRR at start; net MRR churn rate = (churn + contraction −
  expansion − reactivation) ÷ MRR at start; net revenue retention = the month-end MRR of the customers who
  paid at the start ÷ MRR at start. Rates are percentages to 4 places (half-even), None when MRR (or the
  customer count) at the start is 0.
- Overage revenue: the overage lines (less any tax included in them) of the invoices finalized in the month,
  void ones excepted.
- Aging: what finalized invoices still owed at the month's end (now, for the current month), by days since
  finalized: 0–30, 31–60, 61–90, 90+. Collection rate: of the month's finalized invoices with a positive
  total (void ones excepted), the share now paid. First-attempt success: of the invoices whose first
  collection attempt (Payment rows with attempt 1) was decided in the month, the share it paid without
  a failure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, text
from sqlalchemy.exc import IntegrityError

from app import clock
from app.audit import service as audit
from app.billing.invoice_models import Invoice, InvoiceLine
from app.billing.metrics_models import RevenueMonth, RevenueTopTenant
from app.billing.models import SubscriptionEvent
from app.billing.payment_models import Payment
from app.errors import Invalid
from app.extensions import db
from app.security import Actor

TOP_TENANTS = 20
FIGURES = ("mrr_start", "mrr_end", "arr", "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr",
           "churn_mrr", "net_new_mrr", "customers_start", "customers_end", "new_customers", "reactivated_customers",
           "churned_customers", "arpa", "customer_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate",
           "net_revenue_retention", "overage_revenue", "aging_0_30", "aging_31_60", "aging_61_90", "aging_90_plus",
           "invoices_due", "invoices_paid", "collection_rate", "first_attempts", "first_attempt_successes",
           "first_attempt_rate")
REBUILD_LOCK = 0x7265766D  # "revm": PostgreSQL advisory lock that makes rebuilds take turns
AGING = (("aging_0_30", 30), ("aging_31_60", 60), ("aging_61_90", 90), ("aging_90_plus", None))


# --- months ------------------------------------------------------------------------------------------------

def first_of(moment: date | datetime) -> date:
    return date(moment.year, moment.month, 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def bounds(month: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar month, UTC."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    following = add_months(month, 1)
    return start, datetime(following.year, following.month, 1, tzinfo=UTC)


def parse_month(value: Any, field_name: str = "month") -> date:
    """YYYY-MM → the first day of that month; Invalid naming the field otherwise."""
    try:
        return datetime.strptime(str(value or "").strip(), "%Y-%m").date()
    except ValueError:
        raise Invalid("Give a month as YYYY-MM.", errors={field_name: "A month as YYYY-MM, e.g. 2026-10."}) from None


def percent(numerator: int, denominator: int) -> Decimal | None:
    """numerator ÷ denominator as a percentage, half-even to 4 places; None when the denominator is 0."""
    if not denominator:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


# --- MRR from the subscription history ------------------------------------------------------------------------

@dataclass
class MonthMRR:
    """One month in one currency, from the history: MRR, movements, customers, and each customer's MRR."""

    mrr_start: int = 0
    new_mrr: int = 0
    expansion_mrr: int = 0
    reactivation_mrr: int = 0
    contraction_mrr: int = 0
    churn_mrr: int = 0
    start: dict[str, int] = field(default_factory=dict)  # tenant → MRR > 0 at the start
    end: dict[str, int] = field(default_factory=dict)  # tenant → MRR > 0 at the end
    paid_before: set[str] = field(default_factory=set)  # tenants that had paid before the month

    @property
    def mrr_end(self) -> int:
        return sum(self.end.values())

    def figures(self) -> dict[str, Any]:
        mrr_end = self.mrr_end
        starters, enders = set(self.start), set(self.end)
        joined = enders - starters
        churned = len(starters - enders)
        cohort_end = sum(self.end.get(tenant, 0) for tenant in starters)
        net_new = self.new_mrr + self.expansion_mrr + self.reactivation_mrr - self.contraction_mrr - self.churn_mrr
        lost = self.churn_mrr + self.contraction_mrr
        return {
            "mrr_start": self.mrr_start, "mrr_end": mrr_end, "arr": 12 * mrr_end, "new_mrr": self.new_mrr,
            "expansion_mrr": self.expansion_mrr, "reactivation_mrr": self.reactivation_mrr,
            "contraction_mrr": self.contraction_mrr, "churn_mrr": self.churn_mrr, "net_new_mrr": net_new,
            "customers_start": len(starters), "customers_end": len(enders),
            "new_customers": len(joined - self.paid_before), "reactivated_customers": len(joined & self.paid_before),
            "churned_customers": churned,
            "arpa": int((Decimal(mrr_end) / len(enders)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
            if enders else 0,
            "customer_churn_rate": percent(churned, len(starters)),
            "gross_mrr_churn_rate": percent(lost, self.mrr_start),
            "net_mrr_churn_rate": percent(lost - self.expansion_mrr - self.reactivation_mrr, self.mrr_start),
            "net_revenue_retention": percent(cohort_end, self.mrr_start),
        }


def _history(until: datetime):
    """(tenant, currency, occurred_at, mrr_after) of every history row before `until`, in order."""
    stmt = (select(SubscriptionEvent.tenant_id, SubscriptionEvent.currency, SubscriptionEvent.occurred_at,
                   SubscriptionEvent.mrr_after)
            .where(SubscriptionEvent.occurred_at < until)
            .order_by(SubscriptionEvent.occurred_at, SubscriptionEvent.id))
    yield from db.session.execute(stmt.execution_options(yield_per=5000))


def mrr_months(months: list[date]) -> dict[date, dict[str, MonthMRR]]:
    """MonthMRR per month and currency for the given months (any order), in one pass over the history."""
    months = sorted(set(months))
    if not months:
        return {}
    current: dict[tuple[str, str], int] = {}  # (currency, tenant) → MRR now
    paid: set[tuple[str, str]] = set()  # customers that ever had MRR > 0
    rows = _history(bounds(months[-1])[1])
    pending = next(rows, None)
    out: dict[date, dict[str, MonthMRR]] = {}
    for month in months:
        start, end = bounds(month)
        while pending is not None and pending.occurred_at < start:  # before the month: state only
            key = (pending.currency, pending.tenant_id)
            current[key] = pending.mrr_after
            if pending.mrr_after > 0:
                paid.add(key)
            pending = next(rows, None)
        result: dict[str, MonthMRR] = defaultdict(MonthMRR)
        for (currency, tenant), value in current.items():
            figures = result[currency]  # every currency seen so far gets a row
            if value > 0:
                figures.start[tenant] = value
                figures.mrr_start += value
        for currency, tenant in paid:
            result[currency].paid_before.add(tenant)
        while pending is not None and pending.occurred_at < end:
            key = (pending.currency, pending.tenant_id)
            before, after = current.get(key, 0), pending.mrr_after
            figures = result[pending.currency]
            if before == 0 and after > 0:
                if key in paid:
                    figures.reactivation_mrr += after
                else:
                    figures.new_mrr += after
                paid.add(key)
            elif before > 0 and after == 0:
                figures.churn_mrr += before
            elif after > before:
                figures.expansion_mrr += after - before
            elif after < before:
                figures.contraction_mrr += before - after
            current[key] = after
            pending = next(rows, None)
        for (currency, tenant), value in current.items():
            if value > 0:
                result[currency].end[tenant] = value
        out[month] = dict(result)
    return out


# --- invoices and payments --------------------------------------------------------------------------------

def overage_revenue(month: date) -> dict[str, int]:
    """Overage (without tax) of the invoices finalized in the month, per currency."""
    start, end = bounds(month)
    net = InvoiceLine.amount - case((InvoiceLine.tax_inclusive, InvoiceLine.tax_amount), else_=0)
    stmt = (select(Invoice.currency, func.coalesce(func.sum(net), 0))
            .join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
            .where(InvoiceLine.kind == "overage", Invoice.finalized_at >= start, Invoice.finalized_at < end,
                   Invoice.status != "void")
            .group_by(Invoice.currency))
    return {currency: int(total) for currency, total in db.session.execute(stmt)}


def aging(as_of: datetime) -> dict[str, dict[str, int]]:
    """What finalized invoices still owed at `as_of`, per currency and bucket of days since finalized."""
    unpaid_then = or_(Invoice.status.in_(("open", "uncollectible")),
                      and_(Invoice.status == "paid", Invoice.paid_at >= as_of),
                      and_(Invoice.status == "void", Invoice.voided_at >= as_of))
    stmt = (select(Invoice.currency, Invoice.status, Invoice.total, Invoice.amount_paid, Invoice.amount_credited,
                   Invoice.finalized_at)
            .where(Invoice.finalized_at.is_not(None), Invoice.finalized_at < as_of, unpaid_then))
    out: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys((name for name, _ in AGING), 0))
    for row in db.session.execute(stmt):
        paid = row.amount_paid if row.status in ("open", "uncollectible") else 0
        owed = max(0, row.total - paid - row.amount_credited)
        if not owed:
            continue
        days = (as_of - row.finalized_at).days
        bucket = next(name for name, limit in AGING if limit is None or days <= limit)
        out[row.currency][bucket] += owed
    return dict(out)


def collection(month: date) -> dict[str, dict[str, Any]]:
    """Per currency: invoices due (finalized in the month, total > 0, not void), how many are paid, and the
    first collection attempts decided in the month and how many succeeded."""
    start, end = bounds(month)
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"invoices_due": 0, "invoices_paid": 0,
                                                          "first_attempts": 0, "first_attempt_successes": 0})
    due = (select(Invoice.currency, func.count(), func.sum(case((Invoice.status == "paid", 1), else_=0)))
           .where(Invoice.finalized_at >= start, Invoice.finalized_at < end, Invoice.status != "void",
                  Invoice.total > 0)
           .group_by(Invoice.currency))
    for currency, count, paid in db.session.execute(due):
        out[currency]["invoices_due"], out[currency]["invoices_paid"] = int(count), int(paid or 0)
    first = (select(Payment.currency, Payment.invoice_id, func.sum(case((Payment.status == "failed", 1), else_=0)))
             .where(Payment.purpose == "invoice", Payment.invoice_id.is_not(None), Payment.attempt == 1,
                    Payment.status.in_(("succeeded", "failed")), Payment.created_at >= start,
                    Payment.created_at < end)
             .group_by(Payment.currency, Payment.invoice_id))
    for currency, _invoice, failures in db.session.execute(first):
        out[currency]["first_attempts"] += 1
        out[currency]["first_attempt_successes"] += 0 if failures else 1
    for figures in out.values():
        figures["collection_rate"] = percent(figures["invoices_paid"], figures["invoices_due"])
        figures["first_attempt_rate"] = percent(figures["first_attempt_successes"], figures["first_attempts"])
    return dict(out)


# --- the pre-aggregated tables --------------------------------------------------------------------------------

def compute(months: list[date]) -> dict[date, dict[str, dict[str, Any]]]:
    """Every figure for the given months, per currency (a currency appears once it has history, invoices or
    payments by then), plus "top": its tenants by month-end MRR, highest first (TOP_TENANTS of them)."""
    now = clock.now()
    histories = mrr_months(months)
    out: dict[date, dict[str, dict[str, Any]]] = {}
    for month in sorted(set(months)):
        end = bounds(month)[1]
        as_of = min(end, now)
        overage, aged, collected = overage_revenue(month), aging(as_of), collection(month)
        rows: dict[str, dict[str, Any]] = {}
        for currency in set(histories[month]) | set(overage) | set(aged) | set(collected):
            figures = histories[month].get(currency, MonthMRR())
            row = figures.figures()
            row["overage_revenue"] = overage.get(currency, 0)
            row.update(aged.get(currency) or dict.fromkeys((name for name, _ in AGING), 0))
            row.update(collected.get(currency) or {"invoices_due": 0, "invoices_paid": 0, "collection_rate": None,
                                                   "first_attempts": 0, "first_attempt_successes": 0,
                                                   "first_attempt_rate": None})
            row["aging_as_of"] = as_of
            row["top"] = sorted(figures.end.items(), key=lambda item: (-item[1], item[0]))[:TOP_TENANTS]
            rows[currency] = row
        out[month] = rows
    return out


def _write(months: list[date], computed: dict[date, dict[str, dict[str, Any]]]) -> int:
    now = clock.now()
    db.session.execute(delete(RevenueTopTenant).where(RevenueTopTenant.month.in_(months)))
    db.session.execute(delete(RevenueMonth).where(RevenueMonth.month.in_(months)))
    written = 0
    for month, rows in computed.items():
        for currency, row in rows.items():
            values = {name: row[name] for name in FIGURES}
            db.session.add(RevenueMonth(month=month, currency=currency, aging_as_of=row["aging_as_of"],
                                        computed_at=now, **values))
            db.session.add_all(RevenueTopTenant(month=month, currency=currency, rank=rank, tenant_id=tenant, mrr=mrr)
                               for rank, (tenant, mrr) in enumerate(row["top"], start=1))
            written += 1
    return written


def rebuild_months(months: list[date], actor: Actor | None = None) -> int:
    """Recompute the given months and replace their rows (audited as revenue.recomputed when an actor asks);
    commits. Returns the number of (month, currency) rows written. Rebuilds take turns (an advisory lock on
    PostgreSQL); should two still race to insert the same row, the loser tries once more."""
    months = sorted(set(months))
    for attempt in (1, 2):
        try:
            if db.session.get_bind().dialect.name == "postgresql":  # one rebuild at a time (SQLite: one writer)
                db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REBUILD_LOCK})
            written = _write(months, compute(months))
            if actor is not None:
                audit.record(actor, "revenue.recomputed",
                             metadata={"months": [month.strftime("%Y-%m") for month in months], "rows": written})
            db.session.commit()
            return written
        except IntegrityError:
            db.session.rollback()
            if attempt == 2:
                raise
    return 0


def rebuild(month: date) -> int:
    """Recompute one month (all currencies); commits."""
    return rebuild_months([first_of(month)])


def first_month() -> date | None:
    """The month of the earliest subscription history row or finalized invoice (None: no billing data)."""
    earliest = [db.session.scalar(select(func.min(SubscriptionEvent.occurred_at))),
                db.session.scalar(select(func.min(Invoice.finalized_at)))]
    found = [moment for moment in earliest if moment is not None]
    return first_of(min(found)) if found else None


def rebuild_all(since: date | None = None) -> int:
    """Recompute every month from `since` (default: the first with billing data) to the current one."""
    first = first_of(since) if since else first_month()
    if first is None:
        return 0
    last, months = first_of(clock.now()), []
    while first <= last:
        months.append(first)
        first = add_months(first, 1)
    return rebuild_months(months)


def refresh() -> dict:
    """The periodic job: recompute the previous and the current month (late history rows and payments land
    in either)."""
    current = first_of(clock.now())
    written = rebuild_months([add_months(current, -1), current])
    return {"months": [add_months(current, -1).isoformat(), current.isoformat()], "rows": written}


def recompute(actor: Actor, month: date) -> int:
    """Recompute one month on request (staff), audited; commits."""
    return rebuild_months([first_of(month)], actor)
