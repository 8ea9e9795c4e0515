"""Staff pages: every tenant's API request log, filtered (tenant too), and one request."""

from __future__ import annotations

from flask import Blueprint, request

from app.auth import apikeys
from app.errors import NotFound
from app.requestlog import drain, forms, queries, service
from app.security import staff_required
from app.tenancy import queries as tenancy_queries
from app.web import render

bp = Blueprint("requestlog_admin", __name__, url_prefix="/admin/logs")

PER_PAGE = 50
FILTER_ARGS = ("tenant", *forms.FILTER_ARGS)


def parse_filters(args: dict[str, str]) -> tuple[queries.LogFilters, dict[str, str]]:
    """The shared filters plus the staff-only tenant filter (a slug or an id)."""
    filters, errors = forms.parse_filters(args)
    filters.tenant_id = tenancy_queries.tenant_filter(args.get("tenant", ""), errors)
    return filters, errors


@bp.route("/")
@staff_required
def index():
    """API requests across tenants, newest first, filtered; "Older →" pages by a cursor."""
    args = {name: request.args.get(name, "").strip()[:200] for name in FILTER_ARGS}
    active = {name: value for name, value in args.items() if value}
    filters, errors = parse_filters(args)
    before = request.args.get("before", "").strip()
    before = before if queries.decode_cursor(before) else None
    page = queries.LogPage([], None) if errors else queries.list_entries(filters, limit=PER_PAGE, before=before)
    return render("admin/requestlog/index.html", "admin/requestlog/_table.html", status=422 if errors else 200,
                  args=forms.form_values(args), active=active, errors=errors, page=page, before=before,
                  tenants=tenancy_queries.tenants_by_id(e.tenant_id for e in page.entries),
                  routes=queries.api_routes(), periods=forms.PERIODS, status_classes=forms.STATUS_CLASSES,
                  retention_days=service.retention().days, backlog=drain.backlog())


@bp.route("/<request_id>")
@staff_required
def detail(request_id: str):
    """Every request with this id, in any tenant."""
    entries = queries.by_request_id(request_id) if forms.valid_request_id(request_id) else []
    if not entries:
        raise NotFound("No request with this id in the request log.")
    keys = {}
    for entry in entries:
        try:
            keys[entry.tenant_id, entry.api_key_id] = apikeys.get_key(entry.tenant_id, entry.api_key_id)
        except NotFound:
            continue
    return render("admin/requestlog/detail.html", entries=entries, request_id=request_id, keys=keys,
                  tenants=tenancy_queries.tenants_by_id(e.tenant_id for e in entries))
