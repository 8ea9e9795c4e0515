"""API routes: webhook endpoints, publishing events to them, delivery attempts, the event catalogue."""

from __future__ import annotations

from datetime import UTC

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.api.idempotency import idempotent
from app.api.schemas import CursorArgs, list_body, list_schema
from app.security import api_scope, current_actor
from app.webhooks import outbound, queries, recovery
from app.webhooks.schemas import (
    EventSchema,
    MessageListArgs,
    PublishArgs,
    PublishedSchema,
    WebhookAttemptSchema,
    WebhookEndpointCreateArgs,
    WebhookEndpointSchema,
    WebhookEndpointUpdateArgs,
    WebhookEndpointWithSecretSchema,
    WebhookSecretSchema,
)

blp = Blueprint("webhooks_api", __name__, url_prefix="/api/v1",
                description="Webhook endpoints, the events sent to them, and their delivery attempts.")
EndpointList = list_schema(WebhookEndpointSchema, "WebhookEndpointList")
MessageList = list_schema(EventSchema, "EventList")
AttemptList = list_schema(WebhookAttemptSchema, "WebhookAttemptList")


@blp.route("/webhooks/endpoints", methods=["GET"])
@api_scope("webhooks:read")
@blp.arguments(CursorArgs, location="query", as_kwargs=True)
@blp.response(200, EndpointList)
def list_endpoints(limit: int, starting_after: str | None = None):
    """Your webhook endpoints, newest first."""
    return list_body(queries.endpoints_slice(g.actor.tenant_id, limit, starting_after))


@blp.route("/webhooks/endpoints", methods=["POST"])
@api_scope("webhooks:write")
@idempotent
@blp.arguments(WebhookEndpointCreateArgs)
@blp.response(201, WebhookEndpointWithSecretSchema)
def create_endpoint(data: dict):
    """Register an endpoint. The answer carries its signing secret, shown this once.

    The URL must be https and resolve to a public address (loopback, private, link-local, metadata
    and similar addresses are refused, now and at every delivery). The plan caps how many endpoints
    a tenant has.
    """
    endpoint, secret = outbound.create_endpoint(current_actor(), g.actor.tenant_id, data)
    return _with_secret(endpoint, secret)


@blp.route("/webhooks/endpoints/<endpoint_id>", methods=["GET"])
@api_scope("webhooks:read")
@blp.response(200, WebhookEndpointSchema)
def get_endpoint(endpoint_id: str):
    """One endpoint."""
    return outbound.get_endpoint(g.actor.tenant_id, endpoint_id)


@blp.route("/webhooks/endpoints/<endpoint_id>", methods=["PATCH"])
@api_scope("webhooks:write")
@blp.arguments(WebhookEndpointUpdateArgs)
@blp.response(200, WebhookEndpointSchema)
def update_endpoint(data: dict, endpoint_id: str):
    """Change an endpoint's URL, description, event types or rate limit; disable or enable it."""
    status = data.pop("status", None)
    tenant_id, actor = g.actor.tenant_id, current_actor()
    endpoint = outbound.get_endpoint(tenant_id, endpoint_id)
    if data:
        endpoint = outbound.update_endpoint(actor, tenant_id, endpoint_id, data)
    if status == "disabled":
        endpoint = outbound.disable_endpoint(actor, tenant_id, endpoint_id)
    elif status == "enabled":
        endpoint = outbound.enable_endpoint(actor, tenant_id, endpoint_id)
    return endpoint


@blp.route("/webhooks/endpoints/<endpoint_id>", methods=["DELETE"])
@api_scope("webhooks:write")
@blp.response(204)
def delete_endpoint(endpoint_id: str):
    """Remove an endpoint, its deliveries and their attempts. To pause it instead, PATCH its status."""
    outbound.delete_endpoint(current_actor(), g.actor.tenant_id, endpoint_id)
    return ""


@blp.route("/webhooks/endpoints/<endpoint_id>/rotate-secret", methods=["POST"])
@api_scope("webhooks:write")
@idempotent
@blp.response(200, WebhookSecretSchema)
def rotate_secret(endpoint_id: str):
    """A new signing secret, in use at once. The old one keeps signing too for 24 hours (both
    signatures are sent), so receivers can switch without missing a message."""
    endpoint, secret = outbound.rotate_secret(current_actor(), g.actor.tenant_id, endpoint_id)
    return {"endpoint_id": endpoint.id, "secret": secret,
            "previous_valid_until": endpoint.previous_secret_expires_at}


