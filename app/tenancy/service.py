"""Tenant use cases for operator staff: create, edit, suspend, resume, close."""

from __future__ import annotations

import re
from typing import Any

import pycountry

from app.audit import service as audit
from app.audit.service import Target
from app.auth import keycache
from app.errors import Conflict, Invalid
from app.events import service as events
from app.extensions import db
from app.plans import queries as plan_queries
from app.security import Actor
from app.tenancy import queries
from app.tenancy.models import STATUSES, Tenant, TenantTag

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])$")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_:.-]{0,39}$")
RESERVED_SLUGS = frozenset({"admin", "api", "login", "logout", "static", "new", "settings", "account", "t"})
MAX_TAGS = 20
EDITABLE = ("name", "slug", "country", "billing_email", "plan_id", "tags")


def slugify(name: str) -> str:
    """A slug suggestion from a name."""
    slug = re.sub(r"[^a-z0-9]+", "-", (name or "").lower()).strip("-")
    return slug[:40].strip("-")


def parse_tags(raw: str | list[str] | None) -> list[str]:
    """Tags from a comma-separated string or a list: lowercased, unique, sorted, validated."""
    items = raw.split(",") if isinstance(raw, str) else list(raw or [])
    tags = sorted({str(t).strip().lower() for t in items if str(t).strip()})
    bad = [t for t in tags if not TAG_RE.match(t)]
    if bad:
        raise Invalid(errors={"tags": f"Tags use a-z, 0-9 and _:.- (at most 40 characters): {', '.join(bad)}."})
    if len(tags) > MAX_TAGS:
        raise Invalid(errors={"tags": f"At most {MAX_TAGS} tags."})
    return tags


def clean(data: dict[str, Any], tenant: Tenant | None) -> dict[str, Any]:
    """Validate tenant fields; every problem is reported at once, per field."""
    from app.auth.service import normalize_email

    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    if "name" in data or tenant is None:
        name = (data.get("name") or "").strip()
        if not name:
            errors["name"] = "Enter a name."
        elif len(name) > 120:
            errors["name"] = "A name has at most 120 characters."
        out["name"] = name
    if "slug" in data or tenant is None:
        slug = (data.get("slug") or "").strip().lower() or slugify(out.get("name", ""))
        if not SLUG_RE.match(slug):
            errors["slug"] = "3–40 characters: a-z, 0-9 and hyphens, not starting or ending with a hyphen."
        elif slug in RESERVED_SLUGS:
            errors["slug"] = "This slug is reserved."
        else:
            other = queries.get_by_slug(slug)
            if other is not None and (tenant is None or other.id != tenant.id):
                errors["slug"] = "Another tenant has this slug."
        out["slug"] = slug
    if "country" in data or tenant is None:
        country = (data.get("country") or "US").strip().upper()
        if len(country) != 2 or pycountry.countries.get(alpha_2=country) is None:
            errors["country"] = "Use a two-letter ISO 3166 country code, e.g. US, DE, GB."
        out["country"] = country
    if "billing_email" in data:
        raw = (data.get("billing_email") or "").strip()
        if raw:
            try:
                out["billing_email"] = normalize_email(raw, "billing_email")
            except Invalid as exc:
                errors.update(exc.errors)
        else:
            out["billing_email"] = ""
    if "plan_id" in data or tenant is None:
        plan = plan_queries.find_plan(data.get("plan_id") or "free")
        if plan is None:
            errors["plan_id"] = "Choose a plan."
        elif plan.archived and (tenant is None or tenant.plan_id != plan.id):
            errors["plan_id"] = "This plan is archived; choose another."
        else:
            out["plan_id"] = plan.id
    if "tags" in data:
        try:
            out["tags"] = parse_tags(data.get("tags"))
        except Invalid as exc:
            errors.update(exc.errors)
    if errors:
        raise Invalid("Some fields need attention.", errors=errors)
    return out


def _snapshot(tenant: Tenant) -> dict[str, Any]:
    return {field: (tenant.tags if field == "tags" else getattr(tenant, field)) for field in EDITABLE} | {
        "status": tenant.status
    }


def _set_tags(tenant: Tenant, tags: list[str]) -> None:
    tenant.tag_rows = [TenantTag(tag=tag) for tag in tags]


