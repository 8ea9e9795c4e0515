"""The plan catalogue: prices, trial, quotas, overage, rate limits, limits and features."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicIdMixin, TimestampMixin
from app.extensions import db
from app.money import Money

METRICS = {"api_calls": "API calls"}


class Plan(PublicIdMixin, TimestampMixin, db.Model):
    """A plan. `quotas` maps metric → {"included": int | None, "overage": minor-units Decimal str | None}.

    included None is unlimited; included with overage None is a hard limit.
    """

    __tablename__ = "plans"
    id_prefix = "plan"

    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(String(500), default="")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    price_monthly: Mapped[int] = mapped_column(default=0)  # minor units
    price_annual: Mapped[int] = mapped_column(default=0)  # minor units
    trial_days: Mapped[int] = mapped_column(default=0)
    # Charged once on an invoice that is still unpaid BILLING_PAST_DUE_GRACE after its first failed
    # collection: a fixed fee (minor units) plus a percentage of what it still owes; both 0/None: none.
    late_fee: Mapped[int] = mapped_column(default=0, server_default="0")
    late_fee_percent: Mapped[Decimal | None] = mapped_column(Numeric(5, 2), default=None)
    quotas: Mapped[dict] = mapped_column(default=dict)
    rate_limit_per_second: Mapped[int | None] = mapped_column(default=None)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(default=None)
    max_concurrent_requests: Mapped[int | None] = mapped_column(default=None)  # API requests in flight at once
    max_webhook_endpoints: Mapped[int | None] = mapped_column(default=None)
    max_members: Mapped[int | None] = mapped_column(default=None)
    features: Mapped[list] = mapped_column(default=list)
    is_public: Mapped[bool] = mapped_column(default=True)
    sort_order: Mapped[int] = mapped_column(default=0)
    archived_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    @property
    def monthly(self) -> Money:
        return Money(self.price_monthly, self.currency)

    @property
    def annual(self) -> Money:
        return Money(self.price_annual, self.currency)

    def included(self, metric: str) -> int | None:
        """Included units per month; None means unlimited."""
        return (self.quotas.get(metric) or {}).get("included")

    def overage_price(self, metric: str) -> Decimal | None:
        """Price per unit over the quota in minor units; None means a hard limit."""
        raw = (self.quotas.get(metric) or {}).get("overage")
        return Decimal(raw) if raw is not None else None

    def is_hard_limit(self, metric: str) -> bool:
        return self.included(metric) is not None and self.overage_price(metric) is None

    def grace_percent(self, metric: str) -> int:
        """How far past a hard quota use may go before it is refused, in percent of the quota."""
        return int((self.quotas.get(metric) or {}).get("grace") or 0)

    def hard_cap(self, metric: str) -> int | None:
        """Where a hard quota refuses: the included units plus the grace; None when not hard."""
        if not self.is_hard_limit(metric):
            return None
        included = self.included(metric)
        return included + included * self.grace_percent(metric) // 100
