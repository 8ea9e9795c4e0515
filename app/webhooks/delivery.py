"""Sending webhooks: one signed POST per attempt, each attempt recorded, retries on a schedule.

An attempt: claim the delivery (a conditional UPDATE with a lease, so two jobs never send it at once),
check the URL against the SSRF guard and resolve it, POST the JSON body with the Standard Webhooks
headers to the checked address (pinned: the name goes only into Host, SNI and certificate checks), 15 s
timeout, no redirects. Only 2xx is success. 410 Gone disables the endpoint (audited, `endpoint.disabled`
published). Anything else is retried after WEBHOOK_RETRY_SCHEDULE[n] seconds (±20% jitter); 429 and 503
wait for Retry-After instead, clamped between the schedule's delay and its longest step. After the last
step the delivery is dead. An endpoint failing without a single success for WEBHOOK_AUTO_DISABLE_AFTER
(5 days) is disabled.

The database is the scheduler: a retry is only a `next_attempt_at`; the sweeper (every few seconds)
enqueues due deliveries whose job is missing — never enqueued, lost with Redis, or a killed worker's —
so delivery is at-least-once and every attempt carries the same `webhook-id` (the message id).

Throughput. A job delivers a batch of deliveries (WEBHOOK_BATCH_SIZE) and HTTP connections are reused
through a module-level urllib3 PoolManager, keyed by (address, port, SNI name). RQ's default Worker forks
a work horse per job, so each job would start with an empty pool and pay a fork plus a TCP and TLS
handshake per endpoint; `worker.py webhooks` therefore runs an RQ SimpleWorker (no fork): the pool lives
for the worker's life and a batch costs one job. SimpleWorker still enforces job timeouts (SIGALRM); the
trade-off is that a job that corrupts the process takes the worker down with it — acceptable for this
code path, and the sweeper re-enqueues whatever such a worker held once its lease expires. Run more
webhook workers (processes or hosts) to deliver in parallel.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3
from flask import current_app
from sqlalchemy import or_, select, update

from app import clock
from app.audit.service import iso
from app.extensions import db
from app.security import Actor
from app.webhooks import outbound, signing, ssrf
from app.webhooks.outbound_models import (
    MAX_RESPONSE_BYTES,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)

log = logging.getLogger(__name__)

SYSTEM = Actor.system("webhooks")
USER_AGENT = "Tenantry-Webhooks/1.0"
MAX_ERROR = 1000
_pool: urllib3.PoolManager | None = None


def pool_manager() -> urllib3.PoolManager:
    """The process's connection pools (one per destination address, port and TLS name)."""
    global _pool
    if _pool is None:
        try:
            import certifi

            ca_certs = certifi.where()
        except ImportError:  # pragma: no cover - certifi ships with requirements.txt
            ca_certs = None
        _pool = urllib3.PoolManager(num_pools=200, maxsize=4, cert_reqs="CERT_REQUIRED", ca_certs=ca_certs)
    return _pool


@dataclass
class Response:
    """What one attempt got back (status None: no HTTP answer, see error)."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str = ""
    duration_ms: int = 0


def _cut_headers(headers: Any) -> dict[str, str]:
    out, size = {}, 0
    for name, value in headers.items():
        size += len(name) + len(value) + 4
        if size > MAX_RESPONSE_BYTES:
            break
        out[name] = value
    return out


def post(destination: ssrf.Destination, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """POST to the checked address, pinned; never follows redirects; reads at most 20 KB of the answer."""
    started = time.monotonic()
    pool_kwargs: dict[str, Any] = {}
    if destination.scheme == "https":
        pool_kwargs = {"assert_hostname": destination.host, "server_hostname": destination.host}
    out = Response()
    try:
        pool = pool_manager().connection_from_host(destination.address, destination.port, destination.scheme,
                                                   pool_kwargs=pool_kwargs)
        answer = pool.urlopen(
            "POST", destination.target, body=body,
            headers={"Host": destination.host_header, "Content-Type": "application/json", "User-Agent": USER_AGENT,
                     **headers},
            redirect=False, retries=False, assert_same_host=False, preload_content=False,
            timeout=urllib3.Timeout(connect=min(5.0, timeout), read=timeout),
        )
        chunks, size, complete = [], 0, False
        while size <= MAX_RESPONSE_BYTES:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"no complete answer within {timeout:g} s")
            chunk = answer.read(8192)
            if not chunk:
                complete = True
                break
            chunks.append(chunk)
            size += len(chunk)
        if not complete:
            answer.close()  # the rest is not read: drop the connection rather than reuse it
        answer.release_conn()
        out.status, out.headers = answer.status, _cut_headers(answer.headers)
        out.body = b"".join(chunks)[:MAX_RESPONSE_BYTES].decode("utf-8", "replace")
    except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
    out.duration_ms = int((time.monotonic() - started) * 1000)
    return out


def body_of(message: WebhookMessage) -> bytes:
    """The JSON body (the same bytes on every attempt): type, timestamp of the event, and its data."""
    envelope = {"type": message.event_type, "timestamp": iso(message.created_at), "data": message.payload}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date), if any."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - clock.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def next_delay(failed_attempts: int, response: Response | None = None) -> float | None:
    """Seconds until the next attempt after `failed_attempts` failures, or None: dead-letter it."""
    schedule = current_app.config["WEBHOOK_RETRY_SCHEDULE"]
    if failed_attempts > len(schedule):
        return None
    base = schedule[failed_attempts - 1]
    delay = base * random.uniform(0.8, 1.2)
    if response is not None and response.status in (429, 503):
        asked = retry_after(response.headers)
        if asked is not None:
            delay = min(max(asked, delay), max(max(schedule), delay))
    return delay


def _claim(delivery_id: str) -> bool:
    now = clock.now()
    lease = now + timedelta(seconds=current_app.config["WEBHOOK_TIMEOUT"] + 60)
    D = WebhookDelivery  # noqa: N806
    claimed = db.session.execute(
        update(D).where(D.id == delivery_id, D.status.in_(("pending", "failed")), D.next_attempt_at <= now,
                        or_(D.locked_until.is_(None), D.locked_until <= now))
        .values(locked_until=lease).execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return bool(claimed)


def _throttled(endpoint: WebhookEndpoint) -> bool:
    """True if the endpoint's messages-per-second limit is used up for this second (Redis counter)."""
    if not endpoint.rate_limit:
        return False
    from redis.exceptions import RedisError

    from app.queue import get_redis

    key = f"whrl:{{{endpoint.id}}}:{int(clock.now().timestamp())}"
    try:
        pipe = get_redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, 5)
        count = pipe.execute()[0]
    except RedisError:
        return False  # fail open: the limit protects the receiver, not us
    return count > endpoint.rate_limit


