"""API schemas for API keys."""

from __future__ import annotations

from marshmallow import Schema, fields


class ApiKeySchema(Schema):
    object = fields.Constant("api_key", dump_only=True)
    id = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    masked = fields.String(dump_only=True, metadata={"description": "Prefix and last four characters."})
    scopes = fields.List(fields.String(), dump_only=True)
    status = fields.Method("_status", dump_only=True, metadata={"enum": ["active", "expired", "revoked"]})
    expires_at = fields.DateTime(dump_only=True, allow_none=True)
    last_used_at = fields.DateTime(dump_only=True, allow_none=True)
    revoked_at = fields.DateTime(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)

    def _status(self, key) -> str:
        from app import clock

        return key.status(clock.now())
