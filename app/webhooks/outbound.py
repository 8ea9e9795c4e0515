"""Outbound webhooks: tenants' endpoints, and publishing events to them.

`publish()` stores a message and one pending delivery per enabled endpoint that subscribes to its type,
in one transaction, and enqueues delivery jobs on the `webhooks` queue after commit. The database is the
truth: a delivery whose job is lost is enqueued again by the sweeper (app.webhooks.delivery.sweep).
`fan_out()` turns outbox events (app.events) into messages, idempotently (the outbox event id is the
message's idempotency key).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.audit import service as audit
from app.audit.service import Target, jsonable
from app.db import new_id
from app.errors import Invalid, NotFound
from app.events.models import OutboxEvent
from app.extensions import db
from app.security import Actor
from app.webhooks import catalogue, event_types, secrets, signing, ssrf
from app.webhooks.outbound_models import WebhookDelivery, WebhookEndpoint, WebhookMessage

log = logging.getLogger(__name__)

QUEUE = "webhooks"
MAX_PAYLOAD_BYTES = 256 * 1024
ROTATION_GRACE = timedelta(hours=24)  # the old secret keeps signing this long after a rotation (as Svix)


# --- endpoints ---------------------------------------------------------------------------------------


def _clean_endpoint(data: dict[str, Any], tenant_id: str, partial: bool = False) -> dict[str, Any]:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    if "url" in data or not partial:
        url = str(data.get("url") or "").strip()
        try:
            ssrf.check(url, current_app.config)
            out["url"] = url
        except ssrf.BlockedDestination as exc:
            errors["url"] = str(exc)
    if "description" in data:
        out["description"] = event_types.clean_description(data.get("description"), errors)
    if "event_types" in data:
        types = data.get("event_types") or None
        if types is not None:
            if not isinstance(types, list | tuple) or not all(isinstance(t, str) for t in types):
                errors["event_types"] = "A list of event type names."
            else:
                unknown = sorted(set(types) - event_types.known_types(tenant_id))
                if unknown:
                    errors["event_types"] = f"Unknown event types: {', '.join(unknown)}."
                types = sorted(set(types))
        out["event_types"] = types
    if "rate_limit" in data:
        limit = data.get("rate_limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10_000):
            errors["rate_limit"] = "Messages per second, 1 to 10000 (or none)."
        out["rate_limit"] = limit
    if errors:
        raise Invalid("Some fields need attention.", errors=errors)
    return out


def get_endpoint(tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    """A tenant's endpoint; another tenant's id, or anything not shaped like an id, is NotFound."""
    from app.db import is_id

    if not is_id(endpoint_id, "ep"):  # never sent to the database (PostgreSQL refuses NUL characters)
        raise NotFound("No such webhook endpoint.")
    endpoint = db.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id,
                                                               WebhookEndpoint.tenant_id == tenant_id))
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def _check_plan_allows_another(tenant_id: str) -> None:
    """Conflict when the tenant's plan has no room for one more endpoint (max_webhook_endpoints)."""
    from sqlalchemy import func

    from app.errors import Conflict
    from app.tenancy.models import Tenant

    tenant = db.session.get(Tenant, tenant_id)
    limit = tenant.plan.max_webhook_endpoints if tenant is not None else None
    if limit is None:
        return
    count = db.session.scalar(select(func.count()).select_from(WebhookEndpoint)
                              .where(WebhookEndpoint.tenant_id == tenant_id))
    if count >= limit:
        raise Conflict(f"The {tenant.plan.name} plan allows {limit} webhook endpoint{'s' if limit != 1 else ''}; "
                       f"remove one or upgrade the plan for more.")


