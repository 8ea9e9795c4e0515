"""Billing ORM, subscription side: billing profiles, tax rates, coupons, subscriptions and their dated
history. Invoices, lines, credit notes, number sequences and run failures are in invoice_models.

Money columns are integer minor units in the row's currency; rates and fractions are Decimals.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import ID_LENGTH, PublicIdMixin, TenantScopedMixin, TimestampMixin
from app.extensions import db

INTERVALS = ("monthly", "annual")
STATUSES = ("trialing", "active", "past_due", "paused", "canceled")
LIVE_STATUSES = ("trialing", "active", "past_due")  # statuses whose periods the billing run closes
TAX_EXEMPT = ("none", "exempt", "reverse")
COUPON_DURATIONS = ("once", "repeating", "forever")
# Types of subscription history rows (revenue metrics read MRR movements from them).
EVENT_TYPES = ("created", "trial_started", "trial_ended", "upgraded", "downgraded", "downgrade_scheduled",
               "change_unscheduled", "interval_changed", "cancel_scheduled", "canceled", "reactivated", "renewed",
               "paused", "resumed", "past_due", "coupon_applied", "coupon_ended")


class BillingProfile(PublicIdMixin, TenantScopedMixin, TimestampMixin, db.Model):
    """A tenant's billing details: where it is taxed, its tax id, and whether it can pay.

    tax_exempt: none (tax by country/region), exempt (no tax), reverse (zero-rated, reverse charge).
    default_payment_method is set by the payments work (a card or wallet reference); None means the
    tenant has no way to pay, so a trial that ends goes past_due.
    """

    __tablename__ = "billing_profiles"
    __table_args__ = (UniqueConstraint("tenant_id"),)
    id_prefix = "bpr"

    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(10), default="")
    tax_id: Mapped[str] = mapped_column(String(40), default="")
    tax_exempt: Mapped[str] = mapped_column(String(10), default="none")
    default_payment_method: Mapped[str | None] = mapped_column(String(120), default=None)


class TaxRate(PublicIdMixin, TimestampMixin, db.Model):
    """A tax rate for a country, or one region of it (region "" is the whole country).

    inclusive: prices already contain the tax (the tax is shown, not added); exclusive: added on top.
    """

    __tablename__ = "tax_rates"
    __table_args__ = (UniqueConstraint("country", "region"),)
    id_prefix = "txr"

    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(10), default="")
    name: Mapped[str] = mapped_column(String(40))  # e.g. "VAT", "GST", "Sales tax"
    percentage: Mapped[Decimal] = mapped_column(Numeric(7, 4))
    inclusive: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)


class Coupon(PublicIdMixin, TimestampMixin, db.Model):
    """A discount: percent_off or amount_off (minor units of `currency`), for one invoice (once), for
    `duration_periods` invoices (repeating) or forever. The discount terms never change once created."""

    __tablename__ = "coupons"
    id_prefix = "cpn"

    code: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    name: Mapped[str] = mapped_column(String(80))
    percent_off: Mapped[Decimal | None] = mapped_column(Numeric(5, 2), default=None)
    amount_off: Mapped[int | None] = mapped_column(default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    duration: Mapped[str] = mapped_column(String(10))
    duration_periods: Mapped[int | None] = mapped_column(default=None)
    max_redemptions: Mapped[int | None] = mapped_column(default=None)
    times_redeemed: Mapped[int] = mapped_column(default=0)
    redeem_by: Mapped[datetime | None] = mapped_column(default=None)
    archived_at: Mapped[datetime | None] = mapped_column(default=None)


class Subscription(PublicIdMixin, TenantScopedMixin, TimestampMixin, db.Model):
    """A tenant's one subscription to a plan.

    Periods run from the billing anchor in whole intervals (a month from Jan 31 ends Feb 28, the next
    Mar 31). While trialing, the current period is the trial. pending_plan_id/pending_interval is a
    change scheduled for the period end (a downgrade). coupon_periods_left counts the invoices the
    coupon still discounts (None: forever).
    """

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("tenant_id"),)
    id_prefix = "sub"

    plan_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("plans.id"), index=True)
    interval: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    billing_anchor: Mapped[datetime] = mapped_column()
    current_period_start: Mapped[datetime] = mapped_column()
    current_period_end: Mapped[datetime] = mapped_column(index=True)
    trial_start: Mapped[datetime | None] = mapped_column(default=None)
    trial_end: Mapped[datetime | None] = mapped_column(default=None)
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    canceled_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    past_due_since: Mapped[datetime | None] = mapped_column(default=None)
    grace_until: Mapped[datetime | None] = mapped_column(default=None)
    pending_plan_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("plans.id"), default=None)
    pending_interval: Mapped[str | None] = mapped_column(String(10), default=None)
    coupon_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("coupons.id"), default=None)
    coupon_periods_left: Mapped[int | None] = mapped_column(default=None)

    plan = relationship("Plan", foreign_keys=[plan_id], lazy="joined")
    pending_plan = relationship("Plan", foreign_keys=[pending_plan_id], lazy="joined")
    coupon = relationship("Coupon", lazy="joined")


class SubscriptionEvent(PublicIdMixin, TenantScopedMixin, db.Model):
    """One dated change of a subscription, with its MRR (minor units, annual ÷ 12, after discounts,
    without tax or overage) before and after. Never updated: any past month can be recomputed."""

    __tablename__ = "subscription_events"
    id_prefix = "sev"

    subscription_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("subscriptions.id"), index=True)
    type: Mapped[str] = mapped_column(String(24))
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    currency: Mapped[str] = mapped_column(String(3))
    mrr_before: Mapped[int] = mapped_column()
    mrr_after: Mapped[int] = mapped_column()
    status_before: Mapped[str | None] = mapped_column(String(10), default=None)
    status_after: Mapped[str] = mapped_column(String(10))
    plan_before: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)
    plan_after: Mapped[str] = mapped_column(String(ID_LENGTH))
    interval_before: Mapped[str | None] = mapped_column(String(10), default=None)
    interval_after: Mapped[str] = mapped_column(String(10))
    actor: Mapped[str] = mapped_column(String(254), default="")
    detail: Mapped[dict] = mapped_column(default=dict)


from app.billing import (  # noqa: E402, F401  (so the metadata sees every billing table)
    invoice_models,
    metrics_models,
    payment_models,
)
