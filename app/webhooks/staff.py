"""What staff see of outbound webhooks on /admin/webhooks: deliveries across tenants (filtered, dead
letters included), endpoints whose circuit is open or that are disabled, the queue's depth, and the
success rate per hour as a Plotly chart. Reads only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import plotly.graph_objects as go
from sqlalchemy import func, select

from app import clock
from app.extensions import db
from app.webhooks.outbound_models import DELIVERY_STATUSES, WebhookAttempt, WebhookDelivery, WebhookEndpoint

CHART_HOURS = 48


@dataclass
class DeliveryFilters:
    tenant_id: str | None = None
    endpoint_id: str | None = None
    event_type: str | None = None
    status: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


def parse_filters(args: dict[str, str]) -> DeliveryFilters:
    """Filters from the query string; a bad value is named in `errors` (the list is then empty)."""
    from app.tenancy.queries import tenant_filter

    filters = DeliveryFilters()
    filters.tenant_id = tenant_filter(args.get("tenant", ""), filters.errors)
    if status := args.get("delivery_status", "").strip():
        if status not in DELIVERY_STATUSES:
            filters.errors["delivery_status"] = f"Status is one of {', '.join(DELIVERY_STATUSES)}."
        filters.status = status
    filters.endpoint_id = args.get("endpoint", "").strip()[:40] or None
    filters.event_type = args.get("event_type", "").strip()[:120] or None
    return filters


def deliveries(filters: DeliveryFilters, limit: int = 50,
               before: str | None = None) -> tuple[list[tuple[WebhookDelivery, WebhookEndpoint]], str | None]:
    """Deliveries newest first with their endpoint, and the cursor of the next (older) page."""
    if filters.errors:
        return [], None
    stmt = select(WebhookDelivery, WebhookEndpoint).join(WebhookEndpoint,
                                                         WebhookEndpoint.id == WebhookDelivery.endpoint_id)
    for column, value in ((WebhookDelivery.tenant_id, filters.tenant_id),
                          (WebhookDelivery.endpoint_id, filters.endpoint_id),
                          (WebhookDelivery.event_type, filters.event_type), (WebhookDelivery.status, filters.status)):
        if value:
            stmt = stmt.where(column == value)
    if before:
        stmt = stmt.where(WebhookDelivery.id < before)
    rows = list(db.session.execute(stmt.order_by(WebhookDelivery.id.desc()).limit(limit + 1)).tuples())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1][0].id if more and rows else None)


def status_counts(hours: int = 24) -> dict[str, int]:
    """Deliveries created in the last `hours`, by status (every status present, zero or not)."""
    since = clock.now() - timedelta(hours=hours)
    counted = dict(db.session.execute(select(WebhookDelivery.status, func.count()).where(
        WebhookDelivery.created_at >= since).group_by(WebhookDelivery.status)).all())
    return {status: int(counted.get(status, 0)) for status in DELIVERY_STATUSES}


def troubled_endpoints(limit: int = 50) -> list[WebhookEndpoint]:
    """Endpoints whose circuit is not closed, or that are disabled (with the reason), newest change first."""
    troubled = (WebhookEndpoint.circuit_state != "closed") | (WebhookEndpoint.status != "enabled")
    return list(db.session.scalars(
        select(WebhookEndpoint).where(troubled).order_by(WebhookEndpoint.updated_at.desc()).limit(limit)))


def queue_depth() -> dict[str, int | None]:
    """Jobs waiting on the webhooks queue (None when Redis cannot say) and deliveries due now."""
    from redis.exceptions import RedisError

    from app.queue import get_queue

    try:
        jobs: int | None = get_queue("webhooks").count
    except RedisError:
        jobs = None
    due = db.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.next_attempt_at.is_not(None), WebhookDelivery.next_attempt_at <= clock.now()))
    return {"jobs": jobs, "due": int(due or 0)}


def hourly_attempts(hours: int = CHART_HOURS, tenant_id: str | None = None) -> list[tuple[datetime, int, int]]:
    """(hour, succeeded, failed) attempts for each of the last `hours` hours, oldest first, gaps as zero;
    of one tenant's endpoints if `tenant_id` is given."""
    now = clock.now().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=hours - 1)
    buckets = {start + timedelta(hours=i): [0, 0] for i in range(hours)}
    stmt = select(WebhookAttempt.created_at, WebhookAttempt.status).where(WebhookAttempt.created_at >= start)
    if tenant_id is not None:
        stmt = stmt.where(WebhookAttempt.tenant_id == tenant_id)
    rows = db.session.execute(stmt).tuples()
    for created_at, status in rows:
        hour = created_at.replace(minute=0, second=0, microsecond=0)
        if hour.tzinfo is None:
            hour = hour.replace(tzinfo=start.tzinfo)
        if hour in buckets:
            buckets[hour][0 if status == "succeeded" else 1] += 1
    return [(hour, ok, failed) for hour, (ok, failed) in sorted(buckets.items())]


def success_rate_figure(hours: list[tuple[datetime, int, int]]) -> go.Figure:
    """Attempts per hour (succeeded and failed, stacked) and the success rate as a line."""
    x = [hour for hour, _, _ in hours]
    figure = go.Figure()
    figure.add_bar(x=x, y=[ok for _, ok, _ in hours], name="succeeded", marker_color="#69db7c")
    figure.add_bar(x=x, y=[failed for _, _, failed in hours], name="failed", marker_color="#ff8787")
    rates = [round(100 * ok / (ok + failed), 1) if ok + failed else None for _, ok, failed in hours]
    figure.add_scatter(x=x, y=rates, name="success rate %", yaxis="y2", mode="lines+markers",
                       line={"color": "#2b8a3e"}, connectgaps=False)
    figure.update_layout(barmode="stack", margin={"l": 40, "r": 40, "t": 10, "b": 30}, height=300,
                         legend={"orientation": "h"}, plot_bgcolor="#fff",
                         yaxis={"title": "attempts", "rangemode": "tozero", "gridcolor": "#e3e6ec"},
                         yaxis2={"title": "%", "overlaying": "y", "side": "right", "range": [0, 100]})
    return figure
