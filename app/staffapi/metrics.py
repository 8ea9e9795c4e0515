"""GET /api/v1/admin/metrics: the console overview's figures as JSON (app.console.overview).

Money is in integer minor units with its currency; rates are percentages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from marshmallow import Schema, fields

from app.console import overview
from app.tenancy.models import STATUSES

MONEY_FIELDS = ("mrr_start", "mrr_end", "arr", "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr",
                "churn_mrr", "net_new_mrr", "arpa", "overage_revenue")


class MetricsPlanCount(Schema):
    plan = fields.String(metadata={"description": "The plan's code."})
    name = fields.String()
    archived = fields.Boolean()
    count = fields.Integer()


class MetricsTenants(Schema):
    total = fields.Integer()
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer(),
                            metadata={"example": dict.fromkeys(STATUSES, 0)})
    by_plan = fields.List(fields.Nested(MetricsPlanCount))


class MetricsTenantUsage(Schema):
    tenant_id = fields.String()
    slug = fields.String()
    name = fields.String()
    used = fields.Integer()


class MetricsUsage(Schema):
    metric = fields.String(metadata={"example": "api_calls"})
    calls_month = fields.Integer()
    calls_today = fields.Integer()
    top = fields.List(fields.Nested(MetricsTenantUsage), metadata={"description": "Busiest tenants this month."})
    near_quota_count = fields.Integer(metadata={"description": "Tenants at 80% of their quota or more."})
    jumps_count = fields.Integer(metadata={"description": "Tenants whose usage today is above 3x their median."})


class MetricsWebhooks(Schema):
    attempts_24h = fields.Integer()
    succeeded_24h = fields.Integer()
    success_rate_24h = fields.Float(allow_none=True, metadata={"description": "Percent; null without attempts."})
    dead_letters = fields.Integer()
    failing_endpoints_count = fields.Integer()


class MetricsPastDue(Schema):
    currency = fields.String(metadata={"example": "USD"})
    count = fields.Integer()
    amount = fields.Integer(metadata={"description": "Minor units."})


class MetricsRevenueCurrency(Schema):
    currency = fields.String(metadata={"example": "USD"})
    customers = fields.Integer()
    mrr_start = fields.Integer(metadata={"description": "Minor units (as every amount here)."})
    mrr_end = fields.Integer(metadata={"example": 129900})
    arr = fields.Integer()
    new_mrr = fields.Integer()
    expansion_mrr = fields.Integer()
    reactivation_mrr = fields.Integer()
    contraction_mrr = fields.Integer()
    churn_mrr = fields.Integer()
    net_new_mrr = fields.Integer()
    arpa = fields.Integer()
    overage_revenue = fields.Integer()


class MetricsTopRevenue(Schema):
    tenant_id = fields.String()
    mrr = fields.Integer(metadata={"description": "Minor units of top_currency."})


class MetricsRevenue(Schema):
    month = fields.Date()
    currencies = fields.List(fields.Nested(MetricsRevenueCurrency))
    top_currency = fields.String(allow_none=True)
    top = fields.List(fields.Nested(MetricsTopRevenue))


class MetricsQueue(Schema):
    name = fields.String()
    waiting = fields.Integer()
    failed = fields.Integer()
    oldest_s = fields.Integer(allow_none=True)


class MetricsQueues(Schema):
    available = fields.Boolean(metadata={"description": "false when Redis could not be read."})
    workers = fields.Integer(allow_none=True)
    busy_workers = fields.Integer(allow_none=True)
    queues = fields.List(fields.Nested(MetricsQueue))


class MetricsSchema(Schema):
    object = fields.Constant("metrics", dump_only=True)
    computed_at = fields.DateTime(metadata={"description": "When the snapshot part was computed (every 5 minutes)."})
    tenants = fields.Nested(MetricsTenants)
    usage = fields.Nested(MetricsUsage)
    webhooks = fields.Nested(MetricsWebhooks)
    past_due = fields.List(fields.Nested(MetricsPastDue), metadata={"description": "Unpaid invoices per currency."})
    revenue = fields.Nested(MetricsRevenue)
    queues = fields.Nested(MetricsQueues)


def figures() -> dict[str, Any]:
    """The snapshot (stored, at most 5 minutes old) and the live part, shaped for MetricsSchema."""
    snap, live = overview.snapshot(), overview.live()
    month: date = live["revenue_month"]
    return {
        "computed_at": datetime.fromisoformat(snap["computed_at"]),
        "tenants": {
            "total": snap["tenants_total"],
            "by_status": snap["tenants_by_status"],
            "by_plan": [{"plan": row["code"], "name": row["name"], "archived": row["archived"], "count": row["count"]}
                        for row in snap["tenants_by_plan"]],
        },
        "usage": {
            "metric": overview.METRIC, "calls_month": snap["calls_month"], "calls_today": snap["calls_today"],
            "top": [{"tenant_id": row["id"], "slug": row["slug"], "name": row["name"], "used": row["used"]}
                    for row in snap["top_usage"]],
            "near_quota_count": snap["near_quota_count"], "jumps_count": snap["jumps_count"],
        },
        "webhooks": {name: snap[name] for name in ("attempts_24h", "succeeded_24h", "success_rate_24h",
                                                   "dead_letters", "failing_endpoints_count")},
        "past_due": snap["past_due"],
        "revenue": {
            "month": month,
            "currencies": [{"currency": row.currency, "customers": row.customers_end,
                            **{name: int(getattr(row, name) or 0) for name in MONEY_FIELDS}}
                           for row in live["revenue"]],
            "top_currency": live["top_revenue_currency"],
            "top": [{"tenant_id": row.tenant_id, "mrr": int(row.mrr)} for row in live["top_revenue"]],
        },
        "queues": {"available": live["queues"] is not None, "workers": live["workers"],
                   "busy_workers": live["busy_workers"], "queues": live["queues"] or []},
    }
