"""Tenant pages: the tenant's own audit trail, filtered and keyset-paginated, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, request

from app.audit.models import OUTCOMES
from app.audit.queries import AuditFilters, list_events
from app.db import is_id
from app.security import tenant_permission
from app.tenancy.models import Tenant
from app.web import render

bp = Blueprint("audit_portal", __name__, url_prefix="/t/<slug>/audit")

PER_PAGE = 50
FILTER_ARGS = ("actor", "action", "outcome", "since", "until")


def _day(raw: str, field: str, errors: dict[str, str]) -> datetime | None:
    """A YYYY-MM-DD day as its UTC midnight; bad input adds a field error."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        errors[field] = f"Use a date like 2025-01-31 (you entered “{raw[:40]}”)."
        return None


def parse_filters(tenant_id: str, args: dict[str, str]) -> tuple[AuditFilters, dict[str, str]]:
    """Filters from the query string, and per-field errors for anything unusable."""
    errors: dict[str, str] = {}
    outcome = args.get("outcome", "").strip()
    if outcome and outcome not in OUTCOMES:
        errors["outcome"] = f"Outcome is one of {', '.join(OUTCOMES)}."
    actor, action = args.get("actor", "").strip(), args.get("action", "").strip()
    if len(actor) > 254:
        errors["actor"] = "At most 254 characters."
    if len(action) > 80:
        errors["action"] = "At most 80 characters."
    since = _day(args.get("since", ""), "since", errors)
    until = _day(args.get("until", ""), "until", errors)
    if since and until and until < since:
        errors["until"] = "“Until” is before “since”."
    filters = AuditFilters(tenant_id=tenant_id, actor=actor, action=action, outcome=outcome, since=since,
                           until=until + timedelta(days=1) if until else None)  # until is inclusive
    return filters, errors


@bp.route("")
@tenant_permission("audit:read")
def index(tenant: Tenant):
    """Who did what in this tenant, and when."""
    args = {name: request.args.get(name, "") for name in FILTER_ARGS}
    filters, errors = parse_filters(tenant.id, args)
    before = request.args.get("before", "")
    before = before if is_id(before, "aud") else None
    page = None if errors else list_events(filters, limit=PER_PAGE, before=before)
    active = {k: v for k, v in args.items() if v}
    return render("portal/audit/index.html", "portal/audit/_table.html", status=422 if errors else 200,
                  tenant=tenant, args=args, active=active, errors=errors, page=page, before=before,
                  outcomes=OUTCOMES)