def deliver_one(delivery_id: str) -> str:
    """Make one attempt of a due delivery; "skipped" if it is not due, sent or running elsewhere."""
    if not _claim(delivery_id):
        return "skipped"
    delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
    endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id, populate_existing=True)
    now = clock.now()
    if endpoint.status != "enabled":
        delivery.status, delivery.next_attempt_at, delivery.locked_until = "dead", None, None
        db.session.commit()
        return "endpoint_disabled"
    if _throttled(endpoint):
        delivery.next_attempt_at = now + timedelta(seconds=1 + random.random() / 2)
        delivery.locked_until = delivery.queued_until = None
        db.session.commit()
        return "throttled"
    message = db.session.get(WebhookMessage, delivery.message_id)
    body = body_of(message)
    try:
        destination = ssrf.check(endpoint.url, current_app.config)
        headers = signing.headers(message.id, int(now.timestamp()), body, outbound.signing_secrets(endpoint))
    except ssrf.BlockedDestination as exc:
        destination, response = None, Response(error=f"Blocked: {exc}"[:MAX_ERROR])
    db.session.commit()  # no transaction stays open during the request
    if destination is not None:
        response = post(destination, body, headers, current_app.config["WEBHOOK_TIMEOUT"])
    return _record(delivery_id, response)


def _record(delivery_id: str, response: Response) -> str:
    delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
    endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id, populate_existing=True)
    now = clock.now()
    number = delivery.attempts + 1
    succeeded = response.status is not None and 200 <= response.status < 300
    next_at = None
    if succeeded:
        status = "succeeded"
        endpoint.failing_since, endpoint.last_success_at = None, now
    elif response.status == 410:
        status = "dead"
        outbound.disable(SYSTEM, endpoint, "The endpoint answered 410 Gone.")
    else:
        delay = next_delay(number, response)
        status = "dead" if delay is None else "failed"
        next_at = None if delay is None else now + timedelta(seconds=delay)
        endpoint.failing_since = endpoint.failing_since or now
        limit = current_app.config["WEBHOOK_AUTO_DISABLE_AFTER"]
        if now - endpoint.failing_since >= limit:
            hours = int(limit.total_seconds() // 3600)
            outbound.disable(SYSTEM, endpoint, f"Every attempt failed for {hours} hours, without a success.")
    db.session.add(WebhookAttempt(
        tenant_id=delivery.tenant_id, delivery_id=delivery.id, message_id=delivery.message_id,
        endpoint_id=delivery.endpoint_id, attempt=number, status=status, http_status=response.status,
        response_headers=response.headers, response_body=response.body, duration_ms=response.duration_ms,
        error=response.error or ("" if succeeded else f"HTTP {response.status}"), next_attempt_at=next_at,
        created_at=now,
    ))
    delivery.status, delivery.attempts, delivery.last_attempt_at = status, number, now
    delivery.next_attempt_at, delivery.locked_until, delivery.queued_until = next_at, None, None
    db.session.commit()
    if not succeeded:
        log.info("webhook %s to %s: attempt %d failed (%s), %s", delivery.message_id, delivery.endpoint_id, number,
                 response.status or response.error[:100], status if next_at is None else f"retry at {iso(next_at)}")
    return status


def deliver(delivery_ids: list[str]) -> dict[str, int]:
    """Attempt each delivery of a batch that is due; counts per outcome. Safe to run twice."""
    outcomes: dict[str, int] = {}
    for delivery_id in delivery_ids:
        try:
            outcome = deliver_one(delivery_id)
        except Exception:  # one broken delivery must not stop the batch; its lease expires, the sweeper retries
            db.session.rollback()
            log.exception("webhook delivery %s failed unexpectedly", delivery_id)
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def sweep(limit: int = 2000) -> int:
    """Enqueue due deliveries whose job is missing (never enqueued, lost, or a dead worker's lease ran out).
    Each is marked queued for WEBHOOK_QUEUED_LEASE seconds so a backlog is not enqueued twice."""
    now = clock.now()
    D = WebhookDelivery  # noqa: N806
    ids = list(db.session.scalars(
        select(D.id).where(D.status.in_(("pending", "failed")), D.next_attempt_at.is_not(None),
                           D.next_attempt_at <= now, or_(D.queued_until.is_(None), D.queued_until <= now),
                           or_(D.locked_until.is_(None), D.locked_until <= now))
        .order_by(D.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
    ))
    if ids:
        until = now + timedelta(seconds=current_app.config["WEBHOOK_QUEUED_LEASE"])
        db.session.execute(update(D).where(D.id.in_(ids)).values(queued_until=until)
                           .execution_options(synchronize_session=False))
    db.session.commit()
    outbound.enqueue(ids)
    return len(ids)
