"""Inbound webhooks (the door): verify a provider's request, store its event once, acknowledge, and
process it in an RQ job that dispatches on the event type.

Receipt: the signature is checked (Stripe: `stripe.Webhook.construct_event`, 300 s tolerance), the
event is inserted with (provider, provider event id) unique, committed, and only then a job is
enqueued on the `billing` queue. A replay of an id answers 200 and enqueues nothing. The event row is
the source of truth: if the job is lost (Redis or a worker died, or the enqueue failed) the sweeper
re-enqueues every unprocessed event whose `next_attempt_at` has passed.

Processing: a job claims the event with a lease (a conditional UPDATE, so two jobs never run one event
at once), calls `HANDLERS[event.type]` (billing registers them; an unknown type is a no-op) and marks
it processed in the handler's own transaction. A handler error is recorded (attempts, last_error, the
next retry on a growing schedule) and re-raised so RQ records the failure (and retries a new event's
job once at once); after INBOUND_WEBHOOK_MAX_ATTEMPTS the sweeper leaves it to staff, who re-process
it from /admin/webhooks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import stripe
from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.errors import Conflict, NotFound, ServiceError
from app.extensions import db
from app.security import Actor
from app.webhooks import inbound_counts
from app.webhooks.inbound_models import InboundWebhookEvent

log = logging.getLogger(__name__)

Handler = Callable[[InboundWebhookEvent], None]
# Event type ("invoice.paid", …) → handler. A handler runs in the job's transaction, may be called
# more than once for one event (at-least-once) and raises to have the event retried.
HANDLERS: dict[str, Handler] = {}
QUEUE = "billing"
JOB = "app.webhooks.inbound_jobs.process_inbound"
JOB_TIMEOUT = 120  # seconds; the lease (INBOUND_WEBHOOK_LEASE_SECONDS) must be longer
RETRY_SCHEDULE = (60, 300, 1800, 7200, 18000, 36000)  # seconds after the 1st, 2nd, … failed attempt
MAX_ERROR = 1000


def handler(event_type: str) -> Callable[[Handler], Handler]:
    """Register the handler of one event type: `@inbound.handler("invoice.paid")`."""

    def register(func: Handler) -> Handler:
        if event_type in HANDLERS and HANDLERS[event_type] is not func:
            raise ValueError(f"a handler for {event_type} is already registered")
        HANDLERS[event_type] = func
        return func

    return register


class Rejected(ServiceError):
    """Not a genuine, recent provider request: 400, counted under `kind`."""

    status, type, title = 400, "webhook-signature-invalid", "Webhook signature invalid"
    kind = "signature_failed"


class Stale(Rejected):
    type, title, kind = "webhook-timestamp-stale", "Webhook timestamp too old", "stale"


class Unusable(Rejected):
    type, title, kind = "webhook-payload-invalid", "Webhook payload invalid", "invalid"


class NotConfigured(ServiceError):
    status, type, title = 503, "webhook-not-configured", "Webhook endpoint not configured"


@dataclass(frozen=True)
class Receipt:
    event_id: str
    duplicate: bool


def _settings() -> dict[str, Any]:
    return current_app.config


def verify_stripe(payload: bytes, sig_header: str | None, secret: str, tolerance: int) -> dict[str, Any]:
    """The event of a genuine Stripe request (parsed from the raw body), or Rejected/Stale/Unusable.

    Stripe's library raises the same SignatureVerificationError for a bad signature and a stale
    timestamp; checking the signature again without a tolerance tells them apart (a stale request is
    an authentic one that came too late, e.g. a replay).
    """
    if not sig_header:
        raise Rejected("The Stripe-Signature header is missing.")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("The body is not UTF-8, so its signature cannot match.") from None
    try:
        stripe.Webhook.construct_event(text, sig_header, secret, tolerance=tolerance)
    except stripe.SignatureVerificationError:
        try:
            stripe.WebhookSignature.verify_header(text, sig_header, secret, tolerance=None)
        except stripe.SignatureVerificationError:
            raise Rejected("No signature in Stripe-Signature matches the body.") from None
        raise Stale(f"The Stripe-Signature timestamp is more than {tolerance} seconds old.") from None
    except Exception:  # noqa: BLE001 - verified, but stripe cannot make an event of it (not JSON, not an object)
        raise Unusable("The body is not a JSON object.") from None
    event = json.loads(text)
    if (not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event["id"]
            or len(event["id"]) > 255 or not isinstance(event.get("type"), str) or not event["type"]
            or len(event["type"]) > 120):
        raise Unusable("The event has no usable id and type.")
    return event


def receive_stripe(payload: bytes, sig_header: str | None) -> Receipt:
    """POST /webhooks/stripe: verify, store once, count, enqueue. Raises Rejected (400) or NotConfigured."""
    config = _settings()
    secret = config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        log.error("POST /webhooks/stripe refused: STRIPE_WEBHOOK_SECRET is not set")
        raise NotConfigured("Stripe webhooks are not configured on this server.")
    try:
        event = verify_stripe(payload, sig_header, secret, config["INBOUND_WEBHOOK_TOLERANCE"])
    except Rejected as exc:
        inbound_counts.count("stripe", exc.kind)
        log.info("stripe webhook refused (%s): %s", exc.kind, exc.detail)
        raise
    return receive("stripe", event["id"], event["type"], event)


def receive(provider: str, provider_event_id: str, event_type: str, payload: dict[str, Any]) -> Receipt:
    """Store a verified event once and enqueue its processing; a known id is a duplicate (no job)."""
    now = clock.now()
    existing = _find(provider, provider_event_id)
    if existing is None:
        event = InboundWebhookEvent(provider=provider, provider_event_id=provider_event_id, type=event_type,
                                    payload=payload, received_at=now,
                                    next_attempt_at=now + timedelta(seconds=_settings()["INBOUND_WEBHOOK_LOST_AFTER"]))
        db.session.add(event)
        try:
            db.session.commit()
        except IntegrityError:  # the same id arrived at the same moment on another connection
            db.session.rollback()
            existing = _find(provider, provider_event_id)
            if existing is None:
                raise
        else:
            inbound_counts.count(provider, "accepted")
            _enqueue([event.id], retry_at_once=True)
            return Receipt(event.id, duplicate=False)
    inbound_counts.count(provider, "duplicate")
    return Receipt(existing.id, duplicate=True)


def _find(provider: str, provider_event_id: str) -> InboundWebhookEvent | None:
    return db.session.scalar(select(InboundWebhookEvent).where(
        InboundWebhookEvent.provider == provider, InboundWebhookEvent.provider_event_id == provider_event_id))


def _enqueue(event_ids: list[str], retry_at_once: bool = False) -> None:
    """Enqueue processing jobs (after commit). If Redis is out the events wait for the sweeper.

    A new event's job is retried once at once by RQ (a passing glitch); later retries are the sweeper's,
    on RETRY_SCHEDULE (RQ's delayed retries would need RQ's scheduler, which the worker does not run).
    """
    from rq import Retry

    from app.queue import get_queue

    try:
        queue = get_queue(QUEUE)
        for event_id in event_ids:
            queue.enqueue(JOB, event_id, retry=Retry(max=1) if retry_at_once else None, job_timeout=JOB_TIMEOUT,
                          description=f"process inbound webhook {event_id}")
    except RedisError as exc:
        log.warning("inbound webhook jobs not enqueued (%s); the sweeper will: %s", ", ".join(event_ids), exc)


def process(event_id: str) -> str:
    """Run the event's handler once; "processed", or "skipped" (already processed, running elsewhere, or
    gone). A handler error is recorded and re-raised. Safe to run twice."""
    config = _settings()
    now = clock.now()
    lease = now + timedelta(seconds=config["INBOUND_WEBHOOK_LEASE_SECONDS"])
    E = InboundWebhookEvent  # noqa: N806
    claimed = db.session.execute(
        update(E)
        .where(E.id == event_id, E.processed_at.is_(None), or_(E.locked_until.is_(None), E.locked_until <= now))
        .values(locked_until=lease, next_attempt_at=lease, attempts=E.attempts + 1, last_attempt_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not claimed:
        return "skipped"
    event = db.session.get(E, event_id, populate_existing=True)
    try:
        func = HANDLERS.get(event.type)
        if func is not None:
            func(event)
        event.processed_at, event.locked_until, event.next_attempt_at, event.last_error = clock.now(), None, None, ""
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        _record_failure(event_id, exc)
        raise
    return "processed"


def _record_failure(event_id: str, exc: Exception) -> None:
    event = db.session.get(InboundWebhookEvent, event_id, populate_existing=True)
    attempts = event.attempts
    if attempts >= _settings()["INBOUND_WEBHOOK_MAX_ATTEMPTS"]:
        retry_at = None  # given up: staff re-process it
    else:
        retry_at = clock.now() + timedelta(seconds=RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE)) - 1])
    event.last_error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
    event.locked_until, event.next_attempt_at = None, retry_at
    db.session.commit()
    log.warning("inbound webhook %s (%s %s) failed on attempt %d: %s", event.id, event.provider, event.type,
                attempts, event.last_error)


def sweep(limit: int = 500) -> int:
    """Re-enqueue unprocessed events whose time has come: a lost job (a minute after receipt), an
    expired lease, or a retry after a failure. Each gets a fresh grace period, so a queue backlog is
    not enqueued twice."""
    now = clock.now()
    grace = now + timedelta(seconds=_settings()["INBOUND_WEBHOOK_LEASE_SECONDS"])
    E = InboundWebhookEvent  # noqa: N806
    ids = list(db.session.scalars(
        select(E.id).where(E.processed_at.is_(None), E.next_attempt_at.is_not(None), E.next_attempt_at <= now)
        .order_by(E.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
    ))
    if ids:
        db.session.execute(update(E).where(E.id.in_(ids)).values(next_attempt_at=grace)
                           .execution_options(synchronize_session=False))
    db.session.commit()
    _enqueue(ids)
    return len(ids)


def reprocess(actor: Actor, event_id: str) -> InboundWebhookEvent:
    """Staff: run a failed event's handler again now (audited)."""
    event = db.session.get(InboundWebhookEvent, event_id)
    if event is None:
        raise NotFound("No such inbound event.")
    now = clock.now()
    if event.processed_at is not None:
        raise Conflict("This event has already been processed.")
    if event.locked_until is not None and event.locked_until > now:
        raise Conflict("This event is being processed right now.")
    if not event.last_error:
        raise Conflict("This event has not failed; it is waiting for its first run.")
    event.next_attempt_at = now + timedelta(seconds=_settings()["INBOUND_WEBHOOK_LEASE_SECONDS"])
    audit.record(actor, "webhooks.inbound_reprocessed",
                 targets=[Target("inbound_webhook", event.id, f"{event.provider} {event.type}")],
                 metadata={"provider": event.provider, "provider_event_id": event.provider_event_id,
                           "attempts": event.attempts, "last_error": event.last_error})
    db.session.commit()
    _enqueue([event.id])
    return event


STATUSES = ("processed", "pending", "failed")


def recent_events(status: str | None = None, limit: int = 50) -> list[InboundWebhookEvent]:
    """The latest inbound events, newest first, optionally of one status."""
    E = InboundWebhookEvent  # noqa: N806
    stmt = select(E).order_by(E.id.desc()).limit(limit)
    if status == "processed":
        stmt = stmt.where(E.processed_at.is_not(None))
    elif status == "failed":
        stmt = stmt.where(E.processed_at.is_(None), E.last_error != "")
    elif status == "pending":
        stmt = stmt.where(E.processed_at.is_(None), E.last_error == "")
    return list(db.session.scalars(stmt))
