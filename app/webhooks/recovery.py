"""Recovering an endpoint (as Svix's recover does) and purging its dead letters.

`recover()` records a request to send again every failed or dead delivery to an endpoint created since a
moment (at most 14 days back) and up to now, and enqueues a job; `run()` (the job) works through them in
batches of BATCH, oldest first: each batch gets a fresh retry cycle starting now (same `webhook-id`), its
jobs are enqueued, and the recovery's `done` and `cursor` are committed with it, so the pages and the API
show progress and a job that dies resumes where it stopped (`resume_stalled()`, run by the periodic
sweep, re-enqueues a recovery that has not moved for STALLED_AFTER). Deliveries being sent at that
moment are left alone, so `done` may end below `total`.

`purge_dead()` discards an endpoint's dead letters: its dead deliveries and their attempts are deleted
(the messages stay for the endpoint's other deliveries and until retention removes them). Both are audited.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.errors import Conflict, NotFound
from app.extensions import db
from app.security import Actor
from app.webhooks import outbound
from app.webhooks.outbound_models import WebhookAttempt, WebhookDelivery, WebhookRecovery
from app.webhooks.replay import RESENDABLE, _enabled, _endpoint, _fresh_cycle, check_since

log = logging.getLogger(__name__)

BATCH = 500
STALLED_AFTER = timedelta(minutes=5)
QUEUE = "webhooks"


def _candidates(recovery: WebhookRecovery):
    D = WebhookDelivery  # noqa: N806
    stmt = select(D.id).where(D.tenant_id == recovery.tenant_id, D.endpoint_id == recovery.endpoint_id,
                              D.status.in_(RESENDABLE), D.created_at >= recovery.since,
                              D.created_at <= recovery.until)
    return stmt


def recover(actor: Actor, tenant_id: str, endpoint_id: str, since: datetime | None = None) -> WebhookRecovery:
    """Ask for every failed or dead delivery to the endpoint since `since` (None: 14 days back) to be sent
    again; returns the recovery (queued, with its total) once its job is enqueued. NotFound for another
    tenant's endpoint; Conflict if the endpoint is disabled or a recovery of it is still running."""
    _endpoint(tenant_id, endpoint_id)  # another tenant's id: NotFound before anything else
    since = check_since(since)
    endpoint = _enabled(tenant_id, endpoint_id)
    busy = db.session.scalar(select(WebhookRecovery.id).where(
        WebhookRecovery.endpoint_id == endpoint.id, WebhookRecovery.status.in_(("queued", "running"))))
    if busy is not None:
        raise Conflict(f"A recovery of this endpoint is still running ({busy}); wait for it to finish.")
    now = clock.now()
    recovery = WebhookRecovery(tenant_id=tenant_id, endpoint_id=endpoint.id, since=since, until=now,
                               status="queued", total=0, done=0, requested_by=actor.display[:200],
                               created_at=now, updated_at=now)
    recovery.total = db.session.scalar(select(func.count()).select_from(_candidates(recovery).subquery())) or 0
    db.session.add(recovery)
    db.session.flush()
    audit.record(actor, "webhook_endpoint.recovered", tenant_id=tenant_id,
                 targets=[Target("webhook_endpoint", endpoint.id, endpoint.url),
                          Target("webhook_recovery", recovery.id, "")],
                 metadata={"since": since, "deliveries": recovery.total})
    if recovery.total == 0:  # nothing to do: done at once, no job
        recovery.status, recovery.finished_at = "succeeded", now
    db.session.commit()
    if recovery.status == "queued":
        _enqueue(recovery.id)
    return recovery


def _enqueue(recovery_id: str) -> None:
    from redis.exceptions import RedisError

    from app.queue import get_queue

    try:
        get_queue(QUEUE).enqueue("app.webhooks.jobs.run_recovery", recovery_id, job_timeout=3600,
                                 description=f"recover webhooks ({recovery_id})")
    except RedisError as exc:  # resume_stalled() enqueues it later
        log.warning("webhook recovery %s not enqueued (the sweep will): %s", recovery_id, exc)


