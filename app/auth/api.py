"""API routes: the tenant's API keys (read-only over the API; keys are made in the portal)."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint

from app.api.schemas import CursorArgs, list_body, list_schema
from app.auth import apikeys
from app.auth.schemas import ApiKeySchema
from app.security import api_scope

blp = Blueprint("keys_api", __name__, url_prefix="/api/v1", description="API keys of your tenant.")
ApiKeyList = list_schema(ApiKeySchema, "ApiKeyList")


@blp.route("/api-keys", methods=["GET"])
@api_scope("keys:read")
@blp.arguments(CursorArgs, location="query", as_kwargs=True)
@blp.response(200, ApiKeyList)
def list_api_keys(limit: int, starting_after: str | None = None):
    """API keys, newest first. Secrets are never returned: only a masked form."""
    return list_body(apikeys.keys_slice(g.actor.tenant_id, limit, starting_after))
