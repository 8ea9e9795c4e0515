"""Demo usage: 90 days of daily API calls per tenant (weekly rhythm, growth, noise) and a week of
hourly rows by endpoint, written in bulk so that the usage pages have something to show."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from app import clock
from app.extensions import db
from app.plans.models import Plan
from app.tenancy.models import Tenant
from app.usage.models import UsageDaily, UsageHourly

BASE_PER_DAY = {"free": 25, "pro": 2500, "enterprise": 30000}
ROUTES = (("GET /api/v1/tenant", 0.5), ("GET /api/v1/members", 0.3), ("GET /api/v1/usage/current", 0.2))


def seed_usage(rng: random.Random, days: int = 90) -> int:
    """Write usage for every tenant that has none (from the day it was created); returns the daily rows."""
    today = clock.now().date()
    seeded = set(db.session.scalars(select(UsageDaily.tenant_id).distinct()))
    daily, hourly = [], []
    for tenant_id, plan_code, included, created_at in db.session.execute(
        select(Tenant.id, Plan.code, Plan.quotas, Tenant.created_at).join(Plan, Plan.id == Tenant.plan_id)
    ):
        if tenant_id in seeded:
            continue
        base = BASE_PER_DAY.get(plan_code, 500) * rng.uniform(0.3, 1.6)
        growth = rng.uniform(-0.002, 0.01)
        cap = (included or {}).get("api_calls", {}).get("included")
        for offset in range(days - 1, -1, -1):
            day = today - timedelta(days=offset)
            if day < created_at.date():
                continue  # no usage before the tenant existed
            weekday = 0.55 if day.weekday() >= 5 else 1.0
            value = int(base * weekday * math.exp(growth * (days - offset)) * rng.uniform(0.8, 1.2))
            if plan_code == "free" and cap:
                value = min(value, cap // 25)
            if value <= 0:
                continue
            daily.append({"tenant_id": tenant_id, "day": day, "metric": "api_calls", "value": value})
            if offset < 7:
                noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
                for route, share in ROUTES:
                    calls = int(value * share)
                    errors = int(calls * rng.uniform(0, 0.04))
                    hourly.append({"tenant_id": tenant_id, "hour": noon, "api_key_id": "", "route": route,
                                   "status_class": "2xx", "count": calls})
                    if errors:
                        hourly.append({"tenant_id": tenant_id, "hour": noon, "api_key_id": "", "route": route,
                                       "status_class": "4xx", "count": errors})
    if daily:
        db.session.execute(insert(UsageDaily), daily)
    if hourly:
        db.session.execute(insert(UsageHourly), hourly)
    db.session.commit()
    return len(daily)
