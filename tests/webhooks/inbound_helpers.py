"""Helpers for the inbound webhook tests: sign like Stripe does, post to the door, run the RQ jobs."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from sqlalchemy import select

from app.extensions import db
from app.webhooks.inbound_models import InboundWebhookEvent

SECRET = "whsec_test_6f1c2b9a4d7e8f30a1b2c3d4e5f60718"  # a test signing secret


def stripe_event(event_id: str = "evt_1TestInbound", type_: str = "invoice.paid", **data) -> str:
    """A Stripe event body, as Stripe sends it (the raw JSON text that is signed)."""
    return json.dumps({"id": event_id, "object": "event", "type": type_, "api_version": "2025-01-27",
                       "created": int(time.time()), "livemode": False,
                       "data": {"object": {"object": "invoice", "id": "in_1Test", **data}}})


def stripe_signature(body: str | bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    """Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}" keyed with the whole whsec_ string>."""
    t = int(time.time()) if timestamp is None else timestamp
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def post_stripe(client, body: str | bytes, signature: str | None = "sign", **kwargs):
    """POST /webhooks/stripe with the body signed by SECRET (or the given header, or none)."""
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    if signature == "sign":
        signature = stripe_signature(body)
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post("/webhooks/stripe", data=body, headers=headers, **kwargs)


def run_jobs(queue: str = "billing") -> None:
    """Run every job waiting on the queue in this process (an RQ SimpleWorker in burst mode), as a
    worker would; needs an app context."""
    from rq import SimpleWorker

    from app.queue import get_queue, get_redis

    SimpleWorker([get_queue(queue)], connection=get_redis()).work(burst=True, with_scheduler=False)


def queued(queue: str = "billing") -> list[tuple[str, tuple]]:
    """(function name, args) of the jobs waiting on the queue."""
    from app.queue import get_queue

    return [(job.func_name, job.args) for job in get_queue(queue).get_jobs()]


def events() -> list[InboundWebhookEvent]:
    db.session.rollback()  # a fresh read: see what requests and jobs committed (SQLite snapshots too)
    return list(db.session.scalars(select(InboundWebhookEvent).order_by(InboundWebhookEvent.id)))


def counts() -> dict[str, int]:
    """Today's counts of every kind (stored and still in Redis)."""
    from app.webhooks import inbound_counts

    db.session.rollback()  # a fresh read: see what requests and jobs committed (SQLite snapshots too)
    return inbound_counts.daily_counts(1)[0][1]
