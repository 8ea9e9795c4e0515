"""Idempotency-Key on API POSTs: same key + same body → the stored response; other body → 409."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import Response, current_app, g, make_response, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.api.models import IdempotencyKey, PlatformIdempotencyKey
from app.errors import Conflict, Invalid
from app.extensions import db

HEADER = "Idempotency-Key"
MAX_LENGTH = 255


def _request_hash() -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _store() -> tuple[type, dict[str, str]]:
    """Where this caller's keys live: per tenant for tenant keys, per platform key on the staff API."""
    platform_key = g.get("platform_key")
    if platform_key is not None:
        return PlatformIdempotencyKey, {"platform_key_id": platform_key.id}
    return IdempotencyKey, {"tenant_id": g.actor.tenant_id}


def idempotent(view: Callable) -> Callable:
    """Wrap an API POST (inside api_scope, which sets the tenant) with Idempotency-Key handling."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not key or len(key) > MAX_LENGTH or not key.isprintable():
            raise Invalid(errors={HEADER: f"Use 1–{MAX_LENGTH} printable characters."})
        model, owner = _store()
        now = clock.now()
        oldest = now - current_app.config["IDEMPOTENCY_TTL"]
        request_hash, route = _request_hash(), request.path
        stored = db.session.scalar(select(model).filter_by(**owner, key=key))
        if stored is not None and stored.created_at < oldest:
            db.session.delete(stored)
            db.session.commit()
            stored = None
        if stored is not None:
            if stored.request_hash != request_hash:
                raise Conflict(f"This {HEADER} was used with a different request.")
            if stored.status_code is None:
                raise Conflict(f"A request with this {HEADER} is still in progress.", headers={"Retry-After": "1"})
            response = Response(stored.response_body, status=stored.status_code, mimetype="application/json")
            response.headers["Idempotent-Replayed"] = "true"
            return response
        row = model(**owner, key=key, route=route, request_hash=request_hash, created_at=now)
        db.session.add(row)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise Conflict(f"A request with this {HEADER} is still in progress.",
                           headers={"Retry-After": "1"}) from None
        row_id = row.id
        try:
            response = make_response(view(*args, **kwargs))
        except BaseException:
            db.session.rollback()
            db.session.execute(delete(model).where(model.id == row_id))
            db.session.commit()
            raise
        stored = db.session.get(model, row_id)
        stored.status_code, stored.response_body = response.status_code, response.get_data(as_text=True)
        db.session.commit()
        return response

    wrapper._idempotent = True  # type: ignore[attr-defined]
    return wrapper


def prune(older_than: timedelta) -> int:
    """Delete stored keys older than `older_than` (a periodic job)."""
    cutoff = clock.now() - older_than
    removed = 0
    for model in (IdempotencyKey, PlatformIdempotencyKey):
        removed += db.session.execute(delete(model).where(model.created_at < cutoff)).rowcount or 0
    db.session.commit()
    return removed
