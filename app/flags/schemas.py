"""API schemas for flag evaluations: Tenantry's own (/api/v1/flags) and OFREP's (/ofrep/v1)."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.flags.engine import REASONS
from app.flags.models import FLAG_TYPES

KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
OFREP_ERROR_CODES = ["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"]
ETAG_HEADER = {"ETag": {"description": "Changes whenever any flag's value for you may have changed; send it back "
                                       "as If-None-Match to get a 304 while nothing did.",
                        "schema": {"type": "string"}}}
IF_NONE_MATCH = {"in": "header", "name": "If-None-Match", "required": False,
                 "description": "An ETag from an earlier answer: 304 Not Modified while it still holds.",
                 "schema": {"type": "string"}}


class FlagEvaluationSchema(Schema):
    object = fields.Constant("flag_evaluation", dump_only=True, metadata={"enum": ["flag_evaluation"]})
    key = fields.String(dump_only=True)
    type = fields.String(dump_only=True, metadata={"enum": list(FLAG_TYPES)})
    value = fields.Raw(dump_only=True, metadata={"description": "The value served to you (boolean, string, number, "
                                                               "object or array, by the flag's type)."})
    variant = fields.String(dump_only=True)
    reason = fields.String(dump_only=True, metadata={"enum": [r for r in REASONS if r != "ERROR"],
                                                     "description": "Why (OpenFeature's reasons)."})


class OfrepEvaluationSuccess(Schema):
    key = fields.String(required=True)
    value = fields.Raw(required=True)
    reason = fields.String(required=True, metadata={"enum": [r for r in REASONS if r != "ERROR"]})
    variant = fields.String(required=True)
    metadata = fields.Dict(keys=fields.String(), values=fields.Raw())


class OfrepEvaluationFailure(Schema):
    key = fields.String(required=True)
    errorCode = fields.String(required=True, metadata={"enum": OFREP_ERROR_CODES})  # noqa: N815 (OFREP's name)
    errorDetails = fields.String()  # noqa: N815


class OfrepFlagNotFound(Schema):
    key = fields.String(required=True)
    errorCode = fields.String(required=True, metadata={"enum": ["FLAG_NOT_FOUND"]})  # noqa: N815
    errorDetails = fields.String()  # noqa: N815


class OfrepBulkSuccess(Schema):
    flags = fields.List(fields.Nested(OfrepEvaluationSuccess), required=True)


class OfrepBulkFailure(Schema):
    errorCode = fields.String(required=True, metadata={"enum": OFREP_ERROR_CODES})  # noqa: N815
    errorDetails = fields.String()  # noqa: N815


class OfrepGeneralError(Schema):
    errorDetails = fields.String()  # noqa: N815


OFREP_REQUEST_BODY = {
    "required": False,
    "description": "The evaluation context. The targeting is always the API key's tenant: a `targetingKey` "
                   "(or any tenant id) in the context never selects another tenant.",
    "content": {"application/json": {"schema": {
        "type": "object",
        "properties": {"context": {"type": "object", "properties": {"targetingKey": {"type": "string"}}}},
    }}},
}
