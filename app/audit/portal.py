"""Tenant pages: the tenant's own audit trail, filtered and keyset-paginated, newest first."""

from __future__ import annotations

from flask import Blueprint, request

from app.audit.forms import parse_filters
from app.audit.models import OUTCOMES
from app.audit.queries import list_events
from app.db import is_id
from app.security import tenant_permission
from app.tenancy.models import Tenant
from app.web import render

bp = Blueprint("audit_portal", __name__, url_prefix="/t/<slug>/audit")

PER_PAGE = 50
FILTER_ARGS = ("actor", "action", "outcome", "since", "until")


@bp.route("")
@tenant_permission("audit:read")
def index(tenant: Tenant):
    """Who did what in this tenant, and when."""
    args = {name: request.args.get(name, "") for name in FILTER_ARGS}
    filters, errors = parse_filters(args, tenant_id=tenant.id)
    before = request.args.get("before", "")
    before = before if is_id(before, "aud") else None
    page = None if errors else list_events(filters, limit=PER_PAGE, before=before)
    active = {k: v for k, v in args.items() if v}
    return render("portal/audit/index.html", "portal/audit/_table.html", status=422 if errors else 200,
                  tenant=tenant, args=args, active=active, errors=errors, page=page, before=before,
                  outcomes=OUTCOMES)
