"""API schemas for usage."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


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


class CurrentUsageSchema(_PeriodSchema):
    object = fields.Constant("usage", dump_only=True)
    remaining = fields.Integer(dump_only=True, allow_none=True)
    hard_limit = fields.Boolean(dump_only=True)


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
