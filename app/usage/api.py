"""API routes: usage this period, daily history, top endpoints, overage so far."""

from __future__ import annotations

from flask import g, request
from flask_smorest import Blueprint

from app import clock
from app.api.idempotency import idempotent
from app.api.schemas import ProblemSchema
from app.plans.queries import get_plan
from app.ratelimit.shedding import priority
from app.security import api_scope
from app.tenancy.queries import get_tenant
from app.usage import events, queries
from app.usage.schemas import (
    CurrentUsageSchema,
    DaysArgs,
    EndpointDaysArgs,
    EndpointsSchema,
    HistorySchema,
    OverageSchema,
    UsageEventBatchSchema,
    UsageEventsAcceptedSchema,
)

blp = Blueprint("usage_api", __name__, url_prefix="/api/v1/usage", description="Usage against your plan.")


def _current():
    tenant = get_tenant(g.actor.tenant_id)
    return queries.current(tenant.id, get_plan(tenant.plan_id))


@blp.route("/current", methods=["GET"])
@api_scope("usage:read")
@blp.response(200, CurrentUsageSchema)
def current():
    """API calls this period (calendar month, UTC) against the plan's quota, and every metric reported
    with usage events in `metrics`."""
    tenant = get_tenant(g.actor.tenant_id)
    plan = get_plan(tenant.plan_id)
    return vars(queries.current(tenant.id, plan)) | {"metrics": queries.metric_usage(tenant.id, plan)}


@blp.route("/events", methods=["POST"])
@priority("critical")
@api_scope("usage:write")
@idempotent
@blp.alt_response(503, description="Usage events could not be recorded just now; retry the batch (ids count once).",
                  schema=ProblemSchema, content_type="application/problem+json")
@blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": UsageEventBatchSchema}}})
@blp.response(202, UsageEventsAcceptedSchema)
def report_events():
    """Report usage events, 1–1000 per batch, counted against the metrics the operator defined.

    All or nothing: if any event is invalid (unknown or archived metric, a missing or non-numeric
    property, a timestamp over 35 days old or over 5 minutes ahead), nothing is recorded and the 422 names
    each bad event by index (`events[3].metric`). Event ids make retries safe: an id seen before is
    not counted again and is reported in `duplicates`. Quotas on these metrics are reported, not
    enforced: events over a quota are accepted.
    """
    # Validated by hand, not by the schema above (which documents it): marshmallow takes ~13 ms for
    # 500 nested events, the whole ingestion under 2 ms.
    accepted, duplicates = events.ingest(g.actor.tenant_id, request.get_json(silent=True), clock.now())
    return {"accepted": accepted, "duplicates": duplicates}


@blp.route("/overage", methods=["GET"])
@priority("low")
@api_scope("usage:read")
@blp.response(200, OverageSchema)
def overage():
    """Calls over the quota so far this period and what they cost at the plan's unit price."""
    return _current()


@blp.route("/history", methods=["GET"])
@priority("low")
@api_scope("usage:read")
@blp.arguments(DaysArgs, location="query", as_kwargs=True)
@blp.response(200, HistorySchema)
def history(days: int):
    """Billed API calls per day, oldest first, zero-filled."""
    return {"metric": queries.METRIC, "days": queries.history(g.actor.tenant_id, days)}


@blp.route("/endpoints", methods=["GET"])
@priority("low")
@api_scope("usage:read")
@blp.arguments(EndpointDaysArgs, location="query", as_kwargs=True)
@blp.response(200, EndpointsSchema)
def endpoints(days: int):
    """The busiest routes with their error rates."""
    return {"days": days, "data": queries.endpoints(g.actor.tenant_id, days)}
