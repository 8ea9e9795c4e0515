"""API schemas for tenants, members and invitations."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.api.fastdump import FastDumpSchema
from app.security import ROLES


class TenantSchema(FastDumpSchema):
    object = fields.Constant("tenant", dump_only=True)
    id = fields.String(dump_only=True, metadata={"example": "ten_01jd4k2x9f8q7w6e5r4t3y2u1i"})
    slug = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": ["active", "suspended", "closed"]})
    country = fields.String(dump_only=True)
    billing_email = fields.String(dump_only=True)
    tags = fields.List(fields.String(), dump_only=True)
    plan = fields.String(dump_only=True, metadata={"description": "The plan's code."})
    created_at = fields.DateTime(dump_only=True)


class MemberSchema(Schema):
    object = fields.Constant("member", dump_only=True)
    id = fields.String(dump_only=True)
    user_id = fields.String(dump_only=True)
    email = fields.Function(lambda m: m.user.email, dump_only=True)
    name = fields.Function(lambda m: m.user.name, dump_only=True)
    role = fields.String(dump_only=True, metadata={"enum": list(ROLES)})
    created_at = fields.DateTime(dump_only=True)


class InviteArgs(Schema):
    """Invite someone to the tenant; they become a member when they accept the link."""

    email = fields.Email(required=True, validate=validate.Length(max=254))
    role = fields.String(load_default="member", validate=validate.OneOf([r for r in ROLES if r != "owner"]),
                         metadata={"description": "Owners are made by owners, in the tenant's pages."})


class InvitationSchema(Schema):
    object = fields.Constant("invitation", dump_only=True)
    id = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    role = fields.String(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": ["pending"]})
    expires_at = fields.DateTime(dump_only=True)
    accept_url = fields.String(dump_only=True, metadata={"description": "Single-use link; shown once."})
