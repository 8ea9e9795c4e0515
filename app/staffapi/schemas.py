"""Schemas of the staff API: tenants, users with memberships, audit events and the overview figures."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.api.schemas import CursorArgs
from app.audit.models import OUTCOMES, SEVERITIES
from app.security import ROLES
from app.tenancy.models import STATUSES

TENANT_ID = "ten_01jd4k2x9f8q7w6e5r4t3y2u1i"
TAG = validate.Regexp(r"^[a-z0-9][a-z0-9_:.-]{0,39}$", error="a-z, 0-9 and _:.- (at most 40 characters).")
COUNTRY = validate.Regexp(r"^[A-Za-z]{2}$", error="A two-letter ISO 3166 country code, e.g. US, DE, GB.")
PLAN_CODE = validate.Length(min=1, max=40)


class AdminTenantSchema(Schema):
    object = fields.Constant("tenant", dump_only=True)
    id = fields.String(dump_only=True, metadata={"example": TENANT_ID})
    slug = fields.String(dump_only=True, metadata={"example": "acme"})
    name = fields.String(dump_only=True, metadata={"example": "Acme Inc."})
    status = fields.String(dump_only=True, metadata={"enum": list(STATUSES)})
    status_reason = fields.String(dump_only=True, metadata={"description": "Why staff suspended or closed it."})
    country = fields.String(dump_only=True, metadata={"example": "DE"})
    billing_email = fields.String(dump_only=True, metadata={"example": "billing@acme.example"})
    tags = fields.List(fields.String(), dump_only=True, metadata={"example": ["beta", "vip"]})
    plan = fields.Function(lambda t: t.plan.code if t.plan else None, dump_only=True,
                           metadata={"type": "string", "description": "The plan's code.", "example": "pro"})
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class CreatedTenantSchema(AdminTenantSchema):
    owner_invitation_url = fields.String(
        dump_only=True, allow_none=True,
        metadata={"description": "When owner_email named someone without an account: their single-use "
                                 "invitation link (valid 7 days), shown only now. Otherwise null."})


class TenantListArgs(CursorArgs):
    q = fields.String(validate=validate.Length(max=120),
                      metadata={"description": "Part of the name, slug or billing email, or the id."})
    status = fields.String(validate=validate.OneOf(STATUSES))
    plan = fields.String(validate=PLAN_CODE, metadata={"description": "A plan code, e.g. pro."})
    tag = fields.String(validate=TAG)


class TenantCreateArgs(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120), metadata={"example": "Acme Inc."})
    slug = fields.String(validate=validate.Length(max=40),
                         metadata={"description": "3–40 of a-z, 0-9 and hyphens; made from the name when omitted.",
                                   "example": "acme"})
    country = fields.String(load_default="US", validate=COUNTRY, metadata={"example": "DE"})
    billing_email = fields.Email(load_default="", validate=validate.Length(max=254))
    plan = fields.String(load_default="free", validate=PLAN_CODE, metadata={"example": "pro"})
    tags = fields.List(fields.String(validate=TAG), load_default=list, validate=validate.Length(max=20))
    owner_email = fields.Email(load_default="", validate=validate.Length(max=254),
                               metadata={"description": "Made owner at once if they have an account; "
                                                        "invited otherwise."})


class TenantUpdateArgs(Schema):
    name = fields.String(validate=validate.Length(min=1, max=120))
    billing_email = fields.String(validate=validate.Length(max=254),
                                  metadata={"description": "An email address, or an empty string to clear it."})
    country = fields.String(validate=COUNTRY)
    tags = fields.List(fields.String(validate=TAG), validate=validate.Length(max=20),
                       metadata={"description": "The whole set of tags (replaces the current ones)."})


class SuspendArgs(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=300),
                           metadata={"example": "Chargeback under review"})


class ChangePlanArgs(Schema):
    plan = fields.String(required=True, validate=PLAN_CODE, metadata={"example": "enterprise"})


class PlanChangeSchema(Schema):
    object = fields.Constant("plan_change", dump_only=True)
    tenant = fields.Nested(AdminTenantSchema, dump_only=True)
    via = fields.String(dump_only=True, metadata={
        "enum": ["subscription", "tenant"],
        "description": "subscription: the tenant is subscribed, so billing changed it (upgrades now with "
                       "proration, downgrades at the period end); tenant: set on the tenant at once."})
    effective = fields.String(dump_only=True, metadata={"enum": ["now", "period_end"]})
    effective_at = fields.DateTime(dump_only=True, allow_none=True)


class MembershipSchema(Schema):
    object = fields.Constant("membership", dump_only=True)
    id = fields.String(dump_only=True)
    tenant_id = fields.String(dump_only=True)
    tenant_slug = fields.Function(lambda m: m.tenant.slug, dump_only=True, metadata={"type": "string"})
    tenant_name = fields.Function(lambda m: m.tenant.name, dump_only=True, metadata={"type": "string"})
    role = fields.String(dump_only=True, metadata={"enum": list(ROLES)})
    created_at = fields.DateTime(dump_only=True)


class AdminUserSchema(Schema):
    """A person; never a password hash, session, TOTP secret or recovery code."""

    object = fields.Constant("user", dump_only=True)
    id = fields.String(dump_only=True, metadata={"example": "usr_01jd4k2x9f8q7w6e5r4t3y2u1i"})
    email = fields.String(dump_only=True, metadata={"example": "ada@acme.example"})
    name = fields.String(dump_only=True)
    is_staff = fields.Boolean(dump_only=True)
    disabled_at = fields.DateTime(dump_only=True, allow_none=True)
    last_login_at = fields.DateTime(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)


class AdminUserDetailSchema(AdminUserSchema):
    memberships = fields.List(fields.Nested(MembershipSchema), dump_only=True)


class UserListArgs(CursorArgs):
    q = fields.String(validate=validate.Length(max=254), metadata={"description": "Part of the email or name."})
    email = fields.String(validate=validate.Length(min=1, max=254), metadata={"description": "The exact email."})


class ActorSchema(Schema):
    type = fields.String(dump_only=True, metadata={"example": "platform_key"})
    id = fields.String(dump_only=True, allow_none=True)
    display = fields.String(dump_only=True)


class TargetSchema(Schema):
    type = fields.String(dump_only=True)
    id = fields.String(dump_only=True, allow_none=True)
    name = fields.String(dump_only=True, allow_none=True)


class ActivitySchema(Schema):
    object = fields.Constant("audit_event", dump_only=True)
    id = fields.String(dump_only=True)
    occurred_at = fields.DateTime(dump_only=True)
    tenant_id = fields.String(dump_only=True, allow_none=True,
                              metadata={"description": "null for platform events (staff, platform keys)."})
    seq = fields.Integer(dump_only=True, metadata={"description": "Position in its chain (tenant or platform)."})
    action = fields.String(dump_only=True, metadata={"example": "tenant.suspended"})
    outcome = fields.String(dump_only=True, metadata={"enum": list(OUTCOMES)})
    severity = fields.String(dump_only=True, metadata={"enum": list(SEVERITIES)})
    actor = fields.Function(lambda e: {"type": e.actor_type, "id": e.actor_id, "display": e.actor_display},
                            dump_only=True, metadata={"type": "object"})
    targets = fields.List(fields.Dict(), dump_only=True)
    changes = fields.Dict(dump_only=True, metadata={"description": "{field: [old, new]}; secrets masked."})
    metadata = fields.Dict(dump_only=True, attribute="meta")
    ip = fields.String(dump_only=True, allow_none=True)
    request_id = fields.String(dump_only=True, allow_none=True)


class ActivityArgs(CursorArgs):
    tenant = fields.String(validate=validate.Length(min=1, max=40),
                           metadata={"description": "A tenant's id or slug."})
    actor = fields.String(validate=validate.Length(max=254),
                          metadata={"description": "An actor id, or part of the actor's name or email."})
    action = fields.String(validate=validate.Length(max=80),
                           metadata={"description": "An action prefix: `tenant.` finds every tenant event."})
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))
    since = fields.AwareDateTime(metadata={"description": "Events at or after this time (ISO 8601 with zone)."})
    until = fields.AwareDateTime(metadata={"description": "Events before this time (ISO 8601 with zone)."})

    @validates_schema
    def _window(self, data: dict, **_kwargs) -> None:
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            raise ValidationError("Until must not be before since.", field_name="until")