def _public(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.id, "slug": tenant.slug, "name": tenant.name, "status": tenant.status,
            "country": tenant.country, "plan": tenant.plan.code if tenant.plan else None, "tags": tenant.tags}


def create_tenant(actor: Actor, data: dict[str, Any], owner_email: str = "") -> tuple[Tenant, str | None]:
    """Create a tenant; with an owner email, add that person as owner (or invite them).

    Returns the tenant and, when an invitation was made, its accept link.
    """
    tenant, link = add_tenant(actor, data, owner_email)
    db.session.commit()
    return tenant, link


def add_tenant(actor: Actor, data: dict[str, Any], owner_email: str = "") -> tuple[Tenant, str | None]:
    """create_tenant() within the caller's transaction (an import adds many, all or none)."""
    from app.auth.service import normalize_email
    from app.tenancy import members

    errors: dict[str, str] = {}
    if owner_email.strip():
        try:
            owner_email = normalize_email(owner_email, "owner_email")
        except Invalid as exc:
            errors.update(exc.errors)
    try:
        fields = clean({**data, "billing_email": data.get("billing_email", "")}, None)
    except Invalid as exc:
        errors = exc.errors | errors
    if errors:  # every field's problem at once, and nothing written
        raise Invalid("Some fields need attention.", errors=errors)
    tags = fields.pop("tags", [])
    tenant = Tenant(**fields)
    _set_tags(tenant, tags)
    db.session.add(tenant)
    db.session.flush()
    audit.record(actor, "tenant.created", tenant_id=tenant.id, targets=[Target("tenant", tenant.id, tenant.name)],
                 changes={k: [None, v] for k, v in _snapshot(tenant).items()})
    link = None
    if owner_email.strip():
        link = members.add_or_invite(actor, tenant, owner_email, "owner")
    return tenant, link


def update_tenant(actor: Actor, tenant_id: str, data: dict[str, Any]) -> Tenant:
    """Edit a tenant's profile, plan or tags; the audit event holds old and new values."""
    tenant = queries.get_tenant(tenant_id)
    fields = clean({k: v for k, v in data.items() if k in EDITABLE}, tenant)
    before = _snapshot(tenant)
    if "tags" in fields:
        _set_tags(tenant, fields.pop("tags"))
    for name, value in fields.items():
        setattr(tenant, name, value)
    db.session.flush()
    after = _snapshot(tenant)
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changes:
        keycache.bump_after_commit(db.session, [tenant.id])
        action = "tenant.plan_changed" if set(changes) == {"plan_id"} else "tenant.updated"
        audit.record(actor, action, tenant_id=tenant.id, targets=[Target("tenant", tenant.id, tenant.name)],
                     changes=changes)
        events.publish(tenant.id, "tenant.updated", {"tenant": _public(tenant), "changed": sorted(changes)})
    db.session.commit()
    return tenant


def set_status(actor: Actor, tenant_id: str, status: str, reason: str = "") -> Tenant:
    """Suspend, resume (active) or close a tenant. Suspended and closed tenants' API keys get 403."""
    if status not in STATUSES:
        raise Invalid(errors={"status": f"Status is one of {', '.join(STATUSES)}."})
    reason = (reason or "").strip()
    if len(reason) > 300:
        raise Invalid(errors={"reason": "A reason has at most 300 characters."})
    tenant = queries.get_tenant(tenant_id)
    if tenant.status == status:
        raise Conflict(f"The tenant is already {status}.")
    old = tenant.status
    tenant.status, tenant.status_reason = status, reason
    keycache.bump_after_commit(db.session, [tenant.id])
    verb = {"active": "resumed", "suspended": "suspended", "closed": "closed"}[status]
    audit.record(actor, f"tenant.{verb}", tenant_id=tenant.id, targets=[Target("tenant", tenant.id, tenant.name)],
                 changes={"status": [old, status]}, metadata={"reason": reason} if reason else None,
                 severity="info" if status == "active" else "warning")
    events.publish(tenant.id, "tenant.updated", {"tenant": _public(tenant), "changed": ["status"]})
    db.session.commit()
    return tenant

