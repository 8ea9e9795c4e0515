"""Permissions, the acting principal, and the decorators that make an access decision for every route.

Every view carries an ``_access`` marker set by exactly one of these decorators; a test walks the URL
map and fails on any route without one (deny by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import abort, g, has_request_context, redirect, request, url_for
from flask_login import current_user

from app.tenancy import rls

PERMISSIONS: dict[str, str] = {
    "tenant:read": "See the tenant's profile and plan",
    "tenant:write": "Change the tenant's profile",
    "members:read": "See team members and invitations",
    "members:write": "Invite, change and remove team members",
    "keys:read": "See API keys",
    "keys:write": "Create, roll and revoke API keys",
    "webhooks:read": "See webhook endpoints and delivery logs",
    "webhooks:write": "Manage webhook endpoints",
    "events:write": "Publish events",
    "usage:read": "See usage and quotas",
    "usage:write": "Report usage",
    "billing:read": "See plan, invoices and payments",
    "billing:write": "Change plan and payment details",
    "flags:read": "Evaluate feature flags",
    "audit:read": "Read the audit trail",
}

_READ = {p for p in PERMISSIONS if p.endswith(":read")}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset(PERMISSIONS),
    "admin": frozenset(PERMISSIONS) - {"billing:write"},
    "member": frozenset(
        _READ - {"audit:read", "billing:read"}
        | {"keys:write", "webhooks:write", "events:write", "usage:write"}
    ),
    "viewer": frozenset(_READ - {"audit:read", "billing:read"}),
}
ROLES = tuple(ROLE_PERMISSIONS)  # ordered from most to least powerful


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user, an API key, operator staff or the system, and from where."""

    type: str  # user | api_key | staff | system
    id: str | None
    display: str
    tenant_id: str | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    def can(self, permission: str) -> bool:
        """Staff and the system may do anything; others need the permission."""
        return self.type in {"staff", "system"} or permission in self.permissions

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """The actor for jobs, the scheduler and CLI commands."""
        return cls(type="system", id=None, display=name)


def request_context(req: Any = None) -> dict[str, str | None]:
    """IP, user agent and request id of the current request, or of `req` (empty outside one)."""
    if req is None:
        if not has_request_context():
            return {"ip": None, "user_agent": None, "request_id": None}
        req = request._get_current_object()  # one proxy lookup, not one per field (runs on every API call)
    return {
        "ip": req.remote_addr,
        "user_agent": (req.headers.get("User-Agent") or "")[:400] or None,
        "request_id": g.get("request_id"),
    }


def current_actor() -> Actor:
    """The actor of the current request, set by the access decorators."""
    actor = g.get("actor")
    if actor is None:
        if current_user and current_user.is_authenticated:
            kind = "staff" if current_user.is_staff else "user"
            return Actor(type=kind, id=current_user.id, display=current_user.email, **request_context())
        return Actor(type="system", id=None, display="anonymous", **request_context())
    return actor


def _mark(view: Callable, access: str) -> None:
    view._access = access  # type: ignore[attr-defined]


def public(view: Callable) -> Callable:
    """No authentication: login pages, health checks, docs, inbound webhooks."""
    _mark(view, "public")
    return view


def login_required(view: Callable) -> Callable:
    """Any signed-in person (pages not bound to one tenant: tenant picker, account)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return _to_login("auth.login")
        return view(*args, **kwargs)

    _mark(wrapper, "user")
    return wrapper


def staff_required(view: Callable) -> Callable:
    """Operator staff only; other signed-in people get 404 so the console stays unseen."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return _to_login("auth.staff_login")
        if not current_user.is_staff:
            abort(404)
        from app.auth.twofactor import staff_needs_second_factor

        if staff_needs_second_factor(current_user):  # ASVS 4.3.1: no console before a second factor
            return _to_second_factor()
        g.actor = Actor(type="staff", id=current_user.id, display=current_user.email, **request_context())
        return view(*args, **kwargs)

    _mark(wrapper, "staff")
    return wrapper


