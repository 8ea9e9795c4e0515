"""Tenant pages: API keys — list, create (the key is shown once), revoke, roll with a grace period."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, g, request, url_for

from app import clock
from app.auth import apikeys
from app.auth.models import ApiKey
from app.errors import Invalid, ServiceError
from app.security import PERMISSIONS, current_actor, recent_auth_required, tenant_permission
from app.tenancy.models import Tenant
from app.web import form_moment, is_partial_request, redirect_to, render, toast

bp = Blueprint("auth_portal", __name__, url_prefix="/t/<slug>/api-keys")

# How long the old key keeps working after a roll: (label, grace).
ROLL_GRACE: dict[str, tuple[str, timedelta]] = {
    "now": ("Stop it now", timedelta(0)),
    "1h": ("1 hour", timedelta(hours=1)),
    "24h": ("24 hours", timedelta(hours=24)),
    "7d": ("7 days", timedelta(days=7)),
}


def _scope_choices() -> list[tuple[str, str]]:
    """The permissions a key may get: those of your own role, with what they allow."""
    return [(name, text) for name, text in PERMISSIONS.items() if g.actor.can(name)]


def _errors(exc: ServiceError) -> dict[str, str]:
    """A refused use case as form errors; htmx gets a toast too, since it does not swap a 4xx."""
    if is_partial_request() and not isinstance(exc, Invalid):
        toast(exc.detail, "error")
    if isinstance(exc, Invalid):
        return exc.errors or {"_": exc.detail}
    return {**exc.errors, "_": exc.detail}


def parse_expiry(raw: str) -> datetime | None:
    """A datetime-local ("2027-01-31T12:00") or date ("2027-01-31") as UTC; blank is no expiry."""
    return form_moment(raw, "expires_at", "2027-01-31")


def _form_page(tenant: Tenant, status: int = 200, errors: dict | None = None, form: dict | None = None) -> Any:
    form = form or {"name": "", "scopes": [], "expires_at": ""}
    return render("portal/auth/new.html", "portal/auth/_form.html", status=status, tenant=tenant,
                  scope_choices=_scope_choices(), errors=errors or {}, form=form)


def _secret_page(tenant: Tenant, key: ApiKey, plaintext: str, status: int = 201, **extra: Any) -> Any:
    """The one and only time the plaintext key is shown (never in a URL, a flash or the database)."""
    return render("portal/auth/created.html", "portal/auth/_secret.html", status=status, tenant=tenant, key=key,
                  plaintext=plaintext, **extra)


@bp.route("")
@tenant_permission("keys:read")
def keys(tenant: Tenant):
    """The tenant's API keys, newest first."""
    return render("portal/auth/keys.html", tenant=tenant, keys=apikeys.list_keys(tenant.id), now=clock.now(),
                  can_write=g.actor.can("keys:write"))


@bp.route("/new")
@tenant_permission("keys:write")
@recent_auth_required
def new(tenant: Tenant):
    """The form for a new key."""
    return _form_page(tenant)


@bp.route("", methods=["POST"])
@tenant_permission("keys:write")
@recent_auth_required
def create(tenant: Tenant):
    """Create a key and show it once."""
    form = {"name": request.form.get("name", ""), "scopes": request.form.getlist("scopes"),
            "expires_at": request.form.get("expires_at", "")}
    try:
        key, plaintext = apikeys.create_key(current_actor(), tenant.id, form["name"], form["scopes"],
                                            parse_expiry(form["expires_at"]))
    except ServiceError as exc:
        return _form_page(tenant, status=exc.status, errors=_errors(exc), form=form)
    return _secret_page(tenant, key, plaintext)


@bp.route("/<key_id>/revoke", methods=["POST"])
@tenant_permission("keys:write")
def revoke(tenant: Tenant, key_id: str):
    """Revoke a key now: the next request with it gets 401."""
    key = apikeys.revoke_key(current_actor(), tenant.id, key_id)
    toast(f"The key “{key.name}” ({key.masked}) was revoked.")
    return redirect_to(url_for(".keys", slug=tenant.slug))


@bp.route("/<key_id>/roll", methods=["GET", "POST"])
@tenant_permission("keys:write")
@recent_auth_required
def roll(tenant: Tenant, key_id: str):
    """Replace a key with a new one (same name and scopes); the old one works for the chosen grace period."""
    key = apikeys.get_key(tenant.id, key_id)
    context = {"tenant": tenant, "key": key, "choices": ROLL_GRACE, "now": clock.now()}
    if request.method == "GET":
        return render("portal/auth/roll.html", "portal/auth/_roll_form.html", grace="24h", errors={}, **context)
    grace = request.form.get("grace", "")
    try:
        if grace not in ROLL_GRACE:
            raise Invalid(errors={"grace": "Choose how long the old key keeps working."})
        delta = ROLL_GRACE[grace][1]
        until = clock.now() + delta if delta else None  # None: the service's own "now"
        new_key, plaintext = apikeys.roll_key(current_actor(), tenant.id, key.id, until)
    except ServiceError as exc:
        errors = _errors(exc)
        if "expires_at" in errors:
            errors["grace"] = errors.pop("expires_at")
        return render("portal/auth/roll.html", "portal/auth/_roll_form.html", status=exc.status, grace=grace,
                      errors=errors, **context)
    return _secret_page(tenant, new_key, plaintext, old_key=key)
