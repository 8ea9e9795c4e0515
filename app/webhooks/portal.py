"""Tenant pages: webhook endpoints — list, create (the signing secret is shown once), edit, disable and
enable, rotate the secret, send a test event, and each endpoint's deliveries with every attempt, resend
and recover. webhooks:read to look, webhooks:write to change; another tenant's ids are 404."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, g, request, url_for

from app import clock
from app.errors import Invalid, ServiceError
from app.security import current_actor, recent_auth_required, tenant_permission
from app.tenancy.models import Tenant
from app.web import form_moment, int_arg, is_partial_request, redirect_to, render, toast
from app.webhooks import event_types, outbound, queries, recovery, replay
from app.webhooks.outbound_models import DELIVERY_STATUSES, WebhookEndpoint

bp = Blueprint("webhooks_portal", __name__, url_prefix="/t/<slug>/webhooks")

PER_PAGE = 20


def _errors(exc: ServiceError) -> dict[str, str]:
    """A refused use case as form errors; htmx gets a toast too for what is not a field error."""
    if is_partial_request() and not isinstance(exc, Invalid):
        toast(exc.detail, "error")
    if isinstance(exc, Invalid):
        return exc.errors or {"_": exc.detail}
    return {**exc.errors, "_": exc.detail}


def _form_data() -> dict[str, Any]:
    """The endpoint form as typed (strings), for re-rendering."""
    return {"url": request.form.get("url", "").strip(), "description": request.form.get("description", ""),
            "event_types": request.form.getlist("event_types"), "rate_limit": request.form.get("rate_limit", "")}


def _to_service(form: dict[str, Any]) -> dict[str, Any]:
    """The form as the service takes it; a rate limit that is not a whole number is a field error."""
    raw = form["rate_limit"].strip()
    rate_limit: Any = None
    if raw:
        try:
            rate_limit = int(raw)
        except ValueError:
            raise Invalid(errors={"rate_limit": "A whole number of messages per second, or empty."}) from None
    return {"url": form["url"], "description": form["description"], "event_types": form["event_types"] or None,
            "rate_limit": rate_limit}


def _form_page(tenant: Tenant, endpoint: WebhookEndpoint | None = None, status: int = 200,
               errors: dict | None = None, form: dict | None = None) -> Any:
    if form is None:
        form = {"url": "", "description": "", "event_types": [], "rate_limit": ""}
        if endpoint is not None:
            form = {"url": endpoint.url, "description": endpoint.description,
                    "event_types": list(endpoint.event_types or []),
                    "rate_limit": "" if endpoint.rate_limit is None else str(endpoint.rate_limit)}
    template = "portal/webhooks/edit.html" if endpoint else "portal/webhooks/new.html"
    return render(template, "portal/webhooks/_form.html", status=status, tenant=tenant, endpoint=endpoint,
                  errors=errors or {}, form=form, event_types=event_types.listing(tenant.id, include_deprecated=False))


def _secret_page(tenant: Tenant, endpoint: WebhookEndpoint, secret: str, status: int = 201,
                 rotated: bool = False) -> Any:
    """The one and only time the signing secret is shown (never in a URL, a flash or the audit trail)."""
    return render("portal/webhooks/created.html", "portal/webhooks/_secret.html", status=status, tenant=tenant,
                  endpoint=endpoint, secret=secret, rotated=rotated)


def parse_since(raw: str) -> datetime | None:
    """A datetime-local ("2026-03-01T12:00") or date as UTC; blank is None (the whole 14 days)."""
    return form_moment(raw, "since")


def _detail_page(tenant: Tenant, endpoint: WebhookEndpoint, status: int = 200, recover_errors: dict | None = None,
                 since: str | None = None) -> Any:
    state = request.args.get("status") or None
    if state not in DELIVERY_STATUSES:
        state = None
    page, attempts = replay.endpoint_deliveries(tenant.id, endpoint.id, int_arg("page", 1), PER_PAGE, state)
    if since is None:
        since = (clock.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    args = {"slug": tenant.slug, "endpoint_id": endpoint.id}
    if state:
        args["status"] = state
    return render("portal/webhooks/detail.html", "portal/webhooks/_deliveries.html", status=status, tenant=tenant,
                  endpoint=endpoint, page=page, attempts=attempts, args=args, state=state,
                  statuses=DELIVERY_STATUSES, can_write=g.actor.can("webhooks:write"),
                  recover_errors=recover_errors or {}, since=since,
                  recovery=recovery.latest(tenant.id, endpoint.id), dead=recovery.dead_count(tenant.id, endpoint.id))


@bp.route("")
@tenant_permission("webhooks:read")
def index(tenant: Tenant):
    """The tenant's endpoints, newest first, and its deliveries' success rate per hour (Plotly)."""
    from app.webhooks import staff

    endpoints = queries.endpoints_slice(tenant.id, 100, None).items
    hours = staff.hourly_attempts(tenant_id=tenant.id) if endpoints else []
    return render("portal/webhooks/index.html", tenant=tenant, endpoints=endpoints,
                  can_write=g.actor.can("webhooks:write"),
                  figure=staff.success_rate_figure(hours).to_json() if any(ok or bad for _, ok, bad in hours) else None,
                  hours=staff.CHART_HOURS)


@bp.route("/new")
@tenant_permission("webhooks:write")
def new(tenant: Tenant):
    """The form for a new endpoint."""
    return _form_page(tenant)


@bp.route("", methods=["POST"])
@tenant_permission("webhooks:write")
def create(tenant: Tenant):
    """Register an endpoint and show its signing secret once."""
    form = _form_data()
    try:
        endpoint, secret = outbound.create_endpoint(current_actor(), tenant.id, _to_service(form))
    except ServiceError as exc:
        return _form_page(tenant, status=exc.status, errors=_errors(exc), form=form)
    return _secret_page(tenant, endpoint, secret)


@bp.route("/<endpoint_id>")
@tenant_permission("webhooks:read")
def detail(tenant: Tenant, endpoint_id: str):
    """One endpoint: its settings, actions, and its deliveries with every attempt (paged)."""
    return _detail_page(tenant, outbound.get_endpoint(tenant.id, endpoint_id))


@bp.route("/<endpoint_id>/edit", methods=["GET", "POST"])
@tenant_permission("webhooks:write")
def edit(tenant: Tenant, endpoint_id: str):
    """Change the URL, description, event types or rate limit."""
    endpoint = outbound.get_endpoint(tenant.id, endpoint_id)
    if request.method == "GET":
        return _form_page(tenant, endpoint)
    form = _form_data()
    try:
        outbound.update_endpoint(current_actor(), tenant.id, endpoint.id, _to_service(form))
    except ServiceError as exc:
        return _form_page(tenant, endpoint, status=exc.status, errors=_errors(exc), form=form)
    toast("The endpoint was saved.")
    return redirect_to(url_for(".detail", slug=tenant.slug, endpoint_id=endpoint.id))


@bp.route("/<endpoint_id>/disable", methods=["POST"])
@tenant_permission("webhooks:write")
def disable(tenant: Tenant, endpoint_id: str):
    """Stop sending to the endpoint until it is enabled again."""
    endpoint = outbound.disable_endpoint(current_actor(), tenant.id, endpoint_id)
    toast(f"{endpoint.url} is disabled: nothing is sent to it until you enable it.")
    return redirect_to(url_for(".detail", slug=tenant.slug, endpoint_id=endpoint.id))


@bp.route("/<endpoint_id>/enable", methods=["POST"])
@tenant_permission("webhooks:write")
def enable(tenant: Tenant, endpoint_id: str):
    """Send to the endpoint again (what failed meanwhile can be recovered)."""
    endpoint = outbound.enable_endpoint(current_actor(), tenant.id, endpoint_id)
    toast(f"{endpoint.url} is enabled again.")
    return redirect_to(url_for(".detail", slug=tenant.slug, endpoint_id=endpoint.id))


@bp.route("/<endpoint_id>/rotate", methods=["POST"])
@tenant_permission("webhooks:write")
@recent_auth_required
def rotate(tenant: Tenant, endpoint_id: str):
    """A new signing secret, shown once; the old one keeps signing for 24 hours."""
    endpoint, secret = outbound.rotate_secret(current_actor(), tenant.id, endpoint_id)
    return _secret_page(tenant, endpoint, secret, status=200, rotated=True)


@bp.route("/<endpoint_id>/test", methods=["POST"])
@tenant_permission("webhooks:write")
def send_test(tenant: Tenant, endpoint_id: str):
    """Send a webhook.test event to this endpoint; its attempt shows below within seconds."""
    endpoint = outbound.get_endpoint(tenant.id, endpoint_id)
    try:
        message = replay.send_test(current_actor(), tenant.id, endpoint.id)
        toast(f"A test event ({message.id}) is on its way. Reload to see the attempt.")
    except ServiceError as exc:
        toast(exc.detail, "error")
    return redirect_to(url_for(".detail", slug=tenant.slug, endpoint_id=endpoint.id))


@bp.route("/<endpoint_id>/messages/<message_id>/resend", methods=["POST"])
@tenant_permission("webhooks:write")
def resend(tenant: Tenant, endpoint_id: str, message_id: str):
    """Send a failed or dead event to this endpoint again, now, with the same webhook-id."""
    endpoint = outbound.get_endpoint(tenant.id, endpoint_id)
    queries.get_message(tenant.id, message_id)
    try:
        replay.resend(current_actor(), tenant.id, message_id, endpoint.id)
        toast(f"{message_id} is being sent again.")
    except ServiceError as exc:
        toast(exc.detail, "error")
    return redirect_to(url_for(".detail", slug=tenant.slug, endpoint_id=endpoint.id))


@bp.route("/<endpoint_id>/recover", methods=["POST"])
@tenant_permission("webhooks:write")
def recover(tenant: Tenant, endpoint_id: str):
    """Send again everything that failed since a moment (at most 14 days back), as a background job whose
    progress shows on the endpoint's page."""
    endpoint = outbound.get_endpoint(tenant.id, endpoint_id)
    raw = request.form.get("since", "")
    try:
        found = recovery.recover(current_actor(), tenant.id, endpoint.id, parse_since(raw))
    except ServiceError as exc:
        return _detail_page(tenant, endpoint, status=exc.status, recover_errors=_errors(exc), since=raw)
    toast(f"Recovering {found.total} failed deliver{'y' if found.total == 1 else 'ies'}." if found.total
          else "Nothing failed in that time: nothing to send again.")
    return redirect_to(url_for(".detail", slug=tenant.slug, endpoint_id=endpoint.id))


@bp.route("/<endpoint_id>/recoveries/<recovery_id>")
@tenant_permission("webhooks:read")
def recovery_progress(tenant: Tenant, endpoint_id: str, recovery_id: str):
    """A recovery's progress panel (polled by the endpoint's page while it runs)."""
    found = recovery.get(tenant.id, endpoint_id, recovery_id)
    return render("portal/webhooks/_recovery.html", tenant=tenant, recovery=found, endpoint_id=endpoint_id)


@bp.route("/<endpoint_id>/purge", methods=["POST"])
@tenant_permission("webhooks:write")
def purge(tenant: Tenant, endpoint_id: str):
    """Discard the endpoint's dead letters (dead deliveries and their attempts)."""
    endpoint = outbound.get_endpoint(tenant.id, endpoint_id)
    count = recovery.purge_dead(current_actor(), tenant.id, endpoint.id)
    toast(f"{count} dead deliver{'y' if count == 1 else 'ies'} discarded." if count else "No dead deliveries.")
    return redirect_to(url_for(".detail", slug=tenant.slug, endpoint_id=endpoint.id))
