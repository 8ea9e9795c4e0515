"""API schemas for usage."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.usage.events import ID_MAX, MAX_BATCH


class DaysArgs(Schema):
    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=90),
                          metadata={"description": "How many days back, 1–90."})


class EndpointDaysArgs(DaysArgs):
    days = fields.Integer(load_default=7, validate=validate.Range(min=1, max=90),
                          metadata={"description": "How many days back, 1–90."})


class _PeriodSchema(Schema):
    metric = fields.String(dump_only=True)
    period_start = fields.DateTime(dump_only=True)
    period_end = fields.DateTime(dump_only=True)
    used = fields.Integer(dump_only=True)
    included = fields.Integer(dump_only=True, allow_none=True, metadata={"description": "null: unlimited"})


class MetricUsageSchema(Schema):
    """One metric fed by usage events, this period against the plan (quotas are reported, not enforced)."""

    metric = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    unit = fields.String(dump_only=True)
    aggregation = fields.String(dump_only=True, metadata={"enum": ["count", "sum", "max", "unique_count",
                                                                   "latest"]})
    used = fields.Decimal(as_string=True, dump_only=True, metadata={"description": "Exact, as a decimal string."})
    included = fields.Integer(dump_only=True, allow_none=True, metadata={"description": "null: no quota"})
    remaining = fields.Decimal(as_string=True, dump_only=True, allow_none=True)
    overage_units = fields.Decimal(as_string=True, dump_only=True)
    amount = fields.Function(lambda u: u.overage_amount.amount, dump_only=True,
                             metadata={"type": "integer", "description": "Overage so far, in minor units."})
    currency = fields.Function(lambda u: u.overage_amount.currency, dump_only=True, metadata={"type": "string"})


class CurrentUsageSchema(_PeriodSchema):
    object = fields.Constant("usage", dump_only=True)
    remaining = fields.Integer(dump_only=True, allow_none=True)
    hard_limit = fields.Boolean(dump_only=True)
    metrics = fields.List(fields.Nested(MetricUsageSchema), dump_only=True,
                          metadata={"description": "Metrics reported with usage events (the fields above are "
                                                   "API calls)."})


class OverageSchema(_PeriodSchema):
    object = fields.Constant("overage", dump_only=True)
    overage_units = fields.Integer(dump_only=True)
    unit_price = fields.Method("_unit_price", dump_only=True, allow_none=True,
                               metadata={"type": "string", "nullable": True,
                                         "description": "Minor units per unit over the quota (a decimal)."})
    amount = fields.Function(lambda u: u.overage_amount.amount, dump_only=True,
                             metadata={"type": "integer", "description": "Minor units so far this period."})
    currency = fields.Function(lambda u: u.overage_amount.currency, dump_only=True, metadata={"type": "string"})

    def _unit_price(self, usage) -> str | None:
        return str(usage.unit_price) if usage.unit_price is not None else None


class DaySchema(Schema):
    date = fields.Date(dump_only=True)
    api_calls = fields.Integer(dump_only=True)


class HistorySchema(Schema):
    object = fields.Constant("usage_history", dump_only=True)
    metric = fields.String(dump_only=True)
    days = fields.List(fields.Nested(DaySchema), dump_only=True)


class EndpointSchema(Schema):
    route = fields.String(dump_only=True)
    calls = fields.Integer(dump_only=True)
    errors = fields.Integer(dump_only=True)
    error_rate = fields.Float(dump_only=True)


class EndpointsSchema(Schema):
    object = fields.Constant("usage_endpoints", dump_only=True)
    days = fields.Integer(dump_only=True)
    data = fields.List(fields.Nested(EndpointSchema), dump_only=True)


class UsageEventSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(1, ID_MAX),
                       metadata={"description": "Your id for the event: an id seen before (kept well beyond the "
                                                "35 days an event may be late) is counted once."})
    metric = fields.String(required=True, validate=validate.Length(1, 40),
                           metadata={"description": "The code of a metric defined by the operator."})
    timestamp = fields.DateTime(metadata={"description": "RFC 3339 with a time zone; default now. At most 35 "
                                                         "days in the past and 5 minutes in the future."})
    properties = fields.Dict(keys=fields.String(), metadata={
        "description": "The metric's property (sum, max, latest: a number; unique_count: a string or integer)."})


class UsageEventBatchSchema(Schema):
    events = fields.List(fields.Nested(UsageEventSchema), required=True, validate=validate.Length(1, MAX_BATCH),
                         metadata={"description": f"1–{MAX_BATCH} events. All or nothing: one invalid event "
                                                  "refuses the batch, naming each bad event by its index."})


class UsageEventsAcceptedSchema(Schema):
    object = fields.Constant("usage_event_batch", dump_only=True)
    accepted = fields.Integer(dump_only=True, metadata={"description": "New events, counted."})
    duplicates = fields.Integer(dump_only=True, metadata={"description": "Events whose id was seen before: "
                                                                         "not counted again."})
