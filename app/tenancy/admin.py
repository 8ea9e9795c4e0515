"""Pages: tenancy_admin — the staff tenant list, create, detail, edit, status changes and invitations."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request, session, url_for

from app import clock
from app.audit import queries as audit_queries
from app.auth import apikeys
from app.auth import service as auth_service
from app.errors import Conflict, Invalid
from app.plans import queries as plan_queries
from app.security import ROLES, current_actor, recent_auth_required, staff_required
from app.tenancy import members as members_service
from app.tenancy import queries, service
from app.tenancy.models import STATUSES, Tenant
from app.web import int_arg, redirect_to, render, toast

bp = Blueprint("tenancy_admin", __name__, url_prefix="/admin/tenants")

PER_PAGE = 25
FORM_FIELDS = ("name", "slug", "country", "billing_email", "plan_id", "tags")
LIST_ARGS = ("q", "status", "plan", "tag", "sort")
# The accept link of an invitation just made, shown once on the tenant's page (then dropped).
INVITE_LINK_KEY = "tenancy_admin_invite_link"


def _list_args() -> dict[str, str]:
    """The list's filters from the query string; unknown statuses and sorts are dropped."""
    args = {name: request.args.get(name, "").strip()[:200] for name in LIST_ARGS}
    if args["status"] not in STATUSES:
        args["status"] = ""
    if args["sort"] not in queries.TENANT_SORTS:
        args["sort"] = ""
    return {name: value for name, value in args.items() if value}


@bp.route("/")
@staff_required
def index():
    """Every tenant: search, filter by status, plan and tag, sort, 25 a page."""
    args = _list_args()
    page = queries.list_tenants(q=args.get("q", ""), status=args.get("status", ""), plan_id=args.get("plan", ""),
                                tag=args.get("tag", ""), sort=args.get("sort", "name"),
                                page=int_arg("page", 1), per_page=PER_PAGE)
    return render("admin/tenancy/index.html", "admin/tenancy/_table.html", page=page, args=args,
                  sort=args.get("sort", "name"), statuses=STATUSES, plans=plan_queries.list_plans(),
                  tags=queries.all_tags())


def _plan_options(tenant: Tenant | None) -> list[tuple[str, str]]:
    """Plans a tenant can be put on: the non-archived ones, plus its current plan if archived."""
    plans = plan_queries.list_plans(include_archived=False)
    if tenant is not None and tenant.plan is not None and tenant.plan.archived:
        plans.append(tenant.plan)
    return [(plan.id, f"{plan.name}{' (archived)' if plan.archived else ''}") for plan in plans]


def _submitted() -> dict[str, str]:
    return {name: request.form.get(name, "") for name in FORM_FIELDS}


def _form_page(tenant: Tenant | None, values: dict[str, str], errors: dict[str, str], status: int = 200):
    return render("admin/tenancy/form.html", "admin/tenancy/_form.html", status=status, tenant=tenant,
                  values=values, errors=errors, plan_options=_plan_options(tenant))


@bp.route("/new", methods=["GET", "POST"])
@staff_required
def new():
    """Create a tenant; with an owner email, that person is added as owner or invited."""
    if request.method == "GET":
        free = plan_queries.find_plan("free")
        return _form_page(None, {"country": "US", "plan_id": free.id if free else "", "owner_email": ""}, {})
    values = _submitted() | {"owner_email": request.form.get("owner_email", "").strip()}
    try:
        tenant, link = service.create_tenant(current_actor(), {k: values[k] for k in FORM_FIELDS},
                                             values["owner_email"])
    except Invalid as exc:
        # The owner's address is checked as "email" by the membership code.
        errors = {("owner_email" if key == "email" else key): message for key, message in exc.errors.items()}
        return _form_page(None, values, errors or {"_": exc.detail}, status=422)
    if link:
        _remember_link(tenant, values["owner_email"], "owner", link)
        toast(f"Tenant {tenant.name} created. Send the owner the invitation link shown on the page.")
    elif values["owner_email"]:
        toast(f"Tenant {tenant.name} created with {values['owner_email']} as owner.")
    else:
        toast(f"Tenant {tenant.name} created.")
    return redirect_to(url_for(".detail", tenant_id=tenant.id))


def _remember_link(tenant: Tenant, email: str, role: str, link: str) -> None:
    session[INVITE_LINK_KEY] = {"tenant_id": tenant.id, "email": email.lower(), "role": role, "link": link}


def _take_link(tenant: Tenant) -> dict[str, str] | None:
    """The invitation link made for this tenant by the previous request, once."""
    remembered = session.get(INVITE_LINK_KEY)
    if not isinstance(remembered, dict) or remembered.get("tenant_id") != tenant.id:
        return None
    session.pop(INVITE_LINK_KEY, None)
    return remembered


def _detail_page(tenant: Tenant, status: int = 200, **extra: Any):
    context: dict[str, Any] = {"invite_errors": {}, "invite_values": {"email": "", "role": "member"},
                               "status_errors": {}} | extra
    from app.flags import queries as flag_queries

    return render("admin/tenancy/detail.html", status=status, tenant=tenant, now=clock.now(),
                  members=queries.members(tenant.id), invitations=queries.pending_invitations(tenant.id),
                  keys=apikeys.list_keys(tenant.id), events=audit_queries.recent_for_tenant(tenant.id),
                  roles=ROLES, invite=_take_link(tenant), flags=flag_queries.tenant_overview(tenant), **context)


