"""Sign-in pages (tenant users at /login, staff at /admin/login), sign-out, invitations, the account page."""

from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, request, url_for
from flask_login import current_user

from app.audit import service as audit
from app.auth import service
from app.auth.sessions import sign_in, sign_out, start_pending
from app.errors import Invalid, ServiceError, Unauthorized
from app.extensions import limiter
from app.security import Actor, current_actor, login_required, public, request_context
from app.tenancy import members as members_service
from app.tenancy import queries as tenancy_queries
from app.web import redirect_to, render, safe_next, toast

bp = Blueprint("auth", __name__)


def _failure_window() -> str:
    config = current_app.config
    return f"{config['LOGIN_MAX_FAILURES']} per {config['LOGIN_FAILURE_WINDOW']}"


def _account_key() -> str:
    """Throttle key per account: the normalised email (so case changes don't reset the count)."""
    raw = (request.form.get("email") or "").strip().lower()
    return "login-account:" + raw[:254]


def _ip_key() -> str:
    return "login-ip:" + (request.remote_addr or "unknown")


def _failed(_response: object) -> bool:
    return bool(g.get("login_failed"))


def _throttled(limit: object) -> None:
    audit.record_failure(Actor(type="system", id=None, display="anonymous", **request_context()),
                         "auth.login_throttled", metadata={"email": (request.form.get("email") or "")[:254],
                                                           "limit": str(limit.limit)})


def _throttle(view):
    """The 11th failed sign-in for one account or one IP within 15 minutes gets 429."""
    for key_func in (_account_key, _ip_key):
        view = limiter.limit(_failure_window, key_func=key_func, methods=["POST"], deduct_when=_failed,
                             on_breach=_throttled,
                             error_message="Too many failed sign-ins. Wait 15 minutes and try again.")(view)
    return view


def _login(staff: bool):
    template = "auth/staff_login.html" if staff else "auth/login.html"
    default = url_for("console.index") if staff else url_for("auth.home")
    next_url = safe_next(request.values.get("next"), default)
    if current_user.is_authenticated and request.method == "GET" and (current_user.is_staff or not staff):
        return redirect(next_url)
    if request.method == "GET":
        return render(template, next=next_url, email="", errors={})
    email = request.form.get("email", "")
    try:
        user = service.authenticate(current_actor(), email, request.form.get("password", ""), staff=staff)
    except Unauthorized as exc:
        g.login_failed = True
        return render(template, status=422, next=next_url, email=email, errors={"_": exc.detail})
    if user.two_factor_enabled:  # step two: the code (no session until it is right)
        start_pending(user, next_url, staff)
        return redirect_to(url_for("two_factor.second_step"), full_reload=True)
    auth_session = service.start_session(Actor(type="system", id=None, display="login", **request_context()), user)
    sign_in(user, auth_session)
    if user.is_staff and staff and current_app.config["STAFF_REQUIRE_2FA"]:  # enrol before the console
        return redirect_to(url_for("two_factor.setup", next=next_url), full_reload=True)
    return redirect_to(next_url, full_reload=True)


@bp.route("/login", methods=["GET", "POST"])
@public
@_throttle
def login():
    """Tenant users sign in."""
    return _login(staff=False)


@bp.route("/admin/login", methods=["GET", "POST"])
@public
@_throttle
def staff_login():
    """Operator staff sign in."""
    return _login(staff=True)


@bp.route("/logout", methods=["POST"])
@public
def logout():
    """Sign out: this session ends server-side, so a copied cookie stops working too."""
    staff = bool(current_user.is_authenticated and current_user.is_staff)
    if current_user.is_authenticated and current_user.session_id:
        service.end_session(current_actor(), current_user.session_id)
    sign_out()
    toast("You are signed out.")
    return redirect_to(url_for("auth.staff_login" if staff else "auth.login"), full_reload=True)


@bp.route("/")
@login_required
def home():
    """Tenant picker: straight to the only tenant; staff without tenants go to the console."""
    memberships = tenancy_queries.memberships_of_user(current_user.id)
    if len(memberships) == 1 and not current_user.is_staff:
        return redirect(url_for("tenancy_portal.home", slug=memberships[0].tenant.slug))
    if not memberships and current_user.is_staff:
        return redirect(url_for("console.index"))
    return render("auth/home.html", memberships=memberships)


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@public
def accept_invitation(token: str):
    """Accept an invitation: as the signed-in user, or by creating an account."""
    invitation = members_service.find_invitation(token)
    user = current_user if current_user.is_authenticated else None
    existing = service.find_user_by_email(invitation.email)
    context = {"invitation": invitation, "token": token, "user": user, "existing": existing, "errors": {},
               "name": ""}
    if request.method == "GET":
        return render("auth/accept.html", **context)
    name, password = request.form.get("name", ""), request.form.get("password", "")
    if user is None and password != request.form.get("password_confirm", ""):
        return render("auth/accept.html", status=422, **context | {"name": name,
                      "errors": {"password_confirm": "The passwords do not match."}})
    try:
        membership = members_service.accept(current_actor(), token, user, name=name, password=password)
    except Invalid as exc:
        return render("auth/accept.html", status=422, **context | {"name": name, "errors": exc.errors})
    except ServiceError as exc:
        return render("auth/accept.html", status=exc.status, **context | {"name": name, "errors": {"_": exc.detail}})
    toast(f"Welcome to {membership.tenant.name}.")
    if user is None:
        user = membership.user
        auth_session = service.start_session(current_actor(), user)
        sign_in(user, auth_session)
    return redirect_to(url_for("tenancy_portal.home", slug=membership.tenant.slug), full_reload=True)


@bp.route("/account")
@login_required
def account():
    """The signed-in person's account: sessions, password, sign out everywhere."""
    return render("auth/account.html", sessions=service.active_sessions(current_user.id), errors={})


@bp.route("/account/password", methods=["POST"])
@login_required
def change_password():
    new, confirm = request.form.get("new_password", ""), request.form.get("new_password_confirm", "")
    errors = {}
    if new != confirm:
        errors = {"new_password_confirm": "The new passwords do not match."}
    else:
        try:
            service.change_password(current_actor(), current_user, request.form.get("current_password", ""), new)
        except Invalid as exc:
            errors = {("new_password" if k == "password" else k): v for k, v in exc.errors.items()}
    if errors:
        return render("auth/account.html", "auth/_password_form.html", status=422,
                      sessions=service.active_sessions(current_user.id), errors=errors)
    toast("Password changed. Your other sessions were signed out.")
    return redirect_to(url_for("auth.account"))


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@login_required
def sign_out_everywhere():
    """End every session of this person, this one included."""
    staff = current_user.is_staff
    ended = service.sign_out_everywhere(current_actor(), current_user.id)
    sign_out()
    toast(f"Signed out of {ended} session{'s' if ended != 1 else ''}.")
    return redirect_to(url_for("auth.staff_login" if staff else "auth.login"), full_reload=True)