def tenant_permission(permission: str) -> Callable[[Callable], Callable]:
    """A tenant page: the signed-in user must be a member of <slug> (else 404) with `permission` (else 403)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission}")

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(slug: str, *args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return _to_login("auth.login")
            from app.tenancy import queries as tenancy_queries

            found = tenancy_queries.membership_for_slug(current_user.id, slug)
            viewing = None
            if found is None and current_user.is_staff:
                from app.auth import impersonation

                viewing = impersonation.membership_for(slug)  # staff viewing as a member
                found = viewing[:2] if viewing else None
            if found is None:
                abort(404)
            tenant, membership = found
            g.tenant, g.membership = tenant, membership
            rls.enter(tenant.id, membership.user_id)
            if viewing:
                return _as_member(view, tenant, membership, viewing[2], permission, *args, **kwargs)
            g.actor = Actor(
                type="user",
                id=current_user.id,
                display=current_user.email,
                tenant_id=tenant.id,
                permissions=ROLE_PERMISSIONS[membership.role],
                **request_context(),
            )
            if not g.actor.can(permission):
                deny(g.actor, permission)
            return view(tenant, *args, **kwargs)

        _mark(wrapper, f"tenant:{permission}")
        return wrapper

    return decorator


def _as_member(view: Callable, tenant: Any, membership: Any, state: dict, permission: str, *args: Any,
               **kwargs: Any) -> Any:
    """A tenant page seen by staff as one of its members: the member's role decides what is allowed, the
    staff member is the actor, and a read-only view refuses every change."""
    from app.audit import service as audit
    from app.errors import Forbidden

    g.impersonation = state
    g.actor = Actor(type="staff", id=current_user.id, display=f"{current_user.email} as {state['email']}",
                    tenant_id=tenant.id, permissions=ROLE_PERMISSIONS[membership.role], **request_context())
    if permission not in g.actor.permissions:
        deny(g.actor, permission)
    if state["read_only"] and request.method not in ("GET", "HEAD", "OPTIONS"):
        audit.record_failure(g.actor, "impersonation.change_refused", outcome="denied", tenant_id=tenant.id,
                             metadata={"method": request.method, "path": request.path})
        raise Forbidden("You are viewing this tenant read-only as one of its members: end the view, or start "
                        "it again allowing changes.")
    return view(tenant, *args, **kwargs)


def api_scope(permission: str) -> Callable[[Callable], Callable]:
    """An API route: a valid Bearer API key (else 401) whose scopes include `permission` (else 403)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission}")

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from app.auth import apikeys  # (imported here: both import this module)
            from app.ratelimit import service as ratelimit

            req = request._get_current_object()  # one proxy lookup each: this runs on every API call
            context = g._get_current_object()
            key = ratelimit.admit(apikeys.bearer_token(), req.method, req)
            context.api_key = key
            rls.enter(key.tenant_id, req=req)
            context.actor = actor = Actor(
                type="api_key",
                id=key.id,
                display=key.name,
                tenant_id=key.tenant_id,
                permissions=key.scopes,
                **request_context(req),
            )
            if not actor.can(permission):
                deny(actor, permission)
            return view(*args, **kwargs)

        _mark(wrapper, f"api:{permission}")
        return wrapper

    return decorator


def deny(actor: Actor, permission: str) -> None:
    """Audit the denial (severity warning) and raise 403 naming the missing permission."""
    from app.audit import service as audit
    from app.errors import Forbidden

    audit.record_failure(
        actor,
        "access.denied",
        outcome="denied",
        tenant_id=actor.tenant_id,
        metadata={"permission": permission, "method": request.method, "path": request.path},
    )
    raise Forbidden(f"Missing permission: {permission}", missing_scope=permission)


def _to_second_factor() -> Any:
    """Staff without a proven second factor: enrol first, or (already enrolled) confirm a code."""
    args = {"next": request.full_path.rstrip("?")}
    if current_user.two_factor_enabled:
        return _to_login("two_factor.confirm", factor="code", **args)
    return _to_login("two_factor.setup", **args)


def _to_login(endpoint: str, **args: Any) -> Any:
    from app.extensions import htmx

    target = url_for(endpoint, **(args or {"next": request.full_path.rstrip("?")}))
    if htmx:
        from flask import Response

        response = Response(status=204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def recent_auth_required(view: Callable) -> Callable:
    """A sensitive action (plan change, key creation, tenant close, secret rotation): the session must have
    confirmed a password or code within REAUTH_WINDOW (ASVS 3.7.1), else the person confirms on
    /account/confirm and comes back. Goes under the access decorator, which makes the access decision."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from app.auth.twofactor import is_recent

        if current_user.is_authenticated and is_recent(getattr(current_user, "auth_session", None)):
            return view(*args, **kwargs)
        if request.method == "GET":
            back = request.full_path.rstrip("?")
        else:  # a form cannot be re-sent by a redirect: back to the page it was on, to submit it again
            back = _same_site_referrer() or url_for("auth.home")
        return _to_login("two_factor.confirm", next=back)

    return wrapper


def _same_site_referrer() -> str | None:
    from urllib.parse import urlsplit

    referrer = request.headers.get("HX-Current-URL") or request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc and parts.netloc != request.host:
        return None
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
