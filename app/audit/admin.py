"""Pages: audit_admin — the whole audit trail with filters, and one event with every field."""

from __future__ import annotations

from flask import Blueprint, request

from app.audit import forms, queries
from app.audit.models import OUTCOMES, SEVERITIES
from app.db import is_id
from app.errors import NotFound
from app.security import staff_required
from app.tenancy import queries as tenancy_queries
from app.web import render

bp = Blueprint("audit_admin", __name__, url_prefix="/admin/audit")

PER_PAGE = 50
FILTER_ARGS = ("tenant", "actor", "action", "outcome", "severity", "since", "until")


def parse_filters(args: dict[str, str]) -> tuple[queries.AuditFilters, dict[str, str]]:
    """The shared filters plus the staff-only tenant filter (a slug or an id)."""
    filters, errors = forms.parse_filters(args)
    filters.tenant_id = tenancy_queries.tenant_filter(args.get("tenant", ""), errors)
    return filters, errors


@bp.route("/")
@staff_required
def index():
    """Every audit event, newest first, filtered; "Older →" pages by the last id shown."""
    args = {name: request.args.get(name, "").strip()[:200] for name in FILTER_ARGS}
    args = {name: value for name, value in args.items() if value}
    filters, errors = parse_filters(args)
    before = request.args.get("before", "").strip()
    before = before if is_id(before, "aud") else None
    if errors:
        page = queries.AuditPage([], None)
    else:
        page = queries.list_events(filters, limit=PER_PAGE, before=before)
    return render("admin/audit/index.html", "admin/audit/_table.html", status=422 if errors else 200,
                  page=page, args=args, errors=errors, before=before, outcomes=OUTCOMES, severities=SEVERITIES,
                  tenants=tenancy_queries.tenants_by_id(e.tenant_id for e in page.events))


@bp.route("/<event_id>")
@staff_required
def event(event_id: str):
    """One event with every stored field, including its place in the hash chain."""
    found = queries.get_event(event_id) if is_id(event_id, "aud") else None
    if found is None:
        raise NotFound("No such audit event.")
    return render("admin/audit/event.html", event=found,
                  tenants=tenancy_queries.tenants_by_id([found.tenant_id]))