@blp.route("/events", methods=["POST"])
@api_scope("events:write")
@idempotent
@blp.arguments(PublishArgs)
@blp.response(202, PublishedSchema)
def publish_events(data: dict):
    """Publish 1–100 events to your endpoints subscribed to their types. Each event's type must be in
    the catalogue or one you defined (`GET /event-types`, `POST /event-types`), and its payload a JSON
    object of at most 256 KB. Delivery is at-least-once, signed (Standard Webhooks), retried for about
    27 hours."""
    published = outbound.publish_many(g.actor.tenant_id, data["events"])
    return {"data": [message for message, _ in published], "created": sum(new for _, new in published)}


@blp.route("/events", methods=["GET"])
@api_scope("webhooks:read")
@blp.arguments(MessageListArgs, location="query", as_kwargs=True)
@blp.response(200, MessageList)
def list_events(limit: int, starting_after: str | None = None, type: str | None = None):
    """Events published to your endpoints (by Tenantry or by you), newest first."""
    return list_body(queries.messages_slice(g.actor.tenant_id, limit, starting_after, type))


@blp.route("/events/<message_id>/attempts", methods=["GET"])
@api_scope("webhooks:read")
@blp.arguments(CursorArgs, location="query", as_kwargs=True)
@blp.response(200, AttemptList)
def list_attempts(message_id: str, limit: int, starting_after: str | None = None):
    """Every attempt to deliver one event, to each endpoint: HTTP status, answer (first 20 KB), time."""
    return list_body(queries.attempts_slice(g.actor.tenant_id, message_id, limit, starting_after))


def _with_secret(endpoint, secret: str) -> dict:
    """The endpoint's fields (as objects, for the response schema to serialise) and its secret."""
    names = [name for name in WebhookEndpointSchema._declared_fields if name != "object"]
    return {name: getattr(endpoint, name) for name in names} | {"secret": secret}


# --- recovery (app.webhooks.recovery) ----------------------------------------------------------------


class RecoverArgs(Schema):
    since = fields.AwareDateTime(load_default=None, default_timezone=UTC,
                                 metadata={"description": "Send again what failed since this moment "
                                                          "(at most 14 days back; omitted: 14 days back)."})


class RecoverySchema(Schema):
    object = fields.Constant("recovery", dump_only=True)
    id = fields.String(dump_only=True)
    endpoint_id = fields.String(dump_only=True)
    since = fields.DateTime(dump_only=True)
    until = fields.DateTime(dump_only=True, metadata={"description": "When it was asked for: what failed "
                                                                     "between `since` and this is sent again."})
    status = fields.String(dump_only=True, metadata={"enum": ["queued", "running", "succeeded", "failed"]})
    total = fields.Integer(dump_only=True, metadata={"description": "Failed or dead deliveries found."})
    done = fields.Integer(dump_only=True, metadata={"description": "How many were queued again so far (those "
                                                                   "being sent at that moment are skipped)."})
    error = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    finished_at = fields.DateTime(dump_only=True, allow_none=True)


@blp.route("/webhooks/endpoints/<endpoint_id>/recover", methods=["POST"])
@api_scope("webhooks:write")
@idempotent
@blp.arguments(RecoverArgs)
@blp.response(202, RecoverySchema)
def recover_endpoint(data: dict, endpoint_id: str):
    """Send again every failed or dead delivery to this endpoint since `since` (at most 14 days back),
    each with a fresh retry schedule starting now and the same `webhook-id` as before. Runs as a
    background job: poll the recovery (`GET …/recoveries/{id}`) for its progress. A disabled endpoint, or
    one with a recovery still running, is a 409."""
    return recovery.recover(current_actor(), g.actor.tenant_id, endpoint_id, data["since"])


@blp.route("/webhooks/endpoints/<endpoint_id>/recoveries/<recovery_id>", methods=["GET"])
@api_scope("webhooks:read")
@blp.response(200, RecoverySchema)
def get_recovery(endpoint_id: str, recovery_id: str):
    """A recovery's progress: queued, running (`done` of `total` so far), succeeded or failed."""
    return recovery.get(g.actor.tenant_id, endpoint_id, recovery_id)
