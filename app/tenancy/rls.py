"""Row-level security on PostgreSQL: a second wall behind every query's tenant filter.

Every table with a tenant_id column has a policy (migrations/row_security.py): while the transaction's
`tenantry.tenant_id` setting names a tenant, only that tenant's rows are visible or writable (memberships
also show the signed-in user's own, for the tenant switcher); with the setting empty — staff pages, jobs,
the scheduler, sign-in — the policy lets everything through (the explicit bypass of paths that act across
tenants). PostgreSQL never applies policies to a superuser or to a role with BYPASSRLS, so a tenant-bound
transaction also switches to the NOLOGIN role `tenantry_app` (SET LOCAL ROLE), which has plain table rights
and none to change the audit trail.

The tenant is entered by the access decorators (app.security) once they know it — an API key's tenant, or
the tenant of a /t/<slug> page — and applied to each transaction of the request as it begins (and to the
one already open). So a query that forgets `WHERE tenant_id = …` in a tenant's request returns that tenant's
rows only, never another's. SQLite has no row security: there the query filters are the only wall.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, has_request_context, request
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.extensions import db

ROLE = "tenantry_app"
CONTEXT = "tenantry.rls"
log = logging.getLogger(__name__)
_role_usable: dict[str, bool] = {}


def enter(tenant_id: str, user_id: str | None = None, req: Any = None) -> None:
    """Bind the rest of this request (`req`, else the current one) to one tenant (and, for memberships,
    one user)."""
    if req is None:
        if not has_request_context():
            return
        req = request._get_current_object()
    if not current_app.config.get("RLS_ENABLED", True):
        return
    req.environ[CONTEXT] = context = (tenant_id, user_id or "")  # the request's, not g's (g is the
    # app context's, which a test's requests may share)
    if not db.session.registry.has():  # no Session yet (an API call often needs none): its first
        return  # transaction gets the context from _after_begin; making one here would cost ~40 µs
    session = db.session()  # the request's Session (scoped_session only proxies)
    if session.in_transaction():
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            _apply(connection, context)


def _usable(connection: Connection) -> bool:
    """Whether this database has the role and the connecting user may take it (asked once per URL)."""
    url = str(connection.engine.url)
    if url not in _role_usable:
        usable = bool(connection.execute(text(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :role) "
            "THEN pg_has_role(:role, 'MEMBER') ELSE false END"), {"role": ROLE}).scalar())
        if not usable:
            log.warning("row-level security: role %s missing or not granted to this user; policies apply only "
                        "if the app's own role is neither superuser nor BYPASSRLS", ROLE)
        _role_usable[url] = usable
    return _role_usable[url]


def _apply(connection: Connection, context: tuple[str, str]) -> None:
    if _usable(connection):
        connection.exec_driver_sql(f"SET LOCAL ROLE {ROLE}")
    connection.execute(text("SELECT set_config('tenantry.tenant_id', :tenant, true), "
                            "set_config('tenantry.user_id', :user, true)"),
                       {"tenant": context[0], "user": context[1]})


@event.listens_for(Session, "after_begin")
def _after_begin(session: Session, transaction: Any, connection: Connection) -> None:
    if connection.dialect.name != "postgresql" or not has_request_context():
        return
    context = request.environ.get(CONTEXT)
    if context:
        _apply(connection, context)
