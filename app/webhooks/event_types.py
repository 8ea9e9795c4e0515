"""Event types: the platform's catalogue (app.webhooks.catalogue) plus the types each tenant defines for
the events it publishes itself through `POST /api/v1/events`.

A tenant-defined type is named like the catalogue's (`order.shipped`: lowercase dot-separated words), never
shadows a catalogue name, and is visible to its own tenant only. Its endpoints subscribe to it like to any
other type. Deprecating it keeps it publishable (existing integrations go on working) but hides it from
the endpoint form; deleting it stops new events of that type (endpoints subscribed to it keep the name in
their list, harmlessly). Every change is audited.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from app import clock
from app.audit import service as audit
from app.audit.service import Target, jsonable
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.security import Actor
from app.webhooks import catalogue
from app.webhooks.outbound_models import WebhookEventType, WebhookTenantEventType

# The names POST /api/v1/events and the endpoint schemas accept (app.webhooks.schemas.EVENT_TYPE), each
# word starting with a letter or digit.
NAME = re.compile(r"^[a-z0-9][a-z0-9_]*(\.[a-z0-9][a-z0-9_]*)+$")
NAME_LENGTH = (3, 120)
MAX_PER_TENANT = 200
MAX_EXAMPLE_BYTES = 16 * 1024


@dataclass
class EventType:
    """One type as a tenant sees it: from the catalogue (`source` "platform") or its own ("tenant")."""

    name: str
    description: str
    example: dict = field(default_factory=dict)
    deprecated: bool = False
    source: str = "platform"
    created_at: Any = None


def known_types(tenant_id: str | None) -> set[str]:
    """Every name a tenant may publish or subscribe to (deprecated ones included)."""
    names = catalogue.known_types()
    if tenant_id is not None:
        names |= set(db.session.scalars(select(WebhookTenantEventType.name)
                                        .where(WebhookTenantEventType.tenant_id == tenant_id)))
    return names


def listing(tenant_id: str | None, include_deprecated: bool = True) -> list[EventType]:
    """The catalogue's types, then the tenant's own, each by name."""
    platform = select(WebhookEventType).order_by(WebhookEventType.name)
    own = select(WebhookTenantEventType).where(WebhookTenantEventType.tenant_id == tenant_id) \
        .order_by(WebhookTenantEventType.name)
    if not include_deprecated:
        platform = platform.where(WebhookEventType.deprecated.is_(False))
        own = own.where(WebhookTenantEventType.deprecated.is_(False))
    out = [EventType(t.name, t.description, t.example or {}, t.deprecated, "platform", t.created_at)
           for t in db.session.scalars(platform)]
    if tenant_id is not None:
        out += [EventType(t.name, t.description, t.example or {}, t.deprecated, "tenant", t.created_at)
                for t in db.session.scalars(own)]
    return out


def clean_description(value: Any, errors: dict[str, str]) -> str:
    """A description of an event type or an endpoint: trimmed, at most 500 characters, no NUL (which
    PostgreSQL cannot store); a problem goes in errors["description"]."""
    description = str(value or "").strip()
    if len(description) > 500:
        errors["description"] = "At most 500 characters."
    elif "\x00" in description:
        errors["description"] = "No NUL characters."
    return description


def _clean(data: dict[str, Any], partial: bool) -> dict[str, Any]:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    if "name" in data or not partial:
        name = str(data.get("name") or "").strip()
        if not is_name(name):
            errors["name"] = ("Lowercase words separated by dots, like order.shipped (letters, digits and _; "
                              "3 to 120 characters).")
        elif name in catalogue.known_types():
            errors["name"] = f"{name} is one of Tenantry's own event types; choose another name."
        out["name"] = name
    if "description" in data:
        out["description"] = clean_description(data.get("description"), errors)
    if "example" in data:
        example = data.get("example")
        if example is None:
            example = {}
        if not isinstance(example, dict):
            errors["example"] = "A JSON object."
        elif len(json.dumps(jsonable(example)).encode()) > MAX_EXAMPLE_BYTES:
            errors["example"] = f"At most {MAX_EXAMPLE_BYTES // 1024} KB."
        elif _has_nul(example):  # PostgreSQL's JSONB cannot store \u0000
            errors["example"] = "No NUL characters (\\u0000) in keys or strings."
        out["example"] = jsonable(example) if isinstance(example, dict) else example
    if "deprecated" in data:
        if not isinstance(data["deprecated"], bool):
            errors["deprecated"] = "true or false."
        out["deprecated"] = data["deprecated"]
    if errors:
        raise Invalid("Some fields need attention.", errors=errors)
    return out


def is_name(name: Any) -> bool:
    """A well-formed event type name (whether or not it exists)."""
    return isinstance(name, str) and NAME_LENGTH[0] <= len(name) <= NAME_LENGTH[1] and bool(NAME.match(name))


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def get(tenant_id: str, name: str) -> WebhookTenantEventType:
    """One of the tenant's own types by name; NotFound otherwise (the catalogue's cannot be changed), also
    for a malformed name, which is never sent to the database."""
    found = None
    if is_name(name):
        found = db.session.scalar(select(WebhookTenantEventType).where(WebhookTenantEventType.tenant_id == tenant_id,
                                                                       WebhookTenantEventType.name == name))
    if found is None:
        raise NotFound("No such event type of yours (Tenantry's own types cannot be changed).")
    return found


def create(actor: Actor, tenant_id: str, data: dict[str, Any]) -> WebhookTenantEventType:
    """Define a type for the tenant's own events (Conflict if it exists or the tenant has MAX_PER_TENANT)."""
    from sqlalchemy.exc import IntegrityError

    fields = _clean(data, partial=False)
    count = db.session.scalar(select(func.count()).select_from(WebhookTenantEventType)
                              .where(WebhookTenantEventType.tenant_id == tenant_id))
    if count >= MAX_PER_TENANT:
        raise Conflict(f"A tenant may define at most {MAX_PER_TENANT} event types; delete one first.")
    if db.session.scalar(select(WebhookTenantEventType.id).where(WebhookTenantEventType.tenant_id == tenant_id,
                                                                 WebhookTenantEventType.name == fields["name"])):
        raise _taken(fields["name"])
    now = clock.now()
    event_type = WebhookTenantEventType(tenant_id=tenant_id, created_at=now, updated_at=now,
                                        **{"description": "", "example": {}, "deprecated": False, **fields})
    db.session.add(event_type)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise _taken(fields["name"]) from None
    audit.record(actor, "webhook_event_type.created", tenant_id=tenant_id,
                 targets=[Target("webhook_event_type", event_type.id, event_type.name)],
                 changes={k: [None, v] for k, v in fields.items()})
    db.session.commit()
    return event_type


