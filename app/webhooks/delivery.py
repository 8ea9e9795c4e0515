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
through a module-level urllib3 PoolManager (app/webhooks/http.py), keyed by (address, port, SNI name).
RQ's default Worker forks a work horse per job, so each job would start with an empty pool and pay a
fork plus a TCP and TLS handshake per endpoint; `worker.py webhooks` therefore runs an RQ SimpleWorker
(no fork): the pool lives for the worker's life and a batch costs one job. SimpleWorker still enforces
job timeouts (SIGALRM); the trade-off is that a job that corrupts the process takes the worker down with
it — acceptable for this code path, and the sweeper re-enqueues whatever such a worker held once its
lease expires. Run more webhook workers (processes or hosts) to deliver in parallel.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import insert, or_, select, update

from app import clock
from app.audit.service import iso
from app.db import new_id
from app.extensions import db
from app.ops import metrics
from app.security import Actor
from app.webhooks import circuit, endpoint_limit, outbound, signing, ssrf
from app.webhooks.http import MAX_ERROR, Response, post, retry_after
from app.webhooks.outbound_models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)

log = logging.getLogger(__name__)

SYSTEM = Actor.system("webhooks")
ROUND_SECONDS = 30  # a round stops starting requests after this long (see deliver())


def body_of(message: WebhookMessage) -> bytes:
    """The JSON body (the same bytes on every attempt): type, timestamp of the event, and its data."""
    envelope = {"type": message.event_type, "timestamp": iso(message.created_at), "data": message.payload}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


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


def _claim_many(delivery_ids: list[str], now: datetime, lease: datetime) -> list[str]:
    """Lease the due, unleased deliveries among `delivery_ids` (one conditional UPDATE … RETURNING);
    commits. Returns the ids claimed."""
    D = WebhookDelivery  # noqa: N806
    claimed = list(db.session.scalars(
        update(D).where(D.id.in_(delivery_ids), D.status.in_(("pending", "failed")), D.next_attempt_at <= now,
                        or_(D.locked_until.is_(None), D.locked_until <= now))
        .values(locked_until=lease).returning(D.id).execution_options(synchronize_session=False)
    ))
    db.session.commit()
    return claimed


def _lease(now: datetime) -> datetime:
    return now + timedelta(seconds=current_app.config["WEBHOOK_TIMEOUT"] + 60)


def _claim(delivery_id: str) -> bool:
    now = clock.now()
    return bool(_claim_many([delivery_id], now, _lease(now)))


@dataclass
class _Send:
    """One claimed delivery of a round, ready to POST, and then what came of it."""

    delivery_id: str
    endpoint_id: str
    tenant_id: str
    message_id: str
    attempts: int  # made before this one (the delivery is leased: no one else changes it meanwhile)
    destination: ssrf.Destination | None
    body: bytes
    headers: dict[str, str]
    probe: bool
    response: Response | None = None
    at: datetime | None = None


def _push_back(delivery: WebhookDelivery, until: datetime) -> None:
    """Not now, and no attempt used up: due again at `until` (the sweeper enqueues it then)."""
    delivery.next_attempt_at, delivery.locked_until, delivery.queued_until = until, None, None


def _prepare(delivery_ids: list[str], now: datetime, outcomes: dict[str, int]) -> list[_Send]:
    """Decide, for claimed deliveries, which to send now (and build their requests), which to push back
    (circuit open, rate limit) and which are dead (endpoint disabled); commits the decisions."""
    D, E = WebhookDelivery, WebhookEndpoint  # noqa: N806
    deliveries = {d.id: d for d in db.session.scalars(
        select(D).where(D.id.in_(delivery_ids)).execution_options(populate_existing=True))}
    endpoints = {e.id: e for e in db.session.scalars(
        select(E).where(E.id.in_({d.endpoint_id for d in deliveries.values()}))
        .execution_options(populate_existing=True))}
    messages = {m.id: m for m in db.session.scalars(
        select(WebhookMessage).where(WebhookMessage.id.in_({d.message_id for d in deliveries.values()})))}
    checked: dict[str, tuple[ssrf.Destination | None, str, list[str]]] = {}  # per endpoint, for this round
    sends: list[_Send] = []
    timestamp = int(now.timestamp())
    for delivery_id in delivery_ids:
        delivery = deliveries[delivery_id]
        endpoint = endpoints[delivery.endpoint_id]
        try:
            if endpoint.status != "enabled":
                delivery.status, delivery.next_attempt_at, delivery.locked_until = "dead", None, None
                _tally(outcomes, "endpoint_disabled")
                continue
            probe, until = circuit.gate(endpoint, now)
            if until is not None:
                _push_back(delivery, until)
                _tally(outcomes, "circuit_open")
                continue
            if endpoint_limit.used_up(endpoint):
                _push_back(delivery, now + timedelta(seconds=1 + random.random() / 2))
                _tally(outcomes, "throttled")
                continue
            if endpoint.id not in checked:
                try:
                    destination, blocked = ssrf.check(endpoint.url, current_app.config), ""
                except ssrf.BlockedDestination as exc:
                    destination, blocked = None, f"Blocked: {exc}"[:MAX_ERROR]
                checked[endpoint.id] = (destination, blocked, outbound.signing_secrets(endpoint))
            destination, blocked, keys = checked[endpoint.id]
            message = messages[delivery.message_id]
            body = body_of(message)
            send = _Send(delivery.id, endpoint.id, delivery.tenant_id, message.id, delivery.attempts, destination, body,
                         signing.headers(message.id, timestamp, body, keys), probe)
            if destination is None:
                send.response, send.at = Response(error=blocked), now
            sends.append(send)
        except Exception:  # one broken delivery must not stop the batch; its lease expires, the sweeper retries
            log.exception("webhook delivery %s could not be prepared", delivery_id)
            _tally(outcomes, "error")
    db.session.commit()  # no transaction stays open during the requests
    return sends


