"""Page limits (Flask-Limiter): every page request counts against the signed-in user's limit, or the
client IP's when signed out. The API is limited by the request gate instead (see service.py)."""

from __future__ import annotations

import logging

from flask import current_app, request
from flask_limiter import RequestLimit
from flask_limiter.util import get_remote_address
from flask_login import current_user

log = logging.getLogger(__name__)
UNLIMITED_ENDPOINTS = frozenset({"static", "vendor_asset", "api_docs_assets", "ops.livez", "ops.readyz",
                                 "metrics.scrape"})


def _signed_in() -> bool:
    return bool(getattr(current_user, "is_authenticated", False))


def subject() -> str:
    """Whose requests these are: the signed-in person, else the client IP."""
    if _signed_in():
        return f"user:{current_user.get_id()}"
    return f"ip:{get_remote_address()}"


def limit() -> str:
    config = current_app.config
    return config["RATELIMIT_PAGES_PER_USER"] if _signed_in() else config["RATELIMIT_PAGES_PER_IP"]


def exempt() -> bool:
    """Health checks, the metrics scrape, static files and inbound provider webhooks (/webhooks/…,
    authenticated by their signatures; a provider's retries must never be refused) are never limited."""
    return request.endpoint in UNLIMITED_ENDPOINTS or request.path.startswith("/webhooks/")


def on_breach(request_limit: RequestLimit) -> None:
    from app.ops.metrics import RATE_LIMITED

    scope = "user" if _signed_in() else "ip"
    RATE_LIMITED.labels("pages", scope).inc()
    log.warning("page limit %s exceeded by %s on %s", request_limit.limit, subject(), request.path)
