"""The figures of the staff overview (/admin), in two parts.

The **snapshot** holds everything that reads many rows: tenants by status and plan, API calls this month
and today, the busiest tenants, tenants near their quota, tenants whose usage jumped, webhook success and
dead letters, failing endpoints and past-due invoices. `refresh()` computes it (the scheduler runs it
every 5 minutes, and staff can ask for it) and keeps it in Redis as JSON, so the page reads
one key however many tenants and usage rows there are. Without a snapshot (first start, Redis emptied)
the page computes one and stores it.

The **live** part is cheap at any scale and read on every view: MRR, ARR and this month's movement and
overage revenue (from revenue_months, themselves pre-aggregated hourly by app.billing.metrics), the top
tenants by revenue (revenue_top_tenants), RQ queue depths and workers, and the latest audit events.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import func, select

from app import clock
from app.extensions import db

SNAPSHOT_KEY = "tenantry:console:overview"
METRIC = "api_calls"
TOP = 5
NEAR_QUOTA_PERCENT = 80
JUMP_FACTOR = 3
JUMP_DAYS = 14
log = logging.getLogger(__name__)


def _usage_rows(first: Any, last: Any) -> dict[str, dict[Any, int]]:
    """Billed API calls per tenant and day from `first` to `last` (rolled-up daily rows only)."""
    from app.usage.models import UsageDaily

    by_tenant: dict[str, dict[Any, int]] = defaultdict(dict)
    for tenant_id, day, value in db.session.execute(
            select(UsageDaily.tenant_id, UsageDaily.day, UsageDaily.value)
            .where(UsageDaily.metric == METRIC, UsageDaily.day >= first, UsageDaily.day <= last)):
        by_tenant[tenant_id][day] = int(value)
    return by_tenant


def _tenant_rows() -> dict[str, dict[str, Any]]:
    from app.tenancy.models import Tenant

    return {row.id: {"id": row.id, "name": row.name, "slug": row.slug, "status": row.status, "plan_id": row.plan_id}
            for row in db.session.execute(select(Tenant.id, Tenant.name, Tenant.slug, Tenant.status, Tenant.plan_id))}


def _usage_figures(now: datetime, tenants: dict[str, dict], plans: dict[str, Any]) -> dict[str, Any]:
    """Calls this month and today, the busiest tenants, those near quota and those whose usage jumped."""
    today = now.date()
    month_start = today.replace(day=1)
    window_start = min(month_start, today - timedelta(days=JUMP_DAYS))
    rows = _usage_rows(window_start, today)
    min_jump = current_app.config.get("CONSOLE_JUMP_MIN_CALLS", 100)
    month: dict[str, int] = {}
    jumps, near = [], []
    for tenant_id, days in rows.items():
        tenant = tenants.get(tenant_id)
        if tenant is None or tenant["status"] == "closed":
            continue
        used = sum(v for d, v in days.items() if d >= month_start)
        month[tenant_id] = used
        plan = plans.get(tenant["plan_id"])
        included = plan.included(METRIC) if plan is not None else None
        if included and used * 100 >= included * NEAR_QUOTA_PERCENT:
            near.append({**tenant, "used": used, "included": included, "percent": used * 100 // included})
        todays = days.get(today, 0)
        history = [days.get(today - timedelta(days=i), 0) for i in range(1, JUMP_DAYS + 1)]
        median = statistics.median(history)
        if todays >= min_jump and todays > JUMP_FACTOR * median:
            jumps.append({**tenant, "today": todays, "median": median,
                          "factor": round(todays / median, 1) if median else None})
    busiest = sorted(month.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    return {
        "calls_month": sum(month.values()),
        "calls_today": sum(days.get(today, 0) for tenant_id, days in rows.items() if tenant_id in month),
        "top_usage": [{**tenants[t], "used": used} for t, used in busiest if used],
        "near_quota": sorted(near, key=lambda r: (-r["percent"], r["id"]))[:20],
        "near_quota_count": len(near),
        "jumps": sorted(jumps, key=lambda r: (-(r["factor"] or float("inf")), -r["today"], r["id"]))[:20],
        "jumps_count": len(jumps),
    }


def _webhook_figures(now: datetime) -> dict[str, Any]:
    from app.webhooks.outbound_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

    since = now - timedelta(hours=24)
    attempts = dict(db.session.execute(select(WebhookAttempt.status, func.count())
                                       .where(WebhookAttempt.created_at >= since)
                                       .group_by(WebhookAttempt.status)).all())
    succeeded = int(attempts.get("succeeded", 0))
    total = sum(int(v) for v in attempts.values())
    dead = db.session.scalar(select(func.count()).select_from(WebhookDelivery)
                             .where(WebhookDelivery.status == "dead")) or 0
    troubled = (WebhookEndpoint.circuit_state != "closed") | (WebhookEndpoint.status != "enabled")
    failing = db.session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.tenant_id, WebhookEndpoint.url, WebhookEndpoint.status,
               WebhookEndpoint.circuit_state).where(troubled).order_by(WebhookEndpoint.updated_at.desc()).limit(TOP)
    ).all()
    failing_count = db.session.scalar(select(func.count()).select_from(WebhookEndpoint).where(troubled)) or 0
    return {"attempts_24h": total, "succeeded_24h": succeeded,
            "success_rate_24h": round(100 * succeeded / total, 1) if total else None,
            "dead_letters": int(dead), "failing_endpoints_count": int(failing_count),
            "failing_endpoints": [{"id": r.id, "tenant_id": r.tenant_id, "url": r.url, "status": r.status,
                                   "circuit_state": r.circuit_state} for r in failing]}


def _past_due() -> list[dict[str, Any]]:
    """Invoices whose collection failed and is unsettled, per currency: how many and how much is owed."""
    from app.billing.invoice_models import Invoice
    from app.billing.payment_models import InvoiceCollection

    rows = db.session.execute(
        select(Invoice.currency, func.count(),
               func.sum(Invoice.total - Invoice.amount_paid - Invoice.amount_credited))
        .join(InvoiceCollection, InvoiceCollection.invoice_id == Invoice.id)
        .where(InvoiceCollection.status.in_(("retrying", "exhausted")), Invoice.status.in_(("open", "uncollectible")))
        .group_by(Invoice.currency).order_by(Invoice.currency)).all()
    return [{"currency": currency, "count": int(count), "amount": int(amount or 0)} for currency, count, amount in rows]


def compute(now: datetime | None = None) -> dict[str, Any]:
    """Every snapshot figure, as JSON-ready data."""
    from app.plans.models import Plan
    from app.tenancy.models import STATUSES

    now = now or clock.now()
    tenants = _tenant_rows()
    plans = {plan.id: plan for plan in db.session.scalars(select(Plan))}
    by_status: dict[str, int] = defaultdict(int)
    by_plan: dict[str, int] = defaultdict(int)
    for tenant in tenants.values():
        by_status[tenant["status"]] += 1
        by_plan[tenant["plan_id"]] += 1
    snapshot = {
        "computed_at": now.isoformat(),
        "tenants_total": len(tenants),
        "tenants_by_status": {status: by_status.get(status, 0) for status in STATUSES},
        "tenants_by_plan": [{"plan_id": plan.id, "name": plan.name, "code": plan.code,
                             "archived": plan.archived, "count": by_plan.get(plan.id, 0)}
                            for plan in sorted(plans.values(), key=lambda p: (p.archived, p.name))],
        **_usage_figures(now, tenants, plans),
        **_webhook_figures(now),
        "past_due": _past_due(),
    }
    db.session.rollback()  # read-only: end the transaction (and its snapshot) now
    return snapshot


def refresh() -> dict[str, Any]:
    """Compute the snapshot and store it (Redis unavailable: it is still returned)."""
    from app.queue import get_redis

    snapshot = compute()
    try:
        get_redis().set(SNAPSHOT_KEY, json.dumps(snapshot))
    except RedisError as exc:
        log.warning("console overview not stored: %s", exc)
    return snapshot


def snapshot() -> dict[str, Any]:
    """The stored snapshot, or a new one when there is none (or it cannot be read)."""
    from app.queue import get_redis

    try:
        raw = get_redis().get(SNAPSHOT_KEY)
    except RedisError:
        raw = None
    if raw:
        return json.loads(raw)
    return refresh()


def _queues() -> dict[str, Any]:
    """Jobs waiting per RQ queue with the age of the oldest, failed jobs, and workers (None: Redis is down),
    as the system page reads them (app.ops.system)."""
    from app.ops import system

    try:
        queues, workers = system.queue_stats(), system.workers()
    except RedisError:
        return {"queues": None, "workers": None, "busy_workers": None}
    return {"queues": queues, "workers": len(workers),
            "busy_workers": sum(1 for worker in workers if worker["state"] == "busy")}


def _revenue(now: datetime) -> dict[str, Any]:
    from app.billing.metrics_models import RevenueMonth, RevenueTopTenant

    month = now.date().replace(day=1)
    rows = list(db.session.scalars(select(RevenueMonth).where(RevenueMonth.month == month)
                                   .order_by(RevenueMonth.mrr_end.desc(), RevenueMonth.currency)))
    top: list[Any] = []
    if rows:
        top = list(db.session.execute(
            select(RevenueTopTenant.tenant_id, RevenueTopTenant.mrr)
            .where(RevenueTopTenant.month == month, RevenueTopTenant.currency == rows[0].currency)
            .order_by(RevenueTopTenant.rank).limit(TOP)))
    return {"revenue": rows, "revenue_month": month, "top_revenue": top,
            "top_revenue_currency": rows[0].currency if rows else None}


def live() -> dict[str, Any]:
    """The figures read on every view."""
    from app.audit import queries as audit_queries

    now = clock.now()
    events = audit_queries.list_events(audit_queries.AuditFilters(), limit=10).events
    from app.auth import service as auth_service

    return {**_revenue(now), **_queues(), "events": events, "staff_count": auth_service.count_staff()}


def tenant_labels(snap: dict[str, Any], live_part: dict[str, Any]) -> dict[str, Any]:
    """The tenants named by the live part (top revenue, audit events), keyed by id."""
    from app.tenancy.queries import tenants_by_id

    ids = {row.tenant_id for row in live_part["top_revenue"]} | {e.tenant_id for e in live_part["events"]}
    ids |= {e["tenant_id"] for e in snap.get("failing_endpoints", [])}
    return tenants_by_id(ids)
