"""Read side of usage: this period against the plan, daily history, top endpoints, overage so far.

The period is the calendar month in UTC until billing periods exist (the billing issue). "Used" is the
larger of the rolled-up total and the live counter in Redis, so a call made seconds ago shows up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from redis.exceptions import RedisError
from sqlalchemy import case, func, select

from app import clock
from app.extensions import db
from app.money import Money
from app.plans.models import Plan
from app.usage.meter import month_key
from app.usage.models import UsageDaily, UsageHourly

METRIC = "api_calls"


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(moment.year + (moment.month == 12), moment.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass
class PeriodUsage:
    metric: str
    period_start: datetime
    period_end: datetime
    used: int
    included: int | None  # None: unlimited
    remaining: int | None
    overage_units: int
    unit_price: Decimal | None  # minor units per unit over the quota; None: hard limit or unlimited
    overage_amount: Money
    hard_limit: bool


def _rolled_up(tenant_id: str, start: date, end: date) -> int:
    return int(db.session.scalar(
        select(func.coalesce(func.sum(UsageDaily.value), 0)).where(
            UsageDaily.tenant_id == tenant_id, UsageDaily.metric == METRIC, UsageDaily.day >= start,
            UsageDaily.day < end)
    ))


def _live(tenant_id: str, now: datetime) -> int:
    from app.queue import get_redis

    try:
        return int(get_redis().get(month_key(tenant_id, now)) or 0)
    except RedisError:
        return 0


def current(tenant_id: str, plan: Plan) -> PeriodUsage:
    """This period's API calls against the plan: used, included, remaining, overage and its cost."""
    now = clock.now()
    start, end = month_bounds(now)
    used = max(_rolled_up(tenant_id, start.date(), end.date()), _live(tenant_id, now))
    included = plan.included(METRIC)
    price = plan.overage_price(METRIC)
    over = max(0, used - included) if included is not None and price is not None else 0
    # Overage cost: units × unit price (minor units, Decimal), rounded half-even to a whole minor unit.
    minor = (Decimal(over) * price).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) if over else Decimal(0)
    amount = Money(int(minor), plan.currency)
    return PeriodUsage(METRIC, start, end, used, included,
                       max(0, included - used) if included is not None else None, over, price, amount,
                       plan.is_hard_limit(METRIC))


def history(tenant_id: str, days: int) -> list[dict]:
    """Billed API calls per day for the last `days` days (today included), zero-filled."""
    today = clock.now().date()
    first = today - timedelta(days=days - 1)
    rows = dict(db.session.execute(
        select(UsageDaily.day, UsageDaily.value).where(
            UsageDaily.tenant_id == tenant_id, UsageDaily.metric == METRIC, UsageDaily.day >= first)
    ).all())
    return [{"date": first + timedelta(days=i), METRIC: int(rows.get(first + timedelta(days=i), 0))}
            for i in range(days)]


def endpoints(tenant_id: str, days: int, limit: int = 20) -> list[dict]:
    """The busiest routes of the last `days` days with their error rates."""
    since = clock.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    total = func.sum(UsageHourly.count)
    errors = func.sum(case((UsageHourly.status_class != "2xx", UsageHourly.count), else_=0))
    rows = db.session.execute(
        select(UsageHourly.route, total, errors)
        .where(UsageHourly.tenant_id == tenant_id, UsageHourly.hour >= since)
        .group_by(UsageHourly.route).order_by(total.desc()).limit(limit)
    ).all()
    return [{"route": route, "calls": int(calls), "errors": int(errs),
             "error_rate": round(int(errs) / int(calls), 4) if calls else 0.0} for route, calls, errs in rows]


def quota_banner(tenant_id: str, plan: Plan) -> dict | None:
    """{percent, used, included} when this month's calls reached 80% of the quota, else None."""
    included = plan.included(METRIC)
    if not included:
        return None
    used = _live(tenant_id, clock.now())
    percent = 100 * used // included
    return {"percent": percent, "used": used, "included": included, "hard": plan.is_hard_limit(METRIC)} \
        if percent >= 80 else None


def platform_history(days: int) -> list[dict]:
    """Billed API calls per day across every tenant, zero-filled."""
    today = clock.now().date()
    first = today - timedelta(days=days - 1)
    rows = dict(db.session.execute(
        select(UsageDaily.day, func.sum(UsageDaily.value))
        .where(UsageDaily.metric == METRIC, UsageDaily.day >= first).group_by(UsageDaily.day)
    ).all())
    return [{"date": first + timedelta(days=i), METRIC: int(rows.get(first + timedelta(days=i), 0))}
            for i in range(days)]


def month_by_tenant() -> dict[str, int]:
    """Rolled-up billed calls this month, per tenant (pre-aggregated daily rows only)."""
    start, end = month_bounds(clock.now())
    return {tenant_id: int(total) for tenant_id, total in db.session.execute(
        select(UsageDaily.tenant_id, func.sum(UsageDaily.value))
        .where(UsageDaily.metric == METRIC, UsageDaily.day >= start.date(), UsageDaily.day < end.date())
        .group_by(UsageDaily.tenant_id)
    ).all()}


@dataclass
class TenantReport:
    """Everything a usage page shows for one tenant: the period, the month-end pace, 30 days, endpoints."""

    usage: PeriodUsage
    projected: int  # calls by the end of the period at the pace so far
    days: list[dict]
    endpoints: list[dict]

    @property
    def has_data(self) -> bool:
        return any(day[METRIC] for day in self.days)


def tenant_report(tenant_id: str, plan: Plan) -> TenantReport:
    usage = current(tenant_id, plan)
    elapsed = (clock.now() - usage.period_start) / (usage.period_end - usage.period_start)
    projected = round(usage.used / elapsed) if elapsed > 0 else usage.used
    return TenantReport(usage, projected, history(tenant_id, 30), endpoints(tenant_id, 7))


def month_leaderboard() -> list[dict]:
    """Tenants with usage this month, busiest first, with their share of the plan's quota."""
    from app.tenancy.queries import tenants_by_id

    by_tenant = month_by_tenant()
    tenants = tenants_by_id(by_tenant)
    rows = []
    for tenant_id, used in sorted(by_tenant.items(), key=lambda item: -item[1]):
        tenant = tenants.get(tenant_id)
        if tenant is not None:
            included = tenant.plan.included(METRIC)
            rows.append({"tenant": tenant, "used": used, "included": included,
                         "percent": 100 * used // included if included else None})
    return rows
