"""Staff pages: API calls across tenants, top tenants, tenants near or over quota, one tenant's usage."""

from __future__ import annotations

from flask import Blueprint

from app import clock
from app.plans.queries import get_plan
from app.security import staff_required
from app.tenancy import queries as tenancy_queries
from app.usage import charts, queries
from app.web import render

bp = Blueprint("usage_admin", __name__, url_prefix="/admin/usage")


@bp.route("/")
@staff_required
def index():
    """Usage across every tenant this month."""
    rows = queries.month_leaderboard()
    days = queries.platform_history(30)
    start, _ = queries.month_bounds(clock.now())
    figure = charts.daily_against_quota(days, None, start.date())
    return render("admin/usage/index.html", top=rows[:10], near=[r for r in rows if (r["percent"] or 0) >= 80],
                  month_total=sum(row["used"] for row in rows), today=days[-1][queries.METRIC], figure=figure.to_json(),
                  has_data=any(d[queries.METRIC] for d in days), month=start)


@bp.route("/<tenant_id>")
@staff_required
def tenant(tenant_id: str):
    """One tenant's usage, as the tenant sees it."""
    found = tenancy_queries.get_tenant(tenant_id)
    report = queries.tenant_report(found.id, get_plan(found.plan_id))
    figure = charts.daily_against_quota(report.days, report.usage.included, report.usage.period_start.date())
    return render("admin/usage/tenant.html", tenant=found, report=report, usage=report.usage,
                  figure=figure.to_json())
