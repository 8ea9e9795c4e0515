"""A circuit breaker per webhook endpoint, with Convoy's numbers, so a dead endpoint does not clog the queue.

closed → open when at least 70% of at least 10 attempts in the last 5 minutes failed → 30 s later one
probe delivery is let through (half-open) → its success closes the circuit, its failure opens it again.
While the circuit is open (or a probe is out), due deliveries to the endpoint are pushed back to when it
half-opens, without an HTTP call and without using up an attempt. A success that closes the circuit
brings the deliveries it pushed back forward to now.

Where the state lives:
- the state itself in the endpoint's columns (`circuit_state`, `circuit_opened_at`): durable, shown with
  the endpoint, and changed with conditional UPDATEs, so one worker alone takes the probe. In half_open,
  `circuit_opened_at` is when the probe was let through; a probe whose worker died is replaced once its
  lease (the request timeout + 60 s) has run out.
- the window of recent outcomes in Redis: a hash per endpoint (`whcb:{ep_…}`) of counts per 10 s
  bucket, pruned as it is read, expiring by itself. Counting there costs one round trip per attempt and no
  scan of the attempts table; if Redis loses it, the breaker only forgets the last minutes' outcomes (it
  fails open, towards sending), and the state in the database stands.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, update
from sqlalchemy.orm.attributes import set_committed_value

from app.extensions import db
from app.webhooks.outbound_models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

WINDOW = timedelta(minutes=5)
BUCKET_SECONDS = 10
MIN_ATTEMPTS = 10
FAILURE_RATIO = 0.70
HALF_OPEN_AFTER = timedelta(seconds=30)
BUCKETS = int(WINDOW.total_seconds()) // BUCKET_SECONDS


def _key(endpoint_id: str) -> str:
    return f"whcb:{{{endpoint_id}}}"


def _redis():
    from app.queue import get_redis

    return get_redis()


def count(endpoint_id: str, at: datetime, ok: int = 0, failed: int = 0) -> tuple[int, int]:
    """Count attempts' outcomes (one round trip); return (attempts, failures) in the window ending at `at`."""
    from redis.exceptions import RedisError

    bucket = int(at.timestamp()) // BUCKET_SECONDS
    key = _key(endpoint_id)
    try:
        pipe = _redis().pipeline(transaction=False)
        if ok:
            pipe.hincrby(key, f"{bucket}:ok", ok)
        if failed:
            pipe.hincrby(key, f"{bucket}:fail", failed)
        pipe.expire(key, int(WINDOW.total_seconds()) + 60)
        pipe.hgetall(key)
        fields = pipe.execute()[-1]
        attempts = failures = 0
        old = []
        for name, value in fields.items():
            name = name.decode() if isinstance(name, bytes) else name
            number, _, kind = name.partition(":")
            if int(number) <= bucket - BUCKETS:
                old.append(name)
                continue
            attempts += int(value)
            failures += int(value) if kind == "fail" else 0
        if old:
            _redis().hdel(key, *old)
    except RedisError as exc:  # fail open: without the window the circuit stays as it is
        log.warning("circuit breaker window for %s not counted: %s", endpoint_id, exc)
        return 0, 0
    return attempts, failures


def count_successes(successes: dict[str, int], at: datetime) -> None:
    """Add successes to the windows of several endpoints (one round trip). A success cannot open a
    circuit, so a round counts them at its end, or just before its next failure to the same endpoint."""
    from redis.exceptions import RedisError

    successes = {k: v for k, v in successes.items() if v}
    if not successes:
        return
    bucket = int(at.timestamp()) // BUCKET_SECONDS
    try:
        pipe = _redis().pipeline(transaction=False)
        for endpoint_id, n in successes.items():
            pipe.hincrby(_key(endpoint_id), f"{bucket}:ok", n)
            pipe.expire(_key(endpoint_id), int(WINDOW.total_seconds()) + 60)
        pipe.execute()
    except RedisError as exc:
        log.warning("circuit breaker windows not counted: %s", exc)