def _apply(send: _Send, endpoint: WebhookEndpoint) -> tuple[dict, dict, str]:
    """One answer: the attempt row to insert, the delivery's new state, and that status; moves the endpoint
    on (failing since, disabled) in the caller's transaction."""
    response, now = send.response, send.at
    number = send.attempts + 1
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
    attempt = {
        "id": new_id(WebhookAttempt.id_prefix), "tenant_id": send.tenant_id, "delivery_id": send.delivery_id,
        "message_id": send.message_id, "endpoint_id": send.endpoint_id, "attempt": number, "status": status,
        "http_status": response.status, "response_headers": response.headers, "response_body": response.body,
        "duration_ms": response.duration_ms,
        "error": response.error or ("" if succeeded else f"HTTP {response.status}"),
        "next_attempt_at": next_at, "created_at": now,
    }
    state = {"id": send.delivery_id, "status": status, "attempts": number, "last_attempt_at": now,
             "next_attempt_at": next_at, "locked_until": None, "queued_until": None}
    if not succeeded:
        log.info("webhook %s to %s: attempt %d failed (%s), %s", send.message_id, send.endpoint_id, number,
                 response.status or response.error[:100], status if next_at is None else f"retry at {iso(next_at)}")
    return attempt, state, status


def _record(sends: list[_Send], deferred: dict[str, datetime], circuits: dict[str, tuple[str, datetime]],
            outcomes: dict[str, int]) -> None:
    """Store a round's attempts, the deliveries pushed back by a circuit that opened during it, and circuit
    changes: one transaction (one delivery at a time if that fails, so one bad row spoils nothing else).
    Attempts are one multi-row INSERT and deliveries one UPDATE by primary key, run for every row."""
    D, E = WebhookDelivery, WebhookEndpoint  # noqa: N806

    def write(part: list[_Send], part_deferred: dict[str, datetime], part_circuits: dict) -> list[str]:
        endpoint_ids = {s.endpoint_id for s in part} | set(part_circuits)
        endpoints = {e.id: e for e in db.session.scalars(
            select(E).where(E.id.in_(endpoint_ids)).execution_options(populate_existing=True))}
        for endpoint_id, (change, at) in part_circuits.items():
            endpoint = endpoints[endpoint_id]
            if change == "closed" and endpoint.circuit_state == "half_open":
                circuit.close(endpoint, at)
            elif change == "reopen" and endpoint.circuit_state == "half_open":
                circuit.open_(endpoint, at, "the probe failed")
            elif change == "open" and endpoint.circuit_state == "closed":
                circuit.open_(endpoint, at, f"≥{circuit.FAILURE_RATIO:.0%} of the last attempts failed")
        applied = [_apply(s, endpoints[s.endpoint_id]) for s in part]
        if applied:
            db.session.execute(insert(WebhookAttempt), [a for a, _, _ in applied])
            db.session.execute(update(D), [d for _, d, _ in applied])
        if part_deferred:
            db.session.execute(update(D), [
                {"id": i, "next_attempt_at": until, "locked_until": None, "queued_until": None}
                for i, until in part_deferred.items()])
        db.session.commit()
        return [status for _, _, status in applied] + ["circuit_open"] * len(part_deferred)

    try:
        for status in write(sends, deferred, circuits):
            _tally(outcomes, status)
        return
    except Exception:
        db.session.rollback()
        log.exception("a round of %d webhook attempts could not be stored together; storing one by one", len(sends))
    for send in sends:
        try:
            _tally(outcomes, write([send], {}, {})[0])
        except Exception:
            db.session.rollback()
            log.exception("webhook delivery %s: attempt not stored", send.delivery_id)
            _tally(outcomes, "error")
    for delivery_id, until in deferred.items():
        try:
            write([], {delivery_id: until}, {})
        except Exception:
            db.session.rollback()
            log.exception("webhook delivery %s: not pushed back (its lease expires, then it is retried)", delivery_id)
    try:
        write([], {}, circuits)
    except Exception:
        db.session.rollback()
        log.exception("circuit changes not stored")


def _tally(outcomes: dict[str, int], outcome: str, n: int = 1) -> None:
    outcomes[outcome] = outcomes.get(outcome, 0) + n
    metrics.record_webhook_outcome(outcome, n)


