"""Tenant pages: event types — Tenantry's catalogue and the tenant's own types (for the events it publishes
itself through `POST /api/v1/events`): list them with their example payloads; webhooks:write adds one,
deprecates or undeprecates it, and deletes it (after confirming). Another tenant's names are 404."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, g, request, url_for

from app.errors import Invalid, ServiceError
from app.security import current_actor, tenant_permission
from app.tenancy.models import Tenant
from app.web import is_partial_request, redirect_to, render, toast
from app.webhooks import event_types

bp = Blueprint("webhook_event_types_portal", __name__, url_prefix="/t/<slug>/webhooks/event-types")

EMPTY_FORM = {"name": "", "description": "", "example": ""}


def _page(tenant: Tenant, status: int = 200, errors: dict | None = None, form: dict | None = None) -> Any:
    """The page; for htmx, the form alone (after a refused submit) or the lists (any other fragment)."""
    types = event_types.listing(tenant.id)
    partial = "portal/webhooks/_event_type_form.html" if errors else "portal/webhooks/_event_types.html"
    return render("portal/webhooks/event_types.html", partial, status=status, tenant=tenant,
                  platform=[t for t in types if t.source == "platform"], own=[t for t in types if t.source == "tenant"],
                  can_write=g.actor.can("webhooks:write"), errors=errors or {}, form=form or EMPTY_FORM,
                  pretty=lambda value: json.dumps(value, indent=2, ensure_ascii=False))


def _form_data() -> dict[str, str]:
    return {"name": request.form.get("name", "").strip(), "description": request.form.get("description", ""),
            "example": request.form.get("example", "")}


def _to_service(form: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """The form as the service takes it, and why the example is not JSON (None when it is). Text that is not
    JSON goes to the service as it is, which refuses it as not an object, naming the other fields' problems
    too; the page then says what is wrong with the JSON."""
    data: dict[str, Any] = {"name": form["name"], "description": form["description"]}
    raw = form["example"].strip()
    if not raw:
        return data, None
    try:
        data["example"] = json.loads(raw)
    except ValueError as exc:
        data["example"] = raw
        return data, f"Not valid JSON: {exc}."
    return data, None


def _errors(exc: ServiceError) -> dict[str, str]:
    if is_partial_request() and not isinstance(exc, Invalid) and not exc.errors:
        toast(exc.detail, "error")
    return dict(exc.errors) or {"_": exc.detail}


@bp.route("")
@tenant_permission("webhooks:read")
def index(tenant: Tenant):
    """The catalogue's event types and the tenant's own, each with its example payload."""
    return _page(tenant)


@bp.route("", methods=["POST"])
@tenant_permission("webhooks:write")
def create(tenant: Tenant):
    """Define an event type; a refused one re-renders the form with what was typed and why."""
    form = _form_data()
    data, bad_json = _to_service(form)
    try:
        event_type = event_types.create(current_actor(), tenant.id, data)
    except ServiceError as exc:
        errors = _errors(exc)
        if bad_json and "example" in errors:
            errors["example"] = bad_json
        return _page(tenant, status=exc.status, errors=errors, form=form)
    toast(f"{event_type.name} was added: publish events of it, and endpoints can subscribe to it.")
    return redirect_to(url_for(".index", slug=tenant.slug))


@bp.route("/<name>/deprecate", methods=["POST"])
@tenant_permission("webhooks:write")
def deprecate(tenant: Tenant, name: str):
    """Keep it publishable, but stop offering it to endpoints choosing their types."""
    event_type = event_types.update(current_actor(), tenant.id, name, {"deprecated": True})
    toast(f"{event_type.name} is deprecated: still publishable, no longer offered to endpoints.")
    return redirect_to(url_for(".index", slug=tenant.slug))


@bp.route("/<name>/undeprecate", methods=["POST"])
@tenant_permission("webhooks:write")
def undeprecate(tenant: Tenant, name: str):
    """Offer it to endpoints again."""
    event_type = event_types.update(current_actor(), tenant.id, name, {"deprecated": False})
    toast(f"{event_type.name} is no longer deprecated.")
    return redirect_to(url_for(".index", slug=tenant.slug))


@bp.route("/<name>/delete", methods=["POST"])
@tenant_permission("webhooks:write")
def delete(tenant: Tenant, name: str):
    """Remove it: events of it can no longer be published (those already sent stay)."""
    event_types.delete(current_actor(), tenant.id, name)
    toast(f"{name} was deleted: events of it can no longer be published.")
    return redirect_to(url_for(".index", slug=tenant.slug))
