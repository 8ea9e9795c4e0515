"""Staff API routes (/api/v1/admin/…), for platform keys only: overview figures, tenants, users, activity.

Writes go through the same services as the console, so each is validated and audited the same way, with
the platform key as the actor."""

from __future__ import annotations

from flask_smorest import Blueprint

from app import clock
from app.api.idempotency import idempotent
from app.api.schemas import list_body, list_schema
from app.audit import queries as audit_queries
from app.auth.platform_keys import platform_scope
from app.errors import Conflict, Invalid, NotFound
from app.plans.queries import find_plan
from app.security import current_actor
from app.staffapi import metrics, queries
from app.staffapi.schemas import (
    ActivityArgs,
    ActivitySchema,
    AdminTenantSchema,
    AdminUserDetailSchema,
    AdminUserSchema,
    ChangePlanArgs,
    CreatedTenantSchema,
    PlanChangeSchema,
    SuspendArgs,
    TenantCreateArgs,
    TenantListArgs,
    TenantUpdateArgs,
    UserListArgs,
)
from app.tenancy import queries as tenancy_queries
from app.tenancy import service as tenancy_service

blp = Blueprint("staff_api", __name__, url_prefix="/api/v1/admin",
                description="The staff API, for operator automation. Platform keys (tnt_plat_…) only: staff "
                            "create them in the console; tenant keys get 403 here.")
TenantList = list_schema(AdminTenantSchema, "AdminTenantList")
UserList = list_schema(AdminUserSchema, "AdminUserList")
ActivityList = list_schema(ActivitySchema, "ActivityList")


def _plan_field(exc: Invalid) -> Invalid:
    """The services name the plan `plan_id`; the API calls it `plan`."""
    if "plan_id" in exc.errors:
        exc.errors = {("plan" if k == "plan_id" else k): v for k, v in exc.errors.items()}
    return exc


def _plan(code: str):
    plan = find_plan(code)
    if plan is None:
        raise Invalid(errors={"plan": f"No plan has the code {code!r}."})
    return plan


@blp.route("/metrics", methods=["GET"])
@platform_scope("admin:read")
@blp.response(200, metrics.MetricsSchema)
def get_metrics():
    """The overview's figures: tenants, usage, webhooks, past-due invoices (a snapshot at most 5 minutes
    old), and revenue and queues as they are now. Money is in integer minor units with its currency."""
    return metrics.figures()


@blp.route("/tenants", methods=["GET"])
@platform_scope("admin:read")
@blp.arguments(TenantListArgs, location="query", as_kwargs=True)
@blp.response(200, TenantList)
def list_tenants(limit: int, starting_after: str | None = None, q: str = "", status: str = "", plan: str = "",
                 tag: str = ""):
    """Tenants, newest first, filtered by search text, status, plan code and tag."""
    plan_id = _plan(plan).id if plan else ""
    return list_body(queries.tenants_slice(limit, starting_after, q, status, plan_id, tag))


@blp.route("/tenants", methods=["POST"])
@platform_scope("admin:tenants:write")
@idempotent
@blp.arguments(TenantCreateArgs)
@blp.response(201, CreatedTenantSchema)
def create_tenant(data: dict):
    """Create a tenant on a plan. With owner_email, that person becomes its owner (invited when they have
    no account yet: the answer then carries the invitation link, once)."""
    owner_email = data.pop("owner_email", "")
    data["plan_id"] = data.pop("plan")
    try:
        tenant, link = tenancy_service.create_tenant(current_actor(), data, owner_email)
    except Invalid as exc:
        raise _plan_field(exc) from None
    tenant.owner_invitation_url = link
    return tenant


@blp.route("/tenants/<tenant_id>", methods=["GET"])
@platform_scope("admin:read")
@blp.response(200, AdminTenantSchema)
def get_tenant(tenant_id: str):
    """One tenant."""
    return tenancy_queries.get_tenant(tenant_id)


@blp.route("/tenants/<tenant_id>", methods=["PATCH"])
@platform_scope("admin:tenants:write")
@blp.arguments(TenantUpdateArgs)
@blp.response(200, AdminTenantSchema)
def update_tenant(data: dict, tenant_id: str):
    """Change a tenant's name, billing email, country or tags (the whole set). Fields left out stay."""
    return tenancy_service.update_tenant(current_actor(), tenant_id, data)


