"""Read side of the revenue page: the pre-aggregated rows, plus small bounded live lists (upcoming renewals
and past-due invoices, by index, at most 20 each). Nothing here scans every tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from app import clock
from app.billing.common import mrr
from app.billing.invoice_models import Invoice
from app.billing.metrics import add_months
from app.billing.metrics_models import RevenueMonth, RevenueTopTenant
from app.billing.models import Subscription
from app.billing.payment_models import InvoiceCollection
from app.extensions import db
from app.tenancy.queries import tenants_by_id

LIST_LIMIT = 20
TOP_SHOWN = 10
RENEWAL_DAYS = 30
CHART_MONTHS = 12


def currencies() -> list[str]:
    """The currencies with revenue rows, the main one (largest MRR in its latest month) first."""
    latest = (select(RevenueMonth.currency, func.max(RevenueMonth.month).label("month"))
              .group_by(RevenueMonth.currency).subquery())
    stmt = (select(RevenueMonth.currency)
            .join(latest, (latest.c.currency == RevenueMonth.currency) & (latest.c.month == RevenueMonth.month))
            .order_by(RevenueMonth.mrr_end.desc(), RevenueMonth.currency))
    return list(db.session.scalars(stmt))


def months(currency: str) -> list[date]:
    """The months computed for a currency, latest first."""
    return list(db.session.scalars(select(RevenueMonth.month).where(RevenueMonth.currency == currency)
                                   .order_by(RevenueMonth.month.desc())))


def month_row(currency: str, month: date) -> RevenueMonth | None:
    return db.session.get(RevenueMonth, (month, currency))


def series(currency: str, month: date, count: int = CHART_MONTHS) -> list[RevenueMonth]:
    """The rows of the `count` months up to and including `month`, oldest first."""
    stmt = (select(RevenueMonth)
            .where(RevenueMonth.currency == currency, RevenueMonth.month <= month,
                   RevenueMonth.month > add_months(month, -count))
            .order_by(RevenueMonth.month))
    return list(db.session.scalars(stmt))


@dataclass
class Listed:
    """A row of a list on the page: its tenant (filled by with_tenants), what it is, an amount and a moment."""

    tenant_id: str
    item: Any
    amount: int
    at: datetime | None
    tenant: Any = None


def with_tenants(*lists: list[Listed]) -> None:
    """Fill in the tenants of every row of the lists, in one query."""
    tenants = tenants_by_id(row.tenant_id for rows in lists for row in rows)
    for rows in lists:
        for row in rows:
            row.tenant = tenants.get(row.tenant_id)


def top_tenants(currency: str, month: date, limit: int = TOP_SHOWN) -> list[Listed]:
    rows = db.session.scalars(select(RevenueTopTenant)
                              .where(RevenueTopTenant.month == month, RevenueTopTenant.currency == currency)
                              .order_by(RevenueTopTenant.rank).limit(limit))
    return [Listed(row.tenant_id, row, row.mrr, None) for row in rows]


def upcoming_renewals(currency: str, days: int = RENEWAL_DAYS, limit: int = LIST_LIMIT) -> list[Listed]:
    """Paying subscriptions whose period ends in the next `days` days and that will renew, soonest first. One
    query per status, each walking ix_subscriptions_status_current_period_end for at most `limit` rows."""
    now = clock.now()
    subs: list[Subscription] = []
    for status in ("active", "past_due"):
        subs += db.session.scalars(
            select(Subscription)
            .where(Subscription.status == status, Subscription.current_period_end >= now,
                   Subscription.current_period_end < now + timedelta(days=days),
                   Subscription.cancel_at_period_end.is_(False), Subscription.currency == currency)
            .order_by(Subscription.current_period_end).limit(limit))
    subs = sorted(subs, key=lambda sub: (sub.current_period_end, sub.id))[:limit]
    return [Listed(sub.tenant_id, sub, mrr(sub), sub.current_period_end) for sub in subs]


def past_due_invoices(currency: str, limit: int = LIST_LIMIT) -> list[Listed]:
    """Invoices whose collection failed and is not settled (in dunning, or exhausted), the oldest debt first.
    One query per dunning status, each walking ix_invoice_collections_status_first_failed_at. Rows carry the
    invoice's number and the collection's status, attempts and first failure (not the invoices' lines)."""
    rows: list = []
    for status in ("retrying", "exhausted"):
        rows += db.session.execute(
            select(Invoice.id, Invoice.tenant_id, Invoice.number, Invoice.finalized_at,
                   (Invoice.total - Invoice.amount_paid - Invoice.amount_credited).label("due"),
                   InvoiceCollection.status, InvoiceCollection.attempts, InvoiceCollection.first_failed_at)
            .join(InvoiceCollection, InvoiceCollection.invoice_id == Invoice.id)
            .where(InvoiceCollection.status == status, Invoice.status.in_(("open", "uncollectible")),
                   Invoice.currency == currency)
            .order_by(InvoiceCollection.first_failed_at).limit(limit)).all()
    rows = sorted(rows, key=lambda row: (row.first_failed_at, row.id))[:limit]
    return [Listed(row.tenant_id, row, max(0, row.due), row.finalized_at) for row in rows]
