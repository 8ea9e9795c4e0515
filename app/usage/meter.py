"""Counting API calls on the request path: one pipelined Redis call after the answer has been sent.

Counters live in one hash per tenant and hour, `us:{tenant}:<YYYYMMDDHH>`, field
`<api key id>|<method> <route>|<status class>`, and the hour is added to the set `us:{tenant}:hours`
so the rollup knows what to take. Everything carries the tenant's hash tag (one Redis Cluster slot).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Flask, Response, current_app, g, request
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
KEEP_SECONDS = 8 * 86400  # counters the rollup never took (it runs every minute) expire after 8 days


def hour_label(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H")


def counter_key(tenant_id: str, hour: str) -> str:
    return f"us:{{{tenant_id}}}:{hour}"


def hours_key(tenant_id: str) -> str:
    return f"us:{{{tenant_id}}}:hours"


def month_key(tenant_id: str, moment: datetime) -> str:
    """The month's billed (2xx) calls, read by the request gate to enforce hard quotas."""
    return f"us:{{{tenant_id}}}:calls:{moment.astimezone(UTC).strftime('%Y%m')}"


def status_class(status: int) -> str:
    return f"{status // 100}xx"


WARN_AT = (80, 100)  # percent of the included calls


def record(tenant_id: str, key_id: str, route: str, status: int, now: datetime,
           included: int | None = None) -> None:
    """Count one API call (fail-open: a Redis outage loses counts, never a request).

    The call that takes the month's billed count across 80% or 100% of `included` reports it: INCR is
    atomic, so exactly one call crosses each threshold.
    """
    from app.queue import get_fast_redis

    hour = hour_label(now)
    key = counter_key(tenant_id, hour)
    try:
        pipe = get_fast_redis().pipeline(transaction=False)
        pipe.hincrby(key, f"{key_id}|{route}|{status_class(status)}", 1)
        pipe.expire(key, KEEP_SECONDS)
        pipe.sadd(hours_key(tenant_id), hour)
        if 200 <= status < 300:
            pipe.incr(month_key(tenant_id, now))
            pipe.expire(month_key(tenant_id, now), 40 * 86400)
        replies = pipe.execute()
    except RedisError as exc:
        log.warning("usage not counted, Redis unavailable (%s)", type(exc).__name__)
        return
    if 200 <= status < 300 and included:
        used = int(replies[3])
        for percent in WARN_AT:
            threshold = -(-included * percent // 100)  # ceiling
            if used == threshold:
                from app.usage import service

                service.threshold_reached(tenant_id, percent, used, included, now)


def _after_api_request(response: Response) -> Response:
    api_key = g.get("api_key")
    if api_key is None or not request.path.startswith("/api/v1/") or request.url_rule is None:
        return response
    from app import clock
    from app.auth.keycache import cache

    tenant_id, key_id = api_key.tenant_id, api_key.id
    cached = cache.tenant(tenant_id)
    included = cached.included if cached else None
    route = f"{request.method} {request.url_rule.rule}"[:120]
    status, now = response.status_code, clock.now()
    app = current_app._get_current_object()

    def count() -> None:  # after the body has gone out: the client does not wait for it
        with app.app_context():
            record(tenant_id, key_id, route, status, now, included)

    response.call_on_close(count)
    return response


def init_app(app: Flask) -> None:
    app.after_request(_after_api_request)
