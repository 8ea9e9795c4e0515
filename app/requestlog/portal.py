"""Tenant pages: the tenant's API request log, filtered and keyset-paginated, and one request."""

from __future__ import annotations

from flask import Blueprint, request

from app.auth import apikeys
from app.errors import NotFound
from app.requestlog import forms, queries, service
from app.security import tenant_permission
from app.tenancy.models import Tenant
from app.web import render

bp = Blueprint("requestlog_portal", __name__, url_prefix="/t/<slug>/logs")

PER_PAGE = 50


@bp.route("")
@tenant_permission("usage:read")
def index(tenant: Tenant):
    """Every API request of this tenant within retention, newest first."""
    args = {name: request.args.get(name, "").strip()[:200] for name in forms.FILTER_ARGS}
    active = {name: value for name, value in args.items() if value}
    filters, errors = forms.parse_filters(args, tenant_id=tenant.id)
    before = request.args.get("before", "").strip()
    before = before if queries.decode_cursor(before) else None
    page = queries.LogPage([], None) if errors else queries.list_entries(filters, limit=PER_PAGE, before=before)
    keys = apikeys.list_keys(tenant.id)
    return render("portal/requestlog/index.html", "portal/requestlog/_table.html", status=422 if errors else 200,
                  tenant=tenant, args=forms.form_values(args), active=active, errors=errors, page=page, before=before,
                  keys=keys, key_names={key.id: key.name for key in keys}, routes=queries.api_routes(),
                  periods=forms.PERIODS, status_classes=forms.STATUS_CLASSES, retention_days=service.retention().days)


@bp.route("/<request_id>")
@tenant_permission("usage:read")
def detail(tenant: Tenant, request_id: str):
    """One request by its X-Request-ID (every request with that id, if the client sent it more than once)."""
    entries = queries.by_request_id(request_id, tenant.id) if forms.valid_request_id(request_id) else []
    if not entries:
        raise NotFound("No request with this id in this tenant's request log.")
    keys = {key.id: key for key in apikeys.list_keys(tenant.id)}
    return render("portal/requestlog/detail.html", tenant=tenant, entries=entries, request_id=request_id,
                  keys=keys, retention_days=service.retention().days)
