"""Pages: console — the staff home (counts, the latest audit events, links to every section)."""

from __future__ import annotations

from flask import Blueprint

from app.audit import queries as audit_queries
from app.auth import service as auth_service
from app.plans import queries as plan_queries
from app.security import staff_required
from app.tenancy import queries as tenancy_queries
from app.tenancy.models import STATUSES
from app.web import render

bp = Blueprint("console", __name__, url_prefix="/admin")


@bp.route("/")
@staff_required
def index():
    """The staff home: tenants by status and by plan, staff count, the latest audit events."""
    by_status = tenancy_queries.status_counts()
    events = audit_queries.list_events(audit_queries.AuditFilters(), limit=10).events
    return render(
        "admin/console/index.html",
        statuses=[(status, by_status.get(status, 0)) for status in STATUSES],
        total=sum(by_status.values()),
        plans=plan_queries.list_plans(),
        plan_counts=plan_queries.tenant_counts(),
        staff_count=auth_service.count_staff(),
        events=events,
        tenants=tenancy_queries.tenants_by_id(e.tenant_id for e in events),
    )
