"""Staff pages: rate-limit blocks (active and recent, with lift), refusals per key and IP over 24
hours, staff's overrides of a tenant's or key's limits, and exemptions."""

from __future__ import annotations

from flask import Blueprint, request, url_for

from app import clock
from app.errors import Conflict, Invalid, NotFound
from app.ratelimit import blocks, policies
from app.ratelimit.gcra import STRATEGIES
from app.security import current_actor, staff_required
from app.tenancy import queries as tenancy_queries
from app.web import redirect_to, render, toast

bp = Blueprint("ratelimit_admin", __name__, url_prefix="/admin/ratelimits")

STRATEGY_LABELS = {"gcra": "GCRA (smooth, the default)", "fixed-window": "Fixed window",
                   "sliding-window": "Sliding window"}
KIND_LABELS = {"ip": "Client IP or network", "key": "API key (key_…)", "tenant": "Tenant (id or slug)"}


def _page(status: int = 200, override_form: dict | None = None, override_errors: dict | None = None,
          exemption_form: dict | None = None, exemption_errors: dict | None = None):
    active, recent = blocks.active_blocks(), blocks.recent_blocks()
    violations = blocks.violation_totals(hours=24)
    overrides, exemptions = policies.overrides(), policies.exemptions()
    tenant_ids = ({b.tenant_id for b in active + recent} | {v[0] for v in violations}
                  | {o.tenant_id for o in overrides})
    return render("admin/ratelimit/index.html", status=status, active=active, recent=recent,
                  violations=violations, overrides=overrides, exemptions=exemptions,
                  tenants=tenancy_queries.tenants_by_id(tenant_ids), now=clock.now(),
                  strategies=[(s, STRATEGY_LABELS.get(s, s)) for s in STRATEGIES],
                  kinds=list(KIND_LABELS.items()),
                  override_form=override_form or {}, override_errors=override_errors or {},
                  exemption_form=exemption_form or {}, exemption_errors=exemption_errors or {})


@bp.route("/")
@staff_required
def index():
    """Who is being refused and who is blocked; who has other limits, and who has none."""
    return _page()


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


@bp.route("/overrides", methods=["POST"])
@staff_required
def set_override():
    """Set (or replace) a tenant's or key's limits; applies on every process's next request."""
    form = request.form.to_dict()
    try:
        override = policies.set_override(current_actor(), form.get("tenant", ""), form)
    except Invalid as exc:
        toast(exc.detail, "error")
        return _page(422, override_form=form, override_errors=exc.errors)
    toast(f"Limits of {override.api_key_id or 'the tenant'} overridden.")
    return redirect_to(url_for(".index") + "#overrides")


@bp.route("/overrides/<override_id>/remove", methods=["POST"])
@staff_required
def remove_override(override_id: str):
    try:
        policies.remove_override(current_actor(), override_id)
    except NotFound as exc:
        toast(exc.detail, "error")
    else:
        toast("Override removed: the plan's limits apply again.")
    return redirect_to(url_for(".index") + "#overrides")


@bp.route("/exemptions", methods=["POST"])
@staff_required
def add_exemption():
    """Exempt an IP network, a key or a tenant from every rate limit (quotas still apply)."""
    form = request.form.to_dict()
    try:  # the field is exemption_reason on the page: the override form above has its own reason
        exemption = policies.add_exemption(current_actor(), form | {"reason": form.get("exemption_reason", "")})
    except Invalid as exc:
        toast(exc.detail, "error")
        errors = {("exemption_reason" if k == "reason" else k): v for k, v in exc.errors.items()}
        return _page(422, exemption_form=form, exemption_errors=errors)
    except Conflict as exc:
        toast(exc.detail, "error")
        return _page(409, exemption_form=form)
    toast(f"{exemption.label} is exempt from rate limits.")
    return redirect_to(url_for(".index") + "#exemptions")


@bp.route("/exemptions/<exemption_id>/remove", methods=["POST"])
@staff_required
def remove_exemption(exemption_id: str):
    try:
        exemption = policies.remove_exemption(current_actor(), exemption_id)
    except NotFound as exc:
        toast(exc.detail, "error")
    else:
        toast(f"{exemption.label} is rate limited again.")
    return redirect_to(url_for(".index") + "#exemptions")
