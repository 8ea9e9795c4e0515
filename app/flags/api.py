"""API routes: every flag evaluated for the caller's tenant, with an ETag (304 while nothing changed)."""

from __future__ import annotations

import hashlib

from flask import Response, g, request
from flask_smorest import Blueprint

from app.api.schemas import list_schema
from app.errors import NotFound
from app.flags.engine import Evaluation, Subject, subject_of
from app.flags.schemas import ETAG_HEADER, IF_NONE_MATCH, KEY_PATTERN, FlagEvaluationSchema
from app.flags.snapshot import Snapshot, holder
from app.security import api_scope

blp = Blueprint("flags_api", __name__, url_prefix="/api/v1",
                description="Feature flags: what each flag serves your tenant, evaluated by Tenantry's rules.")
FlagEvaluationList = list_schema(FlagEvaluationSchema, "FlagEvaluationList")
KEY_PARAMETER = [{"in": "path", "name": "key", "required": True, "description": "The flag's key.",
                  "schema": {"type": "string", "pattern": KEY_PATTERN}}]


def caller_subject() -> Subject:
    """The API key's tenant, as rules see it (from the key cache: no SQL when warm)."""
    from app.auth.keycache import cache

    tenant = cache.tenant(g.actor.tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    return subject_of(tenant)


def etag_for(snapshot: Snapshot, subject: Subject) -> str:
    """Every flag's value for a tenant depends only on the snapshot's content and the tenant's attributes."""
    created = subject.created_at.isoformat() if subject.created_at else ""
    material = "|".join([snapshot.version, subject.id, subject.plan or "", subject.status, subject.country,
                         ",".join(sorted(subject.tags)), created])
    return '"' + hashlib.sha256(material.encode()).hexdigest()[:32] + '"'


def not_modified(etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
    return etag in tags or "*" in tags


def shown(evaluation: Evaluation, flag_type: str) -> dict:
    return {"object": "flag_evaluation", "key": evaluation.key, "type": flag_type, "value": evaluation.value,
            "variant": evaluation.variant, "reason": evaluation.reason}


@blp.route("/flags", methods=["GET"], parameters=[IF_NONE_MATCH])
@api_scope("flags:read")
@blp.response(200, FlagEvaluationList, headers=ETAG_HEADER)
@blp.alt_response(304, description="Not modified: no flag's value for you changed since that ETag.",
                  headers=ETAG_HEADER)
def list_flags():
    """Every flag (and every plan feature) evaluated for your tenant, by key. Evaluated in Tenantry's memory;
    poll with If-None-Match and you get a 304 (no body) until something you would see changes."""
    subject = caller_subject()
    snapshot = holder.current()
    etag = etag_for(snapshot, subject)
    if not_modified(etag):
        return Response(status=304, headers={"ETag": etag})
    data = [shown(holder.evaluate(key, subject), flag.type) for key, flag in sorted(snapshot.flags.items())]
    return {"object": "list", "data": data, "has_more": False}, 200, {"ETag": etag}


@blp.route("/flags/<key>", methods=["GET"], parameters=KEY_PARAMETER)
@api_scope("flags:read")
@blp.response(200, FlagEvaluationSchema)
def get_flag(key: str):
    """One flag evaluated for your tenant: its value, variant and why (OpenFeature's reason)."""
    subject = caller_subject()
    flag = holder.current().flags.get(key)
    if flag is None:
        raise NotFound(f"No flag {key!r}.")
    return shown(holder.evaluate(key, subject), flag.type)