def _more_due(now: datetime, limit: int, exclude: list[str]) -> list[str]:
    """Up to `limit` other due deliveries no one is sending, oldest first (row-locked, skipping locked rows,
    until the claim commits)."""
    D = WebhookDelivery  # noqa: N806
    return [i for i in db.session.scalars(
        select(D.id).where(D.status.in_(("pending", "failed")), D.next_attempt_at.is_not(None),
                           D.next_attempt_at <= now, or_(D.locked_until.is_(None), D.locked_until <= now))
        .order_by(D.next_attempt_at).limit(limit + len(exclude)).with_for_update(skip_locked=True)
    ) if i not in exclude][:limit]


def _round(delivery_ids: list[str], outcomes: dict[str, int], top_up: bool = False) -> list[str]:
    """Claim, prepare, send and record what fits in ROUND_SECONDS; returns the ids left for another round.
    With top_up, the round also takes other due deliveries up to WEBHOOK_BATCH_SIZE."""
    started = time.monotonic()
    now = clock.now()
    lease = _lease(now)
    extra = []
    if top_up and len(delivery_ids) < current_app.config["WEBHOOK_BATCH_SIZE"]:
        extra = _more_due(now, current_app.config["WEBHOOK_BATCH_SIZE"] - len(delivery_ids), delivery_ids)
    if not delivery_ids and not extra:
        db.session.commit()
        return []
    claimed = set(_claim_many(delivery_ids + extra, now, lease))
    skipped = len(set(delivery_ids) - claimed)
    if skipped:
        _tally(outcomes, "skipped", skipped)
    if not claimed:
        return []
    delivery_ids = delivery_ids + [i for i in extra if i in claimed]
    sends = _prepare([i for i in delivery_ids if i in claimed], now, outcomes)
    timeout = current_app.config["WEBHOOK_TIMEOUT"]
    deferred: dict[str, datetime] = {}  # delivery id → when: its endpoint's circuit opened during this round
    circuits: dict[str, tuple[str, datetime]] = {}  # endpoint id → its circuit's change
    done: list[_Send] = []
    left: list[str] = []
    successes: dict[str, int] = {}  # endpoint id → successes not yet counted in its circuit's window
    for send in sends:
        change = circuits.get(send.endpoint_id)
        if change is not None and change[0] in ("open", "reopen"):
            deferred[send.delivery_id] = change[1] + circuit.HALF_OPEN_AFTER
            continue
        if done and time.monotonic() - started > ROUND_SECONDS:
            left.append(send.delivery_id)
            continue
        if send.response is None:
            send.response = post(send.destination, send.body, send.headers, timeout)
            send.at = clock.now()
            metrics.WEBHOOK_DURATION.observe(send.response.duration_ms / 1000)
        done.append(send)
        ok = send.response.status is not None and 200 <= send.response.status < 300
        if send.probe:
            circuits[send.endpoint_id] = ("closed" if ok else "reopen", send.at)
        elif change is None and ok:
            successes[send.endpoint_id] = successes.get(send.endpoint_id, 0) + 1
        elif change is None and circuit.trips(*circuit.count(send.endpoint_id, send.at, failed=1,
                                                             ok=successes.pop(send.endpoint_id, 0))):
            circuits[send.endpoint_id] = ("open", send.at)
    circuit.count_successes(successes, clock.now())
    _record(done, deferred, circuits, outcomes)
    if left:  # give back the lease of what was not sent; the next round claims them again
        D = WebhookDelivery  # noqa: N806
        db.session.execute(update(D).where(D.id.in_(left), D.locked_until == lease).values(locked_until=None)
                           .execution_options(synchronize_session=False))
        db.session.commit()
    return left


def deliver(delivery_ids: list[str]) -> dict[str, int]:
    """Attempt each delivery of a batch that is due; counts per outcome. Safe to run twice.

    A batch goes in rounds: one UPDATE claims its due deliveries, three queries load them, their endpoints
    and messages, the requests go out one after another on pooled connections, and one transaction stores
    every attempt. A round stops starting requests after ROUND_SECONDS (a slow endpoint), stores what it
    has, and the next round claims the rest, so no lease runs out while its delivery is still unrecorded.

    The first round tops the batch up to WEBHOOK_BATCH_SIZE with other due deliveries, oldest first:
    `publish()` enqueues one job per message, and a job's fixed costs (RQ's bookkeeping, three commits) are
    then paid once per batch; the jobs of deliveries taken this way find nothing left to claim and end at once.
    """
    outcomes: dict[str, int] = {}
    pending = list(dict.fromkeys(delivery_ids))
    first = True
    while pending or first:
        try:
            pending = _round(pending, outcomes, top_up=first)
            first = False
        except Exception:  # leases expire and the sweeper retries whatever this round held
            db.session.rollback()
            log.exception("webhook delivery round failed unexpectedly (%d deliveries)", len(pending))
            _tally(outcomes, "error")
            break
    return outcomes


def deliver_one(delivery_id: str) -> str:
    """Make one attempt of a due delivery; "skipped" if it is not due, sent or running elsewhere."""
    outcomes = deliver([delivery_id])
    return next(iter(outcomes), "skipped")


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
