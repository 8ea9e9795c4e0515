"""Staff pages: rate-limit blocks (active and recent, with lift) and refusals per key over 24 hours."""

from __future__ import annotations

from flask import Blueprint, url_for

from app import clock
from app.errors import Conflict
from app.ratelimit import blocks
from app.security import current_actor, staff_required
from app.tenancy import queries as tenancy_queries
from app.web import redirect_to, render, toast

bp = Blueprint("ratelimit_admin", __name__, url_prefix="/admin/ratelimits")


@bp.route("/")
@staff_required
def index():
    """Who is being refused and who is blocked."""
    active, recent = blocks.active_blocks(), blocks.recent_blocks()
    violations = blocks.violation_totals(hours=24)
    tenant_ids = {b.tenant_id for b in active + recent} | {v[0] for v in violations}
    return render("admin/ratelimit/index.html", active=active, recent=recent, violations=violations,
                  tenants=tenancy_queries.tenants_by_id(tenant_ids), now=clock.now())


@bp.route("/blocks/<block_id>/lift", methods=["POST"])
@staff_required
def lift(block_id: str):
    """Lift a block now (audited); the key is blocked for longer if it offends again."""
    try:
        block = blocks.lift_block(current_actor(), block_id)
    except Conflict as exc:
        toast(exc.detail, "error")
    else:
        toast(f"Block on {block.subject_name or block.subject_id} lifted.")
    return redirect_to(url_for(".index"))