def run(recovery_id: str) -> WebhookRecovery | None:
    """Work through a recovery (the job): batch by batch, each committed with the progress. Safe to run
    twice: only a queued recovery is claimed (one conditional UPDATE), so a finished one is left alone and
one that another job is running is skipped."""
    claimed = db.session.execute(update(WebhookRecovery).where(
        WebhookRecovery.id == recovery_id, WebhookRecovery.status == "queued")
        .values(status="running", updated_at=clock.now()).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    recovery = db.session.get(WebhookRecovery, recovery_id, populate_existing=True)
    if not claimed:  # finished, running in another job, or no such recovery
        return recovery
    D = WebhookDelivery  # noqa: N806
    try:
        while True:
            now = clock.now()
            stmt = _candidates(recovery).where(or_(D.locked_until.is_(None), D.locked_until <= now))
            if recovery.cursor:
                stmt = stmt.where(D.id > recovery.cursor)
            ids = list(db.session.scalars(stmt.order_by(D.id).limit(BATCH).with_for_update(skip_locked=True)))
            if not ids:
                break
            db.session.execute(update(D).where(D.id.in_(ids), D.status.in_(RESENDABLE))
                               .values(**_fresh_cycle(now)).execution_options(synchronize_session=False))
            recovery.cursor, recovery.done, recovery.updated_at = ids[-1], recovery.done + len(ids), now
            db.session.commit()
            outbound.enqueue(ids)
        recovery.status, recovery.finished_at = "succeeded", clock.now()
    except Exception as exc:  # recorded; what was re-queued stays re-queued
        db.session.rollback()
        log.exception("webhook recovery %s failed", recovery_id)
        recovery = db.session.get(WebhookRecovery, recovery_id)
        recovery.status, recovery.error, recovery.finished_at = "failed", str(exc)[:2000], clock.now()
    recovery.updated_at = clock.now()
    db.session.commit()
    return recovery


def resume_stalled() -> int:
    """Enqueue again the recoveries that are queued or running but have not moved for STALLED_AFTER (their
    job was lost or its worker died). Returns how many."""
    stalled = list(db.session.scalars(select(WebhookRecovery.id).where(
        WebhookRecovery.status.in_(("queued", "running")),
        WebhookRecovery.updated_at <= clock.now() - STALLED_AFTER)))
    if stalled:  # queued again: the job's conditional claim takes it
        db.session.execute(update(WebhookRecovery).where(WebhookRecovery.id.in_(stalled))
                           .values(status="queued", updated_at=clock.now())
                           .execution_options(synchronize_session=False))
    db.session.commit()
    for recovery_id in stalled:
        _enqueue(recovery_id)
    return len(stalled)


def get(tenant_id: str, endpoint_id: str, recovery_id: str) -> WebhookRecovery:
    """One recovery of the tenant's endpoint; anything else is NotFound."""
    from app.db import is_id

    endpoint = _endpoint(tenant_id, endpoint_id)
    recovery = db.session.scalar(select(WebhookRecovery).where(
        WebhookRecovery.id == recovery_id, WebhookRecovery.tenant_id == tenant_id,
        WebhookRecovery.endpoint_id == endpoint.id)) if is_id(recovery_id, "rcv") else None
    if recovery is None:
        raise NotFound("No such recovery of this endpoint.")
    return recovery


def latest(tenant_id: str, endpoint_id: str) -> WebhookRecovery | None:
    """The endpoint's newest recovery, if any."""
    return db.session.scalar(select(WebhookRecovery).where(
        WebhookRecovery.tenant_id == tenant_id, WebhookRecovery.endpoint_id == endpoint_id)
        .order_by(WebhookRecovery.created_at.desc()).limit(1))


def dead_count(tenant_id: str, endpoint_id: str) -> int:
    return db.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.endpoint_id == endpoint_id,
        WebhookDelivery.status == "dead")) or 0


def purge_dead(actor: Actor, tenant_id: str, endpoint_id: str) -> int:
    """Discard the endpoint's dead letters (dead deliveries and their attempts); returns how many."""
    endpoint = _endpoint(tenant_id, endpoint_id)
    D = WebhookDelivery  # noqa: N806
    ids = list(db.session.scalars(select(D.id).where(D.tenant_id == tenant_id, D.endpoint_id == endpoint.id,
                                                     D.status == "dead")))
    for start in range(0, len(ids), BATCH):
        part = ids[start:start + BATCH]
        db.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(part))
                           .execution_options(synchronize_session=False))
        db.session.execute(delete(D).where(D.id.in_(part), D.status == "dead")
                           .execution_options(synchronize_session=False))
    audit.record(actor, "webhook_endpoint.dead_letters_purged", tenant_id=tenant_id,
                 targets=[Target("webhook_endpoint", endpoint.id, endpoint.url)], metadata={"purged": len(ids)})
    db.session.commit()
    return len(ids)
