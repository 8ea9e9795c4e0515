"""The OpenFeature Remote Evaluation Protocol (OFREP), so OpenFeature's OFREP providers work unchanged:
`POST /ofrep/v1/evaluate/flags/{key}` and the bulk `POST /ofrep/v1/evaluate/flags` (ETag, 304).

Authenticated by a tenant API key (`Authorization: Bearer`, scope flags:read). The targeting is always
the key's tenant: the context's `targetingKey` and attributes never select another tenant, so a missing
targeting key is never an error here. Errors have OFREP's shapes and status codes: 400 PARSE_ERROR (the
body is not a JSON object) or INVALID_CONTEXT (the context is not an object, or its targetingKey not a
string), 404 FLAG_NOT_FOUND, 401/403/429 as every API call (problem+json; 429 with Retry-After), 500
{errorDetails}.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Response, jsonify, request
from flask_smorest import Blueprint

from app.flags.api import caller_subject, etag_for, not_modified
from app.flags.engine import Evaluation
from app.flags.schemas import (
    ETAG_HEADER,
    IF_NONE_MATCH,
    OFREP_REQUEST_BODY,
    OfrepBulkFailure,
    OfrepBulkSuccess,
    OfrepEvaluationFailure,
    OfrepEvaluationSuccess,
    OfrepFlagNotFound,
    OfrepGeneralError,
)
from app.flags.snapshot import holder
from app.security import api_scope

log = logging.getLogger(__name__)
blp = Blueprint("ofrep", __name__, url_prefix="/ofrep/v1",
                description="OpenFeature Remote Evaluation Protocol: flags evaluated for the API key's tenant.")
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
COMMON = {
    "401": {"description": "Unauthorized: a missing, malformed, revoked or expired API key.", "content": PROBLEM},
    "403": {"description": "Forbidden: the key lacks flags:read, or the tenant is suspended.", "content": PROBLEM},
    "429": {"description": "Rate limit reached; retry after Retry-After seconds.", "content": PROBLEM,
            "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}}},
}
KEY_PARAMETER = [{"in": "path", "name": "key", "required": True, "description": "The flag's key.",
                  "schema": {"type": "string", "minLength": 1, "maxLength": 200}}]


class BadRequest(Exception):
    def __init__(self, code: str, details: str):
        super().__init__(details)
        self.code, self.details = code, details


def _context() -> dict[str, Any]:
    """The request's evaluation context (validated; its contents never change whose flags are evaluated)."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("PARSE_ERROR", f"The body is not JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise BadRequest("PARSE_ERROR", "The body must be a JSON object {\"context\": {...}}.")
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise BadRequest("INVALID_CONTEXT", "The context must be a JSON object.")
    if "targetingKey" in context and not isinstance(context["targetingKey"], str):
        raise BadRequest("INVALID_CONTEXT", "The context's targetingKey must be a string.")
    return context


def _success(evaluation: Evaluation, flag_type: str) -> dict[str, Any]:
    return {"key": evaluation.key, "value": evaluation.value, "reason": evaluation.reason,
            "variant": evaluation.variant, "metadata": {"flagType": flag_type}}


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


@blp.route("/evaluate/flags/<key>", methods=["POST"], parameters=KEY_PARAMETER)
@api_scope("flags:read")
@blp.doc(requestBody=OFREP_REQUEST_BODY, responses=COMMON)
@blp.response(200, OfrepEvaluationSuccess, description="The flag's value for the key's tenant.")
@blp.alt_response(400, schema=OfrepEvaluationFailure, description="PARSE_ERROR or INVALID_CONTEXT.")
@blp.alt_response(404, schema=OfrepFlagNotFound, description="FLAG_NOT_FOUND.")
@blp.alt_response(500, schema=OfrepGeneralError, description="Something went wrong on our side.")
def evaluate_flag(key: str):
    """OFREP single flag evaluation: {key, value, reason, variant, metadata}."""
    try:
        _context()
        subject = caller_subject()
        flag = holder.current().flags.get(key)
        if flag is None:
            return _json({"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": f"No flag {key!r}."}, 404)
        return _json(_success(holder.evaluate(key, subject), flag.type), 200)
    except BadRequest as exc:
        return _json({"key": key, "errorCode": exc.code, "errorDetails": exc.details}, 400)
    except Exception:
        log.exception("OFREP evaluation of %s failed", key)
        return _json({"errorDetails": "Something went wrong on our side."}, 500)


@blp.route("/evaluate/flags", methods=["POST"], parameters=[IF_NONE_MATCH])
@api_scope("flags:read")
@blp.doc(requestBody=OFREP_REQUEST_BODY, responses=COMMON)
@blp.response(200, OfrepBulkSuccess, headers=ETAG_HEADER, description="Every flag's value for the key's tenant.")
@blp.alt_response(304, description="Not modified: no flag's value changed since that ETag.", headers=ETAG_HEADER)
@blp.alt_response(400, schema=OfrepBulkFailure, description="PARSE_ERROR or INVALID_CONTEXT.")
@blp.alt_response(500, schema=OfrepGeneralError, description="Something went wrong on our side.")
def evaluate_flags():
    """OFREP bulk evaluation: every flag (and plan feature) for the key's tenant, with an ETag."""
    try:
        _context()
        subject = caller_subject()
        snapshot = holder.current()
        etag = etag_for(snapshot, subject)
        if not_modified(etag):
            return Response(status=304, headers={"ETag": etag})
        flags = [_success(holder.evaluate(key, subject), flag.type) for key, flag in sorted(snapshot.flags.items())]
        return _json({"flags": flags}, 200, {"ETag": etag})
    except BadRequest as exc:
        return _json({"errorCode": exc.code, "errorDetails": exc.details}, 400)
    except Exception:
        log.exception("OFREP bulk evaluation failed")
        return _json({"errorDetails": "Something went wrong on our side."}, 500)
