"""API routes: usage this period, daily history, top endpoints, overage so far."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint

from app.plans.queries import get_plan
from app.security import api_scope
from app.tenancy.queries import get_tenant
from app.usage import queries
from app.usage.schemas import (
    CurrentUsageSchema,
    DaysArgs,
    EndpointDaysArgs,
    EndpointsSchema,
    HistorySchema,
    OverageSchema,
)

blp = Blueprint("usage_api", __name__, url_prefix="/api/v1/usage", description="Usage against your plan.")


def _current():
    tenant = get_tenant(g.actor.tenant_id)
    return queries.current(tenant.id, get_plan(tenant.plan_id))


@blp.route("/current", methods=["GET"])
@api_scope("usage:read")
@blp.response(200, CurrentUsageSchema)
def current():
    """API calls this period (calendar month, UTC) against the plan's quota."""
    return _current()


@blp.route("/overage", methods=["GET"])
@api_scope("usage:read")
@blp.response(200, OverageSchema)
def overage():
    """Calls over the quota so far this period and what they cost at the plan's unit price."""
    return _current()


@blp.route("/history", methods=["GET"])
@api_scope("usage:read")
@blp.arguments(DaysArgs, location="query", as_kwargs=True)
@blp.response(200, HistorySchema)
def history(days: int):
    """Billed API calls per day, oldest first, zero-filled."""
    return {"metric": queries.METRIC, "days": queries.history(g.actor.tenant_id, days)}


@blp.route("/endpoints", methods=["GET"])
@api_scope("usage:read")
@blp.arguments(EndpointDaysArgs, location="query", as_kwargs=True)
@blp.response(200, EndpointsSchema)
def endpoints(days: int):
    """The busiest routes with their error rates."""
    return {"days": days, "data": queries.endpoints(g.actor.tenant_id, days)}
