"""API schemas for webhook endpoints, messages (events), attempts and the event-type catalogue."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.api.schemas import CursorArgs

EVENT_TYPE = validate.Regexp(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", error="An event type such as invoice.paid.")


class WebhookEndpointSchema(Schema):
    object = fields.Constant("webhook_endpoint", dump_only=True)
    id = fields.String(dump_only=True)
    url = fields.String(dump_only=True)
    description = fields.String(dump_only=True)
    event_types = fields.List(fields.String(), dump_only=True, allow_none=True,
                              metadata={"description": "Subscribed event types; null: every type."})
    status = fields.String(dump_only=True, metadata={"enum": ["enabled", "disabled"]})
    disabled_reason = fields.String(dump_only=True)
    rate_limit = fields.Integer(dump_only=True, allow_none=True, metadata={"description": "Messages per second."})
    circuit_state = fields.String(dump_only=True, metadata={"enum": ["closed", "open", "half-open"]})
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class WebhookEndpointWithSecretSchema(WebhookEndpointSchema):
    secret = fields.String(dump_only=True, metadata={"description": "The signing secret (whsec_…), shown only now."})


class WebhookEndpointCreateArgs(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2048),
                        metadata={"description": "https URL that receives the events (public addresses only)."})
    description = fields.String(load_default="", validate=validate.Length(max=500))
    event_types = fields.List(fields.String(validate=EVENT_TYPE), load_default=None, allow_none=True,
                              validate=validate.Length(max=100),
                              metadata={"description": "Event types to receive; omit or null for all."})
    rate_limit = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=10_000))


class WebhookEndpointUpdateArgs(Schema):
    url = fields.String(validate=validate.Length(min=1, max=2048))
    description = fields.String(validate=validate.Length(max=500))
    event_types = fields.List(fields.String(validate=EVENT_TYPE), allow_none=True, validate=validate.Length(max=100))
    rate_limit = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=10_000))
    status = fields.String(validate=validate.OneOf(["enabled", "disabled"]),
                           metadata={"description": "disabled: nothing is sent until it is enabled again."})


class WebhookSecretSchema(Schema):
    object = fields.Constant("webhook_secret", dump_only=True)
    endpoint_id = fields.String(dump_only=True)
    secret = fields.String(dump_only=True)
    previous_valid_until = fields.DateTime(dump_only=True,
                                           metadata={"description": "The old secret also signs until then."})


class EventArgs(Schema):
    type = fields.String(required=True, validate=EVENT_TYPE)
    payload = fields.Dict(required=True, metadata={"description": "A JSON object, at most 256 KB."})
    idempotency_key = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=255),
                                    metadata={"description": "The same key again returns the first message."})


class PublishArgs(Schema):
    events = fields.List(fields.Nested(EventArgs), required=True, validate=validate.Length(min=1, max=100))


class EventSchema(Schema):
    object = fields.Constant("event", dump_only=True)
    id = fields.String(dump_only=True, metadata={"description": "msg_…: the webhook-id of every delivery."})
    type = fields.String(dump_only=True, attribute="event_type")
    payload = fields.Dict(dump_only=True)
    idempotency_key = fields.String(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)


class PublishedSchema(Schema):
    object = fields.Constant("list", dump_only=True)
    data = fields.List(fields.Nested(EventSchema), dump_only=True)
    created = fields.Integer(dump_only=True, metadata={"description": "How many were new (not repeats)."})


class WebhookAttemptSchema(Schema):
    object = fields.Constant("webhook_attempt", dump_only=True)
    id = fields.String(dump_only=True)
    endpoint_id = fields.String(dump_only=True)
    attempt = fields.Integer(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": ["succeeded", "failed", "dead"]})
    http_status = fields.Integer(dump_only=True, allow_none=True)
    response_body = fields.String(dump_only=True)
    duration_ms = fields.Integer(dump_only=True)
    error = fields.String(dump_only=True)
    next_attempt_at = fields.DateTime(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)


class EventTypeSchema(Schema):
    object = fields.Constant("event_type", dump_only=True)
    name = fields.String(dump_only=True)
    description = fields.String(dump_only=True)
    example = fields.Dict(dump_only=True)
    deprecated = fields.Boolean(dump_only=True)
    source = fields.String(dump_only=True, metadata={
        "enum": ["platform", "tenant"],
        "description": "platform: Tenantry's catalogue (read-only); tenant: one you defined for your own events."})
    created_at = fields.DateTime(dump_only=True, allow_none=True)


# A tenant-defined event type's name (app.webhooks.event_types.NAME): lowercase words separated by dots.
EVENT_TYPE_NAME = r"^[a-z0-9][a-z0-9_]*(\.[a-z0-9][a-z0-9_]*)+$"


class StrictBoolean(fields.Boolean):
    """true or false only (marshmallow's Boolean also takes 1, "yes", "on" …)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class EventTypeUpdateArgs(Schema):
    description = fields.String(validate=validate.Length(max=500))
    example = fields.Dict(metadata={"description": "An example payload: a JSON object of at most 16 KB."})
    deprecated = StrictBoolean(metadata={"description": "Deprecated types stay publishable but are no longer "
                                                        "offered when endpoints choose their types."})


class EventTypeCreateArgs(EventTypeUpdateArgs):
    name = fields.String(required=True, validate=[
        validate.Length(min=3, max=120),
        validate.Regexp(EVENT_TYPE_NAME, error="Lowercase words separated by dots, like order.shipped.")],
        metadata={"description": "Not one of Tenantry's own types; unique among yours."})


class MessageListArgs(CursorArgs):
    type = fields.String(validate=EVENT_TYPE, metadata={"description": "Only events of this type."})
