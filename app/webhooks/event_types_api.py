"""API routes: event types — Tenantry's catalogue plus the types a tenant defines for the events it publishes
itself through `POST /api/v1/events` (app.webhooks.event_types does the work and the checks)."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint

from app.api.idempotency import idempotent
from app.api.schemas import list_schema
from app.security import api_scope, current_actor
from app.webhooks import event_types
from app.webhooks.schemas import EVENT_TYPE_NAME, EventTypeCreateArgs, EventTypeSchema, EventTypeUpdateArgs

blp = Blueprint("webhook_event_types_api", __name__, url_prefix="/api/v1",
                description="Event types: Tenantry's catalogue and the types you define for your own events.")
EventTypeList = list_schema(EventTypeSchema, "EventTypeList")
NAME_PARAMETER = [{
    "in": "path", "name": "name", "required": True,
    "description": "The name of one of your own event types (Tenantry's cannot be changed).",
    "schema": {"type": "string", "minLength": 3, "maxLength": 120, "pattern": EVENT_TYPE_NAME},
}]


@blp.route("/event-types", methods=["GET"])
@api_scope("webhooks:read")
@blp.response(200, EventTypeList)
def list_event_types():
    """Every event type you can publish and your endpoints can subscribe to, with an example payload each:
    Tenantry's catalogue (`source` platform) by name, then the types you defined (`source` tenant)."""
    return {"object": "list", "data": event_types.listing(g.actor.tenant_id), "has_more": False}


@blp.route("/event-types", methods=["POST"])
@api_scope("webhooks:write")
@idempotent
@blp.arguments(EventTypeCreateArgs)
@blp.response(201, EventTypeSchema)
def create_event_type(data: dict):
    """Define an event type for the events you publish yourself (`POST /events`); your endpoints can then
    subscribe to it. The name is lowercase words separated by dots (`order.shipped`), never one of
    Tenantry's own types (422) and unique among yours (409); the example is a JSON object of at most 16 KB.
    A tenant may define up to 200 types."""
    return _shown(event_types.create(current_actor(), g.actor.tenant_id, data))


@blp.route("/event-types/<name>", methods=["PATCH"], parameters=NAME_PARAMETER)
@api_scope("webhooks:write")
@blp.arguments(EventTypeUpdateArgs)
@blp.response(200, EventTypeSchema)
def update_event_type(data: dict, name: str):
    """Change one of your types' description or example, or deprecate it (it stays publishable, and
    subscribed endpoints keep receiving it, but it is no longer offered for new subscriptions)."""
    tenant_id = g.actor.tenant_id
    event_type = event_types.get(tenant_id, name)
    if data:
        event_type = event_types.update(current_actor(), tenant_id, name, data)
    return _shown(event_type)


@blp.route("/event-types/<name>", methods=["DELETE"], parameters=NAME_PARAMETER)
@api_scope("webhooks:write")
@blp.response(204)
def delete_event_type(name: str):
    """Delete one of your types: events of it can no longer be published (a 422); those already sent stay,
    and endpoints subscribed to it keep the name in their list."""
    event_types.delete(current_actor(), g.actor.tenant_id, name)
    return ""


def _shown(event_type) -> event_types.EventType:
    return event_types.EventType(event_type.name, event_type.description, event_type.example or {},
                                 event_type.deprecated, "tenant", event_type.created_at)