def forget(endpoint_id: str) -> None:
    """Start the window afresh (the circuit closed)."""
    from redis.exceptions import RedisError

    with contextlib.suppress(RedisError):
        _redis().delete(_key(endpoint_id))


def trips(attempts: int, failures: int) -> bool:
    return attempts >= MIN_ATTEMPTS and failures >= FAILURE_RATIO * attempts


def probe_lease() -> timedelta:
    return timedelta(seconds=current_app.config["WEBHOOK_TIMEOUT"] + 60)


def gate(endpoint: WebhookEndpoint, now: datetime) -> tuple[bool, datetime | None]:
    """May a delivery to this endpoint go now? (probe, None): yes, as the probe if probe is True;
    (False, when): no, push it back to `when`. Taking the probe is a conditional UPDATE, in the caller's
    transaction (commit it before sending)."""
    state, since = endpoint.circuit_state or "closed", endpoint.circuit_opened_at
    if state == "closed" or since is None:
        return False, None
    if state == "open":
        if now < since + HALF_OPEN_AFTER:
            return False, since + HALF_OPEN_AFTER
    elif now < since + probe_lease():  # half_open: a probe is out
        return False, max(since + HALF_OPEN_AFTER, now + timedelta(seconds=1))
    E = WebhookEndpoint  # noqa: N806
    taken = db.session.execute(
        update(E).where(E.id == endpoint.id, E.circuit_state == state, E.circuit_opened_at == since)
        .values(circuit_state="half_open", circuit_opened_at=now).execution_options(synchronize_session=False)
    ).rowcount
    if not taken:  # another worker took the probe
        return False, now + HALF_OPEN_AFTER
    set_committed_value(endpoint, "circuit_state", "half_open")
    set_committed_value(endpoint, "circuit_opened_at", now)
    log.info("webhook endpoint %s: circuit half-open, one probe let through", endpoint.id)
    return True, None


def _audit(endpoint: WebhookEndpoint, action: str, **metadata) -> None:
    from app.audit import service as audit
    from app.security import Actor

    audit.record(Actor.system("webhooks"), action, tenant_id=endpoint.tenant_id,
                 targets=[audit.Target("webhook_endpoint", endpoint.id, endpoint.url)], metadata=metadata)


def open_(endpoint: WebhookEndpoint, now: datetime, reason: str) -> None:
    """Open the circuit (in the caller's transaction). Audited when it trips from closed; a failed probe
    re-opening it is only logged (it would otherwise write a record every HALF_OPEN_AFTER for days)."""
    if (endpoint.circuit_state or "closed") == "closed":
        _audit(endpoint, "webhook_endpoint.circuit_opened", reason=reason)
    endpoint.circuit_state, endpoint.circuit_opened_at = "open", now
    log.warning("webhook endpoint %s: circuit open until %s (%s)", endpoint.id,
                (now + HALF_OPEN_AFTER).isoformat(), reason)


def close(endpoint: WebhookEndpoint, now: datetime) -> None:
    """Close the circuit after a successful probe (in the caller's transaction): the window starts afresh and
    the deliveries pushed back while it was open are due now (the sweeper enqueues them)."""
    _audit(endpoint, "webhook_endpoint.circuit_closed", opened_at=endpoint.circuit_opened_at)
    endpoint.circuit_state, endpoint.circuit_opened_at = "closed", None
    forget(endpoint.id)
    D = WebhookDelivery  # noqa: N806
    db.session.execute(
        update(D).where(D.endpoint_id == endpoint.id, D.status.in_(("pending", "failed")), D.next_attempt_at > now,
                        D.next_attempt_at <= now + HALF_OPEN_AFTER + timedelta(seconds=1),
                        or_(D.locked_until.is_(None), D.locked_until <= now))
        .values(next_attempt_at=now, queued_until=None).execution_options(synchronize_session=False)
    )
    log.info("webhook endpoint %s: circuit closed (the probe succeeded)", endpoint.id)
