"""Pages: two_factor — the code step of sign-in, enrolment, recovery codes, turning 2FA off, and the
re-authentication page that sensitive actions send people to."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, redirect, request, session, url_for
from flask_login import current_user

from app import clock
from app.auth import service, twofactor
from app.auth.models import User
from app.auth.sessions import PENDING, sign_in
from app.errors import Conflict, Forbidden, Invalid, ServiceError, Unauthorized
from app.extensions import db, limiter
from app.security import Actor, current_actor, login_required, public, recent_auth_required, request_context
from app.web import redirect_to, render, safe_next, toast

bp = Blueprint("two_factor", __name__)

def _pending() -> dict[str, Any] | None:
    pending = session.get(PENDING)
    if not isinstance(pending, dict):
        return None
    ttl = current_app.config["TWO_FACTOR_PENDING_TTL"].total_seconds()
    if clock.now().timestamp() - float(pending.get("at", 0)) > ttl:
        session.pop(PENDING, None)
        return None
    return pending


def _pending_key() -> str:
    pending = session.get(PENDING)
    return "2fa-user:" + (pending.get("user", "") if isinstance(pending, dict) else "")


def _signed_in_key() -> str:
    return "2fa-user:" + (current_user.id if current_user.is_authenticated else "")


def _failed(_response: object) -> bool:
    return bool(g.get("second_factor_failed"))


def _throttle(key_func):
    """Wrong codes count per person and per IP: the 11th within 15 minutes gets 429 (a correct password
    does not buy unlimited guesses)."""

    def decorate(view):
        for key in (key_func, lambda: "2fa-ip:" + (request.remote_addr or "unknown")):
            view = limiter.limit(lambda: f"{current_app.config['LOGIN_MAX_FAILURES']} per "
                                         f"{current_app.config['LOGIN_FAILURE_WINDOW']}",
                                 key_func=key, methods=["POST"], deduct_when=_failed,
                                 error_message="Too many wrong codes. Wait 15 minutes and try again.")(view)
        return view

    return decorate


@bp.route("/login/two-factor", methods=["GET", "POST"])
@public
@_throttle(_pending_key)
def second_step():
    """Sign-in, step two: a code from the authenticator app, or a recovery code."""
    pending = _pending()
    if pending is None:
        toast("Sign in again: the code step waits five minutes.", "error")
        return redirect_to(url_for("auth.login"), full_reload=True)
    staff = bool(pending.get("staff"))
    user = db.session.get(User, pending["user"])
    if user is None or not user.is_active or not user.two_factor_enabled:
        session.pop(PENDING, None)
        return redirect_to(url_for("auth.staff_login" if staff else "auth.login"), full_reload=True)
    if request.method == "GET":
        return render("auth/two_factor_code.html", staff=staff, errors={})
    try:
        method = twofactor.check_second_factor(current_actor(), user, request.form.get("code", ""))
    except Unauthorized as exc:
        g.second_factor_failed = True
        pending["tries"] = int(pending.get("tries", 0)) + 1
        if pending["tries"] >= current_app.config["TWO_FACTOR_MAX_ATTEMPTS"]:
            session.pop(PENDING, None)
            toast("Too many wrong codes. Sign in again.", "error")
            return redirect_to(url_for("auth.staff_login" if staff else "auth.login"), full_reload=True)
        session[PENDING] = pending
        return render("auth/two_factor_code.html", status=422, staff=staff, errors={"code": exc.detail})
    next_url = pending.get("next") or url_for("auth.home")
    auth_session = service.start_session(Actor(type="system", id=None, display="login", **request_context()),
                                         user, second_factor=method)
    sign_in(user, auth_session)
    if method == "recovery_code":
        left = twofactor.recovery_codes_left(user.id)
        toast(f"Recovery code used; {left} left. Make new ones on your two-factor page if you are running low.",
              "warning")
    return redirect_to(next_url, full_reload=True)


def _status_page(status: int = 200, errors: dict | None = None):
    return render("auth/two_factor.html", status=status, errors=errors or {},
                  codes_left=twofactor.recovery_codes_left(current_user.id))


@bp.route("/account/two-factor")
@login_required
def status():
    """Whether two-factor sign-in is on, with recovery codes and (tenant users) turning it off."""
    return _status_page()


@bp.route("/account/two-factor/setup", methods=["GET", "POST"])
@login_required
def setup():
    """Enrol: scan the QR code (or type the secret), then confirm with a code; staff are sent here first."""
    next_url = safe_next(request.values.get("next"), url_for("console.index" if current_user.is_staff
                                                             else "two_factor.status"))
    if current_user.two_factor_enabled:
        return redirect(url_for(".status"))
    secret = twofactor.begin_enrolment(current_user)
    uri = twofactor.provisioning_uri(current_user, secret)
    context = {"secret": secret, "uri": uri, "qr": twofactor.qr_svg(uri), "next": next_url}
    if request.method == "GET":
        return render("auth/two_factor_setup.html", errors={}, **context)
    try:
        codes = twofactor.confirm_enrolment(current_actor(), current_user, request.form.get("code", ""),
                                            current_user.session_id)
    except Invalid as exc:
        return render("auth/two_factor_setup.html", status=422, errors=exc.errors, **context)
    except Conflict:
        return redirect_to(url_for(".status"))
    return render("auth/recovery_codes.html", status=201, codes=codes, next=next_url, enrolled=True)


@bp.route("/account/two-factor/recovery-codes", methods=["POST"])
@login_required
@recent_auth_required
def regenerate():
    """New recovery codes (the old ones stop working), shown once."""
    try:
        codes = twofactor.regenerate_recovery_codes(current_actor(), current_user)
    except Conflict as exc:
        toast(exc.detail, "error")
        return redirect_to(url_for(".status"))
    return render("auth/recovery_codes.html", status=201, codes=codes, next=url_for(".status"), enrolled=False)


@bp.route("/account/two-factor/disable", methods=["POST"])
@login_required
@_throttle(_signed_in_key)
def disable():
    """Turn two-factor sign-in off (tenant users only): needs a current code or a recovery code."""
    try:
        twofactor.disable(current_actor(), current_user, request.form.get("code", ""))
    except Unauthorized as exc:
        g.second_factor_failed = True
        return _status_page(422, {"code": exc.detail})
    except (Forbidden, Conflict) as exc:
        return _status_page(exc.status, {"code": exc.detail})
    toast("Two-factor sign-in is off.")
    return redirect_to(url_for(".status"))


@bp.route("/account/confirm", methods=["GET", "POST"])
@login_required
@_throttle(_signed_in_key)
def confirm():
    """Confirm it is you (password, or a code when 2FA is on) before a sensitive action; then back."""
    code_only = request.values.get("factor") == "code" and current_user.two_factor_enabled
    context = {"next": safe_next(request.values.get("next"), url_for("auth.home")), "code_only": code_only}
    if request.method == "GET":
        return render("auth/confirm.html", errors={}, **context)
    try:
        twofactor.confirm_identity(current_actor(), current_user, current_user.session_id,
                                   password=request.form.get("password", ""), code=request.form.get("code", ""),
                                   code_only=code_only)
    except ServiceError as exc:
        g.second_factor_failed = True
        return render("auth/confirm.html", status=422, errors=exc.errors or {"_": exc.detail}, **context)
    return redirect_to(context["next"], full_reload=True)
