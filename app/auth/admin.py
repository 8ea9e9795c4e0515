"""Pages: auth_admin — operator staff accounts: list, create, disable/enable, sign out everywhere."""

from __future__ import annotations

from flask import Blueprint, request, url_for

from app.auth import service
from app.auth.sessions import sign_out
from app.errors import Conflict, Invalid
from app.security import current_actor, staff_required
from app.web import redirect_to, render, toast

bp = Blueprint("auth_admin", __name__, url_prefix="/admin/staff")


def _page(values: dict[str, str] | None = None, errors: dict[str, str] | None = None, status: int = 200):
    # htmx gets the list's fragment, or the form's when the form was rejected.
    partial = "admin/auth/_staff_form.html" if status == 422 else "admin/auth/_staff_table.html"
    return render("admin/auth/staff.html", partial, status=status,
                  people=service.list_staff(), values=values or {"email": "", "name": ""}, errors=errors or {})


@bp.route("/")
@staff_required
def staff():
    """Every staff account, with the form to add one."""
    return _page()


@bp.route("/", methods=["POST"])
@staff_required
def create():
    """Create a staff account (password of at least 12 characters)."""
    values = {"email": request.form.get("email", "").strip(), "name": request.form.get("name", "").strip()}
    password = request.form.get("password", "")
    if password != request.form.get("password_confirm", ""):
        return _page(values, {"password_confirm": "The passwords do not match."}, status=422)
    try:
        user = service.create_staff(current_actor(), values["email"], values["name"], password)
    except (Invalid, Conflict) as exc:  # a taken email is a field error like any other
        return _page(values, exc.errors or {"_": exc.detail}, status=422)
    toast(f"Staff account {user.email} created.")
    return redirect_to(url_for(".staff"))


def _set_disabled(user_id: str, disabled: bool):
    try:
        user = service.set_staff_disabled(current_actor(), user_id, disabled)
    except Invalid as exc:
        toast(exc.detail, "error")
    else:
        toast(f"{user.email} is {'disabled and signed out' if disabled else 'enabled'}.")
    return redirect_to(url_for(".staff"))


@bp.route("/<user_id>/disable", methods=["POST"])
@staff_required
def disable(user_id: str):
    """Disable a staff account and end its sessions."""
    return _set_disabled(user_id, True)


@bp.route("/<user_id>/enable", methods=["POST"])
@staff_required
def enable(user_id: str):
    """Let a disabled staff account sign in again."""
    return _set_disabled(user_id, False)


@bp.route("/<user_id>/sign-out-everywhere", methods=["POST"])
@staff_required
def sign_out_everywhere(user_id: str):
    """End every session of a person; for oneself this ends the current session too."""
    own = user_id == current_actor().id
    ended = service.sign_out_everywhere(current_actor(), user_id)
    toast(f"Ended {ended} session{'s' if ended != 1 else ''}.")
    if own:
        sign_out()
        return redirect_to(url_for("auth.staff_login"), full_reload=True)
    return redirect_to(url_for(".staff"))
