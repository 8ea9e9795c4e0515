"""Sending failed webhooks again, as Svix's resend and recover do.

`resend()` gives one dead or failed delivery (a message to an endpoint) a fresh cycle of attempts that
starts now; `app.webhooks.recovery` does the same, as a background job, for every dead or failed delivery
of an endpoint since a moment (at most 14 days back). The message is unchanged, so receivers see the same
`webhook-id` and can drop what they already processed. Both are audited; jobs are enqueued after commit
(the sweeper enqueues anything whose job is lost).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.db import Page
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.security import Actor
from app.webhooks import outbound
from app.webhooks.outbound_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage

RESENDABLE = ("dead", "failed")
RECOVER_WINDOW = timedelta(days=14)
SLACK = timedelta(minutes=5)  # "14 days ago" typed into a form a few minutes before it is sent still counts


def _endpoint(tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    if not endpoint_id.isprintable():  # e.g. a NUL, which PostgreSQL refuses in a query: no such endpoint
        raise NotFound("No such webhook endpoint.")
    return outbound.get_endpoint(tenant_id, endpoint_id)


def _enabled(tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = _endpoint(tenant_id, endpoint_id)
    if endpoint.status != "enabled":
        raise Conflict("The endpoint is disabled: enable it first, then send again.")
    return endpoint


def _fresh_cycle(now: datetime) -> dict:
    """The columns that make a delivery due now with the whole retry schedule ahead of it."""
    return {"status": "pending", "attempts": 0, "next_attempt_at": now, "locked_until": None,
            "queued_until": outbound._queued_until()}


def resend(actor: Actor, tenant_id: str, message_id: str, endpoint_id: str) -> WebhookDelivery:
    """Send a dead or failed message to an endpoint again, now, with a fresh retry schedule.

    NotFound for another tenant's message or endpoint; Conflict when the delivery succeeded, is still
    pending, is being sent right now, or the endpoint is disabled.
    """
    endpoint = _enabled(tenant_id, endpoint_id)
    D = WebhookDelivery  # noqa: N806
    delivery = db.session.scalar(select(D).where(D.tenant_id == tenant_id, D.message_id == message_id,
                                                 D.endpoint_id == endpoint.id))
    if delivery is None:
        raise NotFound("This event was never sent to this endpoint.")
    if delivery.status not in RESENDABLE:
        raise Conflict(f"The delivery is {delivery.status}; only failed or dead ones can be sent again.")
    now = clock.now()
    changed = db.session.execute(
        update(D).where(D.id == delivery.id, D.status.in_(RESENDABLE),
                        or_(D.locked_until.is_(None), D.locked_until <= now))
        .values(**_fresh_cycle(now)).execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        db.session.rollback()
        raise Conflict("The delivery is being sent right now; try again in a moment.")
    audit.record(actor, "webhook_delivery.resent", tenant_id=tenant_id,
                 targets=[Target("webhook_endpoint", endpoint.id, endpoint.url),
                          Target("webhook_message", message_id, delivery.event_type)],
                 changes={"status": [delivery.status, "pending"]})
    db.session.commit()
    outbound.enqueue([delivery.id])
    db.session.refresh(delivery)
    return delivery


def check_since(since: datetime | None) -> datetime:
    """`since` as an aware UTC moment no more than 14 days back (None: 14 days back); Invalid otherwise."""
    if since is None:
        return clock.now() - RECOVER_WINDOW
    if since.tzinfo is None:
        from datetime import UTC

        since = since.replace(tzinfo=UTC)
    now = clock.now()
    if since < now - RECOVER_WINDOW - SLACK:
        raise Invalid(errors={"since": "At most 14 days back."})
    if since > now + SLACK:
        raise Invalid(errors={"since": "That moment is in the future."})
    return since


TEST_EVENT_TYPE = "webhook.test"


def send_test(actor: Actor, tenant_id: str, endpoint_id: str) -> WebhookMessage:
    """Send a `webhook.test` event to this one endpoint (whatever types it subscribes to), signed and
    retried like any other; its attempts show in the endpoint's deliveries. Conflict if it is disabled."""
    endpoint = _enabled(tenant_id, endpoint_id)
    now = clock.now()
    message = WebhookMessage(tenant_id=tenant_id, event_type=TEST_EVENT_TYPE, created_at=now,
                             payload={"test": True, "endpoint_id": endpoint.id, "sent_by": actor.display,
                                      "sent_at": now.isoformat()})
    db.session.add(message)
    db.session.flush()
    delivery = WebhookDelivery(tenant_id=tenant_id, message_id=message.id, endpoint_id=endpoint.id,
                               event_type=TEST_EVENT_TYPE, status="pending", attempts=0, next_attempt_at=now,
                               queued_until=outbound._queued_until(), created_at=now)
    db.session.add(delivery)
    db.session.flush()
    audit.record(actor, "webhook_endpoint.test_sent", tenant_id=tenant_id,
                 targets=[Target("webhook_endpoint", endpoint.id, endpoint.url),
                          Target("webhook_message", message.id, TEST_EVENT_TYPE)])
    db.session.commit()
    outbound.enqueue([delivery.id])
    return message


# --- read side: an endpoint's deliveries with their attempts (the tenant's endpoint page) ----------------


def endpoint_deliveries(tenant_id: str, endpoint_id: str, page: int, per_page: int = 20,
                        status: str | None = None) -> tuple[Page, dict[str, list[WebhookAttempt]]]:
    """One page of an endpoint's deliveries, newest first, and each one's attempts (oldest first)."""
    from app.db import paginate

    D = WebhookDelivery  # noqa: N806
    stmt = select(D).where(D.tenant_id == tenant_id, D.endpoint_id == endpoint_id)
    if status:
        stmt = stmt.where(D.status == status)
    result = paginate(db.session, stmt.order_by(D.created_at.desc(), D.id.desc()), page, per_page)
    attempts: dict[str, list[WebhookAttempt]] = {d.id: [] for d in result.items}
    if attempts:
        for attempt in db.session.scalars(select(WebhookAttempt).where(
                WebhookAttempt.tenant_id == tenant_id, WebhookAttempt.delivery_id.in_(list(attempts)))
                .order_by(WebhookAttempt.created_at, WebhookAttempt.id)):
            attempts[attempt.delivery_id].append(attempt)
    return result, attempts
