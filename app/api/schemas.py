"""Schemas shared by every API route: problems, list envelopes, cursor arguments."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

ID_PATTERN = r"^[a-z]{2,5}_[0-9a-z]{26}$"


class FieldErrorSchema(Schema):
    field = fields.String(required=True)
    message = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    request_id = fields.String()
    errors = fields.List(fields.Nested(FieldErrorSchema))
    missing_scope = fields.String()


class CursorArgs(Schema):
    """Cursor pagination: newest first; pass the last id you saw as starting_after."""

    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100),
                           metadata={"description": "How many items, 1–100 (default 20)."})
    starting_after = fields.String(validate=validate.Regexp(ID_PATTERN, error="Not a valid id."),
                                   metadata={"description": "An id from the previous page; items after it."})


def list_schema(item: type[Schema], name: str) -> type[Schema]:
    """The list envelope {object: "list", data: [...], has_more} for `item`."""
    return Schema.from_dict(
        {
            "object": fields.Constant("list", required=True, metadata={"enum": ["list"]}),
            "data": fields.List(fields.Nested(item), required=True),
            "has_more": fields.Boolean(required=True),
        },
        name=name,
    )


def list_body(slice_: object) -> dict:
    """Shape a db.Slice for list_schema."""
    return {"object": "list", "data": slice_.items, "has_more": slice_.has_more}