@bp.route("/<tenant_id>")
@staff_required
def detail(tenant_id: str):
    """One tenant: profile, plan, status, members, invitations, API keys, recent audit, actions."""
    return _detail_page(queries.get_tenant(tenant_id))


@bp.route("/<tenant_id>/edit", methods=["GET", "POST"])
@staff_required
def edit(tenant_id: str):
    """Edit a tenant's profile, plan and tags."""
    tenant = queries.get_tenant(tenant_id)
    if request.method == "GET":
        values = {name: getattr(tenant, name) for name in FORM_FIELDS if name != "tags"}
        return _form_page(tenant, values | {"tags": ", ".join(tenant.tags)}, {})
    values = _submitted()
    try:
        service.update_tenant(current_actor(), tenant.id, values)
    except Invalid as exc:
        return _form_page(tenant, values, exc.errors or {"_": exc.detail}, status=422)
    toast(f"Saved {values['name'].strip() or tenant.name}.")
    return redirect_to(url_for(".detail", tenant_id=tenant.id))


@bp.route("/<tenant_id>/view-as", methods=["POST"])
@staff_required
def view_as(tenant_id: str):
    """See the tenant's pages as one of its members (read-only unless changes are allowed); audited."""
    from app.auth import impersonation

    tenant = queries.get_tenant(tenant_id)
    try:
        state = impersonation.start(current_actor(), tenant.id, request.form.get("user_id", ""),
                                    allow_changes=request.form.get("allow_changes") == "1")
    except Invalid as exc:
        toast(next(iter(exc.errors.values()), exc.detail), "error")
        return redirect_to(url_for(".detail", tenant_id=tenant.id))
    toast(f"Viewing {tenant.name} as {state['email']}{' (read-only)' if state['read_only'] else ''}.")
    return redirect_to(url_for("tenancy_portal.home", slug=tenant.slug))


@bp.route("/view-as/end", methods=["POST"])
@staff_required
def end_view_as():
    """Back to the console from a member's view (audited with its length)."""
    from app.auth import impersonation

    state = impersonation.end(current_actor())
    if state is None:
        return redirect_to(url_for("console.index"))
    toast(f"Stopped viewing {state['tenant_name']} as {state['email']}.")
    return redirect_to(url_for(".detail", tenant_id=state["tenant_id"]))


def _change_status(tenant_id: str, status: str, message: str):
    tenant = queries.get_tenant(tenant_id)
    reason = request.form.get("reason", "")
    try:
        service.set_status(current_actor(), tenant.id, status, reason)
    except Invalid as exc:
        return _detail_page(tenant, status=422, status_errors=exc.errors or {"_": exc.detail}, reason=reason)
    except Conflict as exc:
        toast(exc.detail, "error")
    else:
        toast(message.format(name=tenant.name))
    return redirect_to(url_for(".detail", tenant_id=tenant.id))


@bp.route("/<tenant_id>/suspend", methods=["POST"])
@staff_required
def suspend(tenant_id: str):
    """Suspend: the tenant's API keys get 403 until it is resumed."""
    return _change_status(tenant_id, "suspended", "{name} is suspended; its API keys are refused.")


@bp.route("/<tenant_id>/resume", methods=["POST"])
@staff_required
def resume(tenant_id: str):
    """Make a suspended or closed tenant active again."""
    return _change_status(tenant_id, "active", "{name} is active again.")


@bp.route("/<tenant_id>/close", methods=["POST"])
@staff_required
@recent_auth_required
def close(tenant_id: str):
    """Close a tenant (its data stays; its API keys are refused)."""
    return _change_status(tenant_id, "closed", "{name} is closed.")


@bp.route("/<tenant_id>/members/<membership_id>/sign-out", methods=["POST"])
@staff_required
def end_member_sessions(tenant_id: str, membership_id: str):
    """End every session of one of the tenant's members (a lost laptop, a leaver): audited."""
    tenant = queries.get_tenant(tenant_id)
    member = queries.get_membership(tenant.id, membership_id)
    ended = auth_service.sign_out_everywhere(current_actor(), member.user_id)
    toast(f"Ended {ended} session{'s' if ended != 1 else ''} of {member.user.email}.")
    return redirect_to(url_for(".detail", tenant_id=tenant.id) + "#members")


@bp.route("/<tenant_id>/invite", methods=["POST"])
@staff_required
def invite(tenant_id: str):
    """Invite someone into the tenant; the single-use accept link is shown once on the page."""
    tenant = queries.get_tenant(tenant_id)
    values = {"email": request.form.get("email", "").strip(), "role": request.form.get("role", "member")}
    try:
        _invitation, link = members_service.invite(current_actor(), tenant.id, values["email"], values["role"])
    except (Invalid, Conflict) as exc:
        return _detail_page(tenant, status=422, invite_errors=exc.errors or {"_": exc.detail}, invite_values=values)
    _remember_link(tenant, values["email"], values["role"], link)
    toast(f"Invited {values['email']} as {values['role']}. Send them the link shown on the page.")
    return redirect_to(url_for(".detail", tenant_id=tenant.id) + "#invitations")


@bp.route("/<tenant_id>/invitations/<invitation_id>/revoke", methods=["POST"])
@staff_required
def revoke_invitation(tenant_id: str, invitation_id: str):
    """Revoke a pending invitation: its link stops working."""
    tenant = queries.get_tenant(tenant_id)
    try:
        members_service.revoke_invitation(current_actor(), tenant.id, invitation_id)
    except Conflict as exc:
        toast(exc.detail, "error")
    else:
        toast("Invitation revoked.")
    return redirect_to(url_for(".detail", tenant_id=tenant.id) + "#invitations")
