"""Pages: platform_keys_admin — staff list, create (the key is shown once) and revoke platform API keys."""

from __future__ import annotations

from flask import Blueprint, request, url_for

from app.auth import platform_keys
from app.errors import ServiceError
from app.security import current_actor, recent_auth_required, staff_required
from app.web import redirect_to, render, toast

bp = Blueprint("platform_keys_admin", __name__, url_prefix="/admin/api-keys")


def _page(form: dict | None = None, errors: dict[str, str] | None = None, status: int = 200):
    # htmx gets the form's fragment when the form was rejected, else the list's.
    partial = "admin/auth/_platform_key_form.html" if status >= 400 else "admin/auth/_platform_keys_table.html"
    return render("admin/auth/platform_keys.html", partial, status=status, keys=platform_keys.list_keys(),
                  scope_choices=list(platform_keys.PLATFORM_SCOPES.items()),
                  form=form or {"name": "", "scopes": []}, errors=errors or {})


@bp.route("/")
@staff_required
def index():
    """Every platform key (active first), with the form for a new one."""
    return _page()


@bp.route("/", methods=["POST"])
@staff_required
@recent_auth_required
def create():
    """Create a platform key and show it this once (never in a URL, a flash or the database)."""
    form = {"name": request.form.get("name", ""), "scopes": request.form.getlist("scopes")}
    try:
        key, plaintext = platform_keys.create_key(current_actor(), form["name"], form["scopes"])
    except ServiceError as exc:
        return _page(form, exc.errors or {"_": exc.detail}, status=exc.status)
    return render("admin/auth/platform_key_created.html", "admin/auth/_platform_key_secret.html", status=201,
                  key=key, plaintext=plaintext)


@bp.route("/<key_id>/revoke", methods=["POST"])
@staff_required
def revoke(key_id: str):
    """Revoke a key now: its next request gets 401."""
    key = platform_keys.revoke_key(current_actor(), key_id)
    toast(f"The platform key “{key.name}” ({key.masked}) was revoked.")
    return redirect_to(url_for(".index"))
