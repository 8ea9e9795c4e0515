"""Tenant page: usage this period against the plan, the daily chart, top endpoints, month-end pace."""

from __future__ import annotations

from flask import Blueprint

from app.plans.queries import get_plan
from app.security import tenant_permission
from app.tenancy.models import Tenant
from app.usage import charts, queries
from app.web import render

bp = Blueprint("usage_portal", __name__, url_prefix="/t/<slug>/usage")


@bp.route("")
@tenant_permission("usage:read")
def index(tenant: Tenant):
    """How much of the plan this period has used, and where the calls go."""
    report = queries.tenant_report(tenant.id, get_plan(tenant.plan_id))
    figure = charts.daily_against_quota(report.days, report.usage.included, report.usage.period_start.date())
    return render("portal/usage/index.html", tenant=tenant, report=report, usage=report.usage,
                  figure=figure.to_json())


@bp.app_context_processor
def _quota_banner() -> dict:
    """Every tenant page: a banner once the month's calls pass 80% of the plan's quota."""
    from flask import g

    tenant = g.get("tenant")
    if tenant is None or not tenant.plan:
        return {}
    return {"quota_banner": queries.quota_banner(tenant.id, tenant.plan)}
