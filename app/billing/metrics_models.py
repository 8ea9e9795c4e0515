"""Billing ORM, revenue side: the pre-aggregated revenue metrics the staff page reads (one row per month and
currency, and each month's top tenants by MRR). Filled by app.billing.metrics.rebuild(); never edited by hand.

It also declares the two indexes the page's live lists walk, so that they read at most 20 rows each whatever
the number of tenants: subscriptions by (status, current_period_end) for the upcoming renewals, and
invoice_collections by (status, first_failed_at) for the past-due invoices.

Money columns are integer minor units of `currency`; rates are percentages (Decimal, 4 places) and are NULL
where undefined (nothing to divide by).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.billing.models import Subscription
from app.billing.payment_models import InvoiceCollection
from app.db import ID_LENGTH
from app.extensions import db

RATE = Numeric(12, 4)


class RevenueMonth(db.Model):
    """One calendar month (UTC) in one currency, computed from the subscription history, the invoices and
    the payments. mrr_* and movements are as ChartMogul defines them; contraction and churn are positive
    amounts that reduce MRR. Aging is measured at aging_as_of (the month's end, or the computation time for
    the current month)."""

    __tablename__ = "revenue_months"

    month: Mapped[date] = mapped_column(Date, primary_key=True)  # the first day of the month
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    mrr_start: Mapped[int] = mapped_column(BigInteger, default=0)
    mrr_end: Mapped[int] = mapped_column(BigInteger, default=0)
    arr: Mapped[int] = mapped_column(BigInteger, default=0)
    new_mrr: Mapped[int] = mapped_column(BigInteger, default=0)
    expansion_mrr: Mapped[int] = mapped_column(BigInteger, default=0)
    reactivation_mrr: Mapped[int] = mapped_column(BigInteger, default=0)
    contraction_mrr: Mapped[int] = mapped_column(BigInteger, default=0)
    churn_mrr: Mapped[int] = mapped_column(BigInteger, default=0)
    net_new_mrr: Mapped[int] = mapped_column(BigInteger, default=0)
    customers_start: Mapped[int] = mapped_column(default=0)
    customers_end: Mapped[int] = mapped_column(default=0)
    new_customers: Mapped[int] = mapped_column(default=0)
    reactivated_customers: Mapped[int] = mapped_column(default=0)
    churned_customers: Mapped[int] = mapped_column(default=0)
    arpa: Mapped[int] = mapped_column(BigInteger, default=0)
    customer_churn_rate: Mapped[Decimal | None] = mapped_column(RATE, default=None)
    gross_mrr_churn_rate: Mapped[Decimal | None] = mapped_column(RATE, default=None)
    net_mrr_churn_rate: Mapped[Decimal | None] = mapped_column(RATE, default=None)
    net_revenue_retention: Mapped[Decimal | None] = mapped_column(RATE, default=None)
    overage_revenue: Mapped[int] = mapped_column(BigInteger, default=0)
    aging_0_30: Mapped[int] = mapped_column(BigInteger, default=0)
    aging_31_60: Mapped[int] = mapped_column(BigInteger, default=0)
    aging_61_90: Mapped[int] = mapped_column(BigInteger, default=0)
    aging_90_plus: Mapped[int] = mapped_column(BigInteger, default=0)
    aging_as_of: Mapped[datetime] = mapped_column()
    invoices_due: Mapped[int] = mapped_column(default=0)
    invoices_paid: Mapped[int] = mapped_column(default=0)
    collection_rate: Mapped[Decimal | None] = mapped_column(RATE, default=None)
    first_attempts: Mapped[int] = mapped_column(default=0)
    first_attempt_successes: Mapped[int] = mapped_column(default=0)
    first_attempt_rate: Mapped[Decimal | None] = mapped_column(RATE, default=None)
    computed_at: Mapped[datetime] = mapped_column()

    @property
    def aging_total(self) -> int:
        return self.aging_0_30 + self.aging_31_60 + self.aging_61_90 + self.aging_90_plus


class RevenueTopTenant(db.Model):
    """The tenants with the highest MRR at a month's end, ranked from 1 (kept to metrics.TOP_TENANTS)."""

    __tablename__ = "revenue_top_tenants"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    rank: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("tenants.id"), index=True)
    mrr: Mapped[int] = mapped_column(BigInteger)


Index("ix_subscriptions_status_current_period_end", Subscription.status, Subscription.current_period_end)
Index("ix_invoice_collections_status_first_failed_at", InvoiceCollection.status, InvoiceCollection.first_failed_at)
