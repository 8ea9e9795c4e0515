"""Read side of usage: this period against the plan, daily history, top endpoints, overage so far.

The period is the calendar month in UTC until billing periods exist (the billing issue). For API calls
"used" is the larger of the rolled-up total and the live counter in Redis, so a call made seconds ago
shows up; metrics fed by usage events show what the rollup (every minute) has applied.
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
from app.usage.catalog import list_metrics
from app.usage.meter import month_key
from app.usage.models import UsageDaily, UsageHourly, UsageMetric, UsageUniqueValue

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
    used: int | Decimal  # a Decimal for metrics with decimal places
    included: int | None  # None: unlimited
    remaining: int | Decimal | None
    overage_units: int | Decimal
    unit_price: Decimal | None  # minor units per unit over the quota; None: hard limit or unlimited
    overage_amount: Money
    hard_limit: bool
    name: str = "API calls"
    unit: str = "calls"
    aggregation: str = "count"


def _against_plan(metric: str, used: int | Decimal, plan: Plan, start: datetime, end: datetime,
                  **labels: str) -> PeriodUsage:
    """A period's use of a metric against the plan: remaining, overage and its cost."""
    included = plan.included(metric)
    price = plan.overage_price(metric)
    over = max(0, used - included) if included is not None and price is not None else 0
    # Overage cost: units × unit price (minor units, Decimal), rounded half-even to a whole minor unit.
    minor = (Decimal(over) * price).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) if over else Decimal(0)
    return PeriodUsage(metric, start, end, used, included,
                       max(0, included - used) if included is not None else None, over, price,
                       Money(int(minor), plan.currency), plan.is_hard_limit(metric), **labels)


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
    return _against_plan(METRIC, used, plan, start, end)


def _scaled(value: int, decimals: int) -> int | Decimal:
    """A stored value (integer of 10^-decimals) in the metric's unit."""
    return Decimal(value).scaleb(-decimals) if decimals else int(value)


def _period_value(tenant_id: str, metric: UsageMetric, start: date, end: date) -> int:
    """A metric over [start, end): counts and sums add up, max is the largest, latest the newest
    value, unique_count the distinct values of the whole period (not a sum of days)."""
    if metric.aggregation == "unique_count":
        return int(db.session.scalar(select(func.count(func.distinct(UsageUniqueValue.value))).where(
            UsageUniqueValue.tenant_id == tenant_id, UsageUniqueValue.metric == metric.code,
            UsageUniqueValue.day >= start, UsageUniqueValue.day < end)))
    rows = select(UsageDaily.value).where(UsageDaily.tenant_id == tenant_id, UsageDaily.metric == metric.code,
                                          UsageDaily.day >= start, UsageDaily.day < end)
    if metric.aggregation == "latest":
        return int(db.session.scalar(rows.order_by(UsageDaily.observed_at.desc(), UsageDaily.value.desc())
                                     .limit(1)) or 0)
    total = func.max if metric.aggregation == "max" else func.sum
    return int(db.session.scalar(select(func.coalesce(total(rows.subquery().c.value), 0))))


def metric_usage(tenant_id: str, plan: Plan) -> list[PeriodUsage]:
    """This period's use of every metric fed by usage events (active ones, and archived ones that
    were used this period) against the plan. Quotas here are reported, never enforced."""
    start, end = month_bounds(clock.now())
    out = []
    for metric in list_metrics():
        value = _period_value(tenant_id, metric, start.date(), end.date())
        if not metric.archived or value:
            out.append(_against_plan(metric.code, _scaled(value, metric.decimals), plan, start, end,
                                     name=metric.name, unit=metric.unit, aggregation=metric.aggregation))
    return out


def history(tenant_id: str, days: int, metric: UsageMetric | None = None) -> list[dict]:
    """A metric per day (default: billed API calls) for the last `days` days (today included),
    zero-filled, keyed by the metric's code."""
    code, decimals = (metric.code, metric.decimals) if metric else (METRIC, 0)
    today = clock.now().date()
    first = today - timedelta(days=days - 1)
    rows = dict(db.session.execute(
        select(UsageDaily.day, UsageDaily.value).where(
            UsageDaily.tenant_id == tenant_id, UsageDaily.metric == code, UsageDaily.day >= first)
    ).all())
    return [{"date": first + timedelta(days=i), code: _scaled(rows.get(first + timedelta(days=i), 0), decimals)}
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
    metrics: list[PeriodUsage]  # metrics fed by usage events

    @property
    def has_data(self) -> bool:
        return any(day[METRIC] for day in self.days)


def tenant_report(tenant_id: str, plan: Plan) -> TenantReport:
    usage = current(tenant_id, plan)
    elapsed = (clock.now() - usage.period_start) / (usage.period_end - usage.period_start)
    projected = round(usage.used / elapsed) if elapsed > 0 else usage.used
    return TenantReport(usage, projected, history(tenant_id, 30), endpoints(tenant_id, 7),
                        metric_usage(tenant_id, plan))


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