@blp.route("/tenants/<tenant_id>/suspend", methods=["POST"])
@platform_scope("admin:tenants:write")
@idempotent
@blp.arguments(SuspendArgs)
@blp.response(200, AdminTenantSchema)
def suspend_tenant(data: dict, tenant_id: str):
    """Suspend a tenant: its API keys get 403 at once. 409 when it is not active."""
    tenant = tenancy_queries.get_tenant(tenant_id)
    if tenant.status != "active":
        raise Conflict(f"The tenant is {tenant.status}; only an active tenant can be suspended.")
    return tenancy_service.set_status(current_actor(), tenant_id, "suspended", data["reason"])


@blp.route("/tenants/<tenant_id>/resume", methods=["POST"])
@platform_scope("admin:tenants:write")
@idempotent
@blp.response(200, AdminTenantSchema)
def resume_tenant(tenant_id: str):
    """Resume a suspended tenant. 409 when it is not suspended (a closed tenant stays closed)."""
    tenant = tenancy_queries.get_tenant(tenant_id)
    if tenant.status != "suspended":
        raise Conflict(f"The tenant is {tenant.status}; only a suspended tenant can be resumed.")
    return tenancy_service.set_status(current_actor(), tenant_id, "active")


@blp.route("/tenants/<tenant_id>/change-plan", methods=["POST"])
@platform_scope("admin:tenants:write")
@idempotent
@blp.arguments(ChangePlanArgs)
@blp.response(200, PlanChangeSchema)
def change_plan(data: dict, tenant_id: str):
    """Move a tenant to another plan. A subscribed tenant changes through billing, as on its billing page:
    an upgrade now with proration, a downgrade at the period end. Others change at once."""
    from app.billing import changes
    from app.billing import queries as billing_queries

    tenant = tenancy_queries.get_tenant(tenant_id)
    plan = _plan(data["plan"])
    actor = current_actor()
    sub = billing_queries.subscription(tenant_id)
    if sub is not None and sub.status != "canceled":
        try:
            preview = changes.change_plan(actor, tenant_id, plan.code)
        except NotFound:  # _can_act's answer; the tenant exists, so this is about the subscription
            raise Conflict("The tenant's subscription cannot be changed.") from None
        return {"tenant": tenancy_queries.get_tenant(tenant_id), "via": "subscription",
                "effective": preview.effective, "effective_at": preview.at}
    if tenant.plan_id == plan.id:
        raise Invalid("The tenant is already on this plan.", errors={"plan": "Choose another plan."})
    try:
        tenant = tenancy_service.update_tenant(actor, tenant_id, {"plan_id": plan.id})
    except Invalid as exc:
        raise _plan_field(exc) from None
    return {"tenant": tenant, "via": "tenant", "effective": "now", "effective_at": clock.now()}


@blp.route("/users", methods=["GET"])
@platform_scope("admin:users:read")
@blp.arguments(UserListArgs, location="query", as_kwargs=True)
@blp.response(200, UserList)
def list_users(limit: int, starting_after: str | None = None, q: str = "", email: str = ""):
    """People (tenant users and staff), newest first; by part of the email or name, or the exact email."""
    return list_body(queries.users_slice(limit, starting_after, q, email))


@blp.route("/users/<user_id>", methods=["GET"])
@platform_scope("admin:users:read")
@blp.response(200, AdminUserDetailSchema)
def get_user(user_id: str):
    """One person with their memberships (tenant and role)."""
    user = queries.get_user(user_id)
    if user is None:
        raise NotFound("No such user.")
    user.memberships = queries.memberships_of(user.id)  # for the answer only (not a mapped attribute)
    return user


@blp.route("/activity", methods=["GET"])
@platform_scope("admin:activity:read")
@blp.arguments(ActivityArgs, location="query", as_kwargs=True)
@blp.response(200, ActivityList)
def list_activity(limit: int, starting_after: str | None = None, tenant: str = "", **filters):
    """The audit trail of every tenant and the platform, newest first, with the audit page's filters."""
    errors: dict[str, str] = {}
    tenant_id = tenancy_queries.tenant_filter(tenant, errors) if tenant else None
    if errors:
        raise Invalid("Some filters need attention.", errors=errors)
    page = audit_queries.list_events(audit_queries.AuditFilters(tenant_id=tenant_id, **filters), limit=limit,
                                     before=starting_after)
    return {"object": "list", "data": page.events, "has_more": page.next_before is not None}