def create_endpoint(actor: Actor, tenant_id: str, data: dict[str, Any]) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint (URL checked against the SSRF guard). Returns it and its signing secret,
    which is shown once and stored only encrypted."""
    fields = _clean_endpoint(data, tenant_id)
    _check_plan_allows_another(tenant_id)
    secret = signing.generate_secret()
    now = clock.now()
    endpoint = WebhookEndpoint(tenant_id=tenant_id, secret_encrypted=secrets.encrypt(secret), created_at=now,
                               updated_at=now, status="enabled", **fields)
    db.session.add(endpoint)
    db.session.flush()
    audit.record(actor, "webhook_endpoint.created", tenant_id=tenant_id,
                 targets=[Target("webhook_endpoint", endpoint.id, endpoint.url)],
                 changes={k: [None, v] for k, v in fields.items()})
    db.session.commit()
    return endpoint, secret


def update_endpoint(actor: Actor, tenant_id: str, endpoint_id: str, data: dict[str, Any]) -> WebhookEndpoint:
    """Change an endpoint's URL, description, event types or rate limit."""
    endpoint = get_endpoint(tenant_id, endpoint_id)
    fields = _clean_endpoint(data, tenant_id, partial=True)
    changes = {k: [getattr(endpoint, k), v] for k, v in fields.items() if getattr(endpoint, k) != v}
    for key, value in fields.items():
        setattr(endpoint, key, value)
    endpoint.updated_at = clock.now()
    audit.record(actor, "webhook_endpoint.updated", tenant_id=tenant_id,
                 targets=[Target("webhook_endpoint", endpoint.id, endpoint.url)], changes=changes)
    db.session.commit()
    return endpoint


def rotate_secret(actor: Actor, tenant_id: str, endpoint_id: str,
                  grace: timedelta = ROTATION_GRACE) -> tuple[WebhookEndpoint, str]:
    """A new signing secret; the old one also signs for `grace` (both signatures sent)."""
    endpoint = get_endpoint(tenant_id, endpoint_id)
    secret = signing.generate_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = clock.now() + grace
    endpoint.secret_encrypted = secrets.encrypt(secret)
    endpoint.updated_at = clock.now()
    audit.record(actor, "webhook_endpoint.secret_rotated", tenant_id=tenant_id,
                 targets=[Target("webhook_endpoint", endpoint.id, endpoint.url)],
                 metadata={"previous_valid_until": endpoint.previous_secret_expires_at})
    db.session.commit()
    return endpoint, secret


def signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    """The secrets to sign with now: the current one, and the previous one during its grace."""
    out = [secrets.decrypt(endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and endpoint.previous_secret_expires_at \
            and endpoint.previous_secret_expires_at > clock.now():
        out.append(secrets.decrypt(endpoint.previous_secret_encrypted))
    return out


def disable(actor: Actor, endpoint: WebhookEndpoint, reason: str) -> None:
    """Disable an endpoint in the caller's transaction: audited, and `endpoint.disabled` published."""
    from app.events import service as events

    if endpoint.status == "disabled":
        return
    endpoint.status, endpoint.disabled_reason, endpoint.disabled_at = "disabled", reason[:500], clock.now()
    endpoint.updated_at = clock.now()
    audit.record(actor, "webhook_endpoint.disabled", tenant_id=endpoint.tenant_id,
                 targets=[Target("webhook_endpoint", endpoint.id, endpoint.url)],
                 changes={"status": ["enabled", "disabled"]}, metadata={"reason": reason[:500]})
    events.publish(endpoint.tenant_id, "endpoint.disabled",
                   {"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason[:500]})


def disable_endpoint(actor: Actor, tenant_id: str, endpoint_id: str, reason: str = "") -> WebhookEndpoint:
    """A person disables an endpoint: nothing is sent to it until it is enabled again."""
    endpoint = get_endpoint(tenant_id, endpoint_id)
    disable(actor, endpoint, reason or f"Disabled by {actor.display}.")
    db.session.commit()
    return endpoint


def enable_endpoint(actor: Actor, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    """Enable an endpoint again (its failure clock and circuit start afresh)."""
    endpoint = get_endpoint(tenant_id, endpoint_id)
    if endpoint.status != "enabled":
        endpoint.status, endpoint.disabled_reason, endpoint.disabled_at = "enabled", "", None
        endpoint.failing_since, endpoint.circuit_state, endpoint.circuit_opened_at = None, "closed", None
        endpoint.updated_at = clock.now()
        audit.record(actor, "webhook_endpoint.enabled", tenant_id=tenant_id,
                     targets=[Target("webhook_endpoint", endpoint.id, endpoint.url)],
                     changes={"status": ["disabled", "enabled"]})
    db.session.commit()
    return endpoint


def delete_endpoint(actor: Actor, tenant_id: str, endpoint_id: str) -> None:
    """Remove an endpoint with its deliveries and their attempts (messages stay, for other endpoints).
    A delivery being sent right now may still arrive once; nothing is sent after."""
    from sqlalchemy import delete

    from app.webhooks.outbound_models import WebhookAttempt

    endpoint = get_endpoint(tenant_id, endpoint_id)
    for model in (WebhookAttempt, WebhookDelivery):
        db.session.execute(delete(model).where(model.endpoint_id == endpoint.id).execution_options(
            synchronize_session=False))
    audit.record(actor, "webhook_endpoint.deleted", tenant_id=tenant_id,
                 targets=[Target("webhook_endpoint", endpoint.id, endpoint.url)],
                 changes={"url": [endpoint.url, None], "status": [endpoint.status, None]})
    db.session.delete(endpoint)
    db.session.commit()


# --- publishing --------------------------------------------------------------------------------------


def _matching_endpoints(tenant_id: str, event_type: str) -> list[WebhookEndpoint]:
    endpoints = db.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id,
                                                                 WebhookEndpoint.status == "enabled"))
    return [e for e in endpoints if e.subscribes_to(event_type)]


def _add_message(tenant_id: str, event_type: str, payload: dict, idempotency_key: str | None,
                 queued_until: Any, endpoints: list[WebhookEndpoint] | None = None) -> tuple[WebhookMessage, list[str]]:
    """The message and its deliveries (to `endpoints`, else every subscribed one), in the caller's
    transaction (flushed)."""
    now = clock.now()
    # Ids made here rather than at flush: the session then writes a batch of messages, and of deliveries,
    # as one multi-row INSERT each instead of a round trip per row.
    message = WebhookMessage(id=new_id(WebhookMessage.id_prefix), tenant_id=tenant_id, event_type=event_type,
                             payload=payload, idempotency_key=idempotency_key, created_at=now)
    db.session.add(message)
    ids = []
    for endpoint in _matching_endpoints(tenant_id, event_type) if endpoints is None else endpoints:
        delivery = WebhookDelivery(id=new_id(WebhookDelivery.id_prefix), tenant_id=tenant_id, message_id=message.id,
                                   endpoint_id=endpoint.id, event_type=event_type, status="pending", attempts=0,
                                   next_attempt_at=now, queued_until=queued_until, created_at=now)
        db.session.add(delivery)
        ids.append(delivery.id)
    return message, ids


def _existing(tenant_id: str, idempotency_key: str) -> WebhookMessage | None:
    return db.session.scalar(select(WebhookMessage).where(WebhookMessage.tenant_id == tenant_id,
                                                          WebhookMessage.idempotency_key == idempotency_key))


def check_publishable(event_type: str, payload: Any, idempotency_key: str | None = None,
                      types: set[str] | None = None) -> None:
    """Invalid (naming each field) unless this event could be published (`types`: the known event types,
    if the caller has them already)."""
    import json

    errors = {}
    if event_type not in (catalogue.known_types() if types is None else types):
        errors["event_type"] = f"Unknown event type {event_type!r}."
    if not isinstance(payload, dict):
        errors["payload"] = "The payload must be a JSON object."
    else:
        text = json.dumps(jsonable(payload))
        if len(text.encode()) > MAX_PAYLOAD_BYTES:
            errors["payload"] = f"The payload is larger than {MAX_PAYLOAD_BYTES // 1024} KB."
        elif "\\u0000" in text:  # PostgreSQL cannot store a NUL character in JSON text
            errors["payload"] = "The payload contains a NUL character (\\u0000), which cannot be stored."
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        errors["idempotency_key"] = "1 to 255 characters."
    if errors:
        raise Invalid("The message cannot be published.", errors=errors)


def publish(tenant_id: str, event_type: str, payload: dict[str, Any],
            idempotency_key: str | None = None) -> tuple[WebhookMessage, bool]:
    """Store a message and its deliveries (one transaction), then enqueue their delivery.

    Returns (message, created); the same idempotency key for the tenant returns the first message.
    """
    check_publishable(event_type, payload, idempotency_key, event_types.known_types(tenant_id))
    if idempotency_key is not None and (found := _existing(tenant_id, idempotency_key)) is not None:
        return found, False
    try:
        message, ids = _add_message(tenant_id, event_type, jsonable(payload), idempotency_key, _queued_until())
        db.session.commit()
    except IntegrityError:  # the same key, published concurrently
        db.session.rollback()
        found = _existing(tenant_id, idempotency_key) if idempotency_key else None
        if found is None:
            raise
        return found, False
    enqueue(ids)
    return message, True


def publish_many(tenant_id: str, events: list[dict[str, Any]]) -> list[tuple[WebhookMessage, bool]]:
    """Publish a batch ({type, payload, idempotency_key}) in one transaction and one enqueue: all or
    nothing: an invalid event refuses the batch, naming each problem `events[<index>].<field>`. Returns
    (message, created) per event, in order; a repeated key returns the first message."""
    problems: dict[str, str] = {}
    types = event_types.known_types(tenant_id)
    for index, event in enumerate(events):
        try:
            check_publishable(event["type"], event["payload"], event.get("idempotency_key"), types)
        except Invalid as exc:
            problems.update({f"events[{index}].{k}": v for k, v in exc.errors.items()})
    if problems:
        raise Invalid("Some events cannot be published; none was.", errors=problems)
    out: list[tuple[WebhookMessage, bool]] = []
    ids: list[str] = []
    subscribed: dict[str, list[WebhookEndpoint]] = {}
    queued_until = _queued_until()
    keys = {e["idempotency_key"] for e in events if e.get("idempotency_key") is not None}
    seen = {m.idempotency_key: m for m in db.session.scalars(select(WebhookMessage).where(
        WebhookMessage.tenant_id == tenant_id, WebhookMessage.idempotency_key.in_(keys)))} if keys else {}
    seen_ids = {m.id for m in seen.values()}
    created: list[str] = []
    try:
        for event in events:
            key = event.get("idempotency_key")
            if key is not None and key in seen:
                out.append((seen[key], False))
                continue
            if event["type"] not in subscribed:
                subscribed[event["type"]] = _matching_endpoints(tenant_id, event["type"])
            message, delivery_ids = _add_message(tenant_id, event["type"], jsonable(event["payload"]), key,
                                                 queued_until, subscribed[event["type"]])
            out.append((message, True))
            created.append(message.id)
            ids.extend(delivery_ids)
            if key is not None:
                seen[key] = message
        db.session.commit()
    except IntegrityError:  # a key published concurrently: one by one, each finds its first message
        db.session.rollback()
        return [publish(tenant_id, e["type"], e["payload"], e.get("idempotency_key")) for e in events]
    enqueue(ids)
    # The commit expired them: reload all in one query, not one each when the caller reads them.
    list(db.session.scalars(select(WebhookMessage).where(WebhookMessage.id.in_(created + list(seen_ids)))))
    return out


def _queued_until():
    return clock.now() + timedelta(seconds=current_app.config["WEBHOOK_QUEUED_LEASE"])


def enqueue(delivery_ids: list[str]) -> None:
    """Enqueue delivery jobs (after commit), in batches. If Redis is out the sweeper enqueues them."""
    from redis.exceptions import RedisError

    from app.queue import get_queue

    if not delivery_ids:
        return
    size = max(1, current_app.config["WEBHOOK_BATCH_SIZE"])
    timeout = int(size * (current_app.config["WEBHOOK_TIMEOUT"] + 5)) + 60
    try:
        queue = get_queue(QUEUE)
        for start in range(0, len(delivery_ids), size):
            batch = delivery_ids[start:start + size]
            queue.enqueue("app.webhooks.jobs.deliver", batch, job_timeout=timeout,
                          description=f"deliver {len(batch)} webhook(s)")
    except RedisError as exc:
        log.warning("webhook delivery jobs not enqueued (%d deliveries); the sweeper will: %s", len(delivery_ids), exc)


def fan_out(limit: int = 500) -> int:
    """Turn undispatched outbox events into messages (idempotent: the event id is the idempotency key),
    mark them dispatched, commit, then enqueue their deliveries. Returns how many events were handled."""
    types = catalogue.known_types()
    events = list(db.session.scalars(
        select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None)).order_by(OutboxEvent.created_at)
        .limit(limit).with_for_update(skip_locked=True)
    ))
    ids: list[str] = []
    now, queued_until = clock.now(), _queued_until()
    for event in events:
        key = f"outbox:{event.id}"
        if event.type in types and _existing(event.tenant_id, key) is None:
            _message, delivery_ids = _add_message(event.tenant_id, event.type, event.payload, key, queued_until)
            ids.extend(delivery_ids)
        elif event.type not in types:
            log.warning("outbox event %s has type %s, which is not in the webhook catalogue", event.id, event.type)
        event.dispatched_at = now
    db.session.commit()
    enqueue(ids)
    return len(events)
