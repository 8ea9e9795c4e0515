"""Staff page /admin/webhooks: one page of sections. Outbound (tenants' endpoints): deliveries across
tenants with filters (dead letters included), troubled endpoints, queue depth, the success rate per
hour. Inbound (provider events such as Stripe's): the door's security counts for the last 7 days, the
latest events with their status, re-processing a failed one."""

from __future__ import annotations

from flask import Blueprint, current_app, request, url_for

from app.errors import Conflict, NotFound
from app.security import current_actor, staff_required
from app.web import redirect_to, render, toast
from app.webhooks import inbound, inbound_counts, staff

bp = Blueprint("webhooks_admin", __name__, url_prefix="/admin/webhooks")

COUNT_DAYS = 7
EVENTS_SHOWN = 50
# ?section=<name> with an htmx request answers that section's fragment only (its filters update in place).
PARTIALS = {"inbound": "admin/webhooks/_inbound_events.html", "outbound": "admin/webhooks/_outbound_deliveries.html"}
OUTBOUND_FILTERS = ("tenant", "endpoint", "event_type", "delivery_status")


def outbound_section() -> dict:
    """What the Outbound section shows."""
    from app.tenancy.queries import tenants_by_id

    args = {name: request.args.get(name, "").strip()[:200] for name in OUTBOUND_FILTERS}
    filters = staff.parse_filters(args)
    before = request.args.get("before", "").strip()[:40] or None
    rows, next_cursor = staff.deliveries(filters, limit=EVENTS_SHOWN, before=before)
    troubled = staff.troubled_endpoints()
    tenant_ids = {d.tenant_id for d, _ in rows} | {e.tenant_id for e in troubled}
    hours = staff.hourly_attempts()
    return {
        "filters": args, "errors": filters.errors, "rows": rows,
        "older_url": url_for(".index", section="outbound", before=next_cursor,
                             **{k: v for k, v in args.items() if v}) + "#outbound-deliveries" if next_cursor else None,
        "statuses": staff.DELIVERY_STATUSES, "counts": staff.status_counts(), "troubled": troubled,
        "queue": staff.queue_depth(), "tenants": tenants_by_id(tenant_ids),
        "has_attempts": any(ok or failed for _, ok, failed in hours),
        "figure": staff.success_rate_figure(hours).to_json(),
    }


def inbound_section() -> dict:
    """What the Inbound section shows."""
    status = request.args.get("status", "")
    status = status if status in inbound.STATUSES else ""
    days = inbound_counts.daily_counts(COUNT_DAYS)
    config = current_app.config
    return {
        "days": days,
        "totals": inbound_counts.totals(days),
        "events": inbound.recent_events(status or None, limit=EVENTS_SHOWN),
        "status": status,
        "statuses": inbound.STATUSES,
        "stripe_url": config["BASE_URL"].rstrip("/") + url_for("webhooks_inbound.stripe_events"),
        "stripe_configured": bool(config.get("STRIPE_WEBHOOK_SECRET")),
        "max_attempts": config["INBOUND_WEBHOOK_MAX_ATTEMPTS"],
    }


@bp.route("/")
@staff_required
def index():
    """Every webhook section; an htmx request naming a section (its filter) gets that fragment only."""
    section = request.args.get("section", "")
    partial = PARTIALS.get(section)
    outbound = outbound_section()
    status = 422 if section == "outbound" and outbound["errors"] else 200
    return render("admin/webhooks/index.html", partial, status=status, inbound=inbound_section(), outbound=outbound)


@bp.route("/inbound/<event_id>/reprocess", methods=["POST"])
@staff_required
def reprocess_inbound(event_id: str):
    """Run a failed inbound event's handler again (audited); the page shows the outcome once the job ran."""
    try:
        event = inbound.reprocess(current_actor(), event_id)
    except (NotFound, Conflict) as exc:
        toast(exc.detail, "error")
    else:
        toast(f"{event.type} ({event.provider_event_id}) queued to be processed again.")
    return redirect_to(url_for(".index") + "#inbound-events")