def _taken(name: str) -> Conflict:
    message = f"You already have an event type named {name}."
    return Conflict(message, errors={"name": message})


def update(actor: Actor, tenant_id: str, name: str, data: dict[str, Any]) -> WebhookTenantEventType:
    """Change a type's description or example, or (un)deprecate it; the name stays."""
    event_type = get(tenant_id, name)
    fields = _clean({k: v for k, v in data.items() if k != "name"}, partial=True)
    changes = {k: [getattr(event_type, k), v] for k, v in fields.items() if getattr(event_type, k) != v}
    for key, value in fields.items():
        setattr(event_type, key, value)
    event_type.updated_at = clock.now()
    audit.record(actor, "webhook_event_type.updated", tenant_id=tenant_id,
                 targets=[Target("webhook_event_type", event_type.id, event_type.name)], changes=changes)
    db.session.commit()
    return event_type


def delete(actor: Actor, tenant_id: str, name: str) -> None:
    """Remove a type: events of it can no longer be published; those already sent stay."""
    event_type = get(tenant_id, name)
    audit.record(actor, "webhook_event_type.deleted", tenant_id=tenant_id,
                 targets=[Target("webhook_event_type", event_type.id, event_type.name)],
                 changes={"name": [event_type.name, None]})
    db.session.delete(event_type)
    db.session.commit()
