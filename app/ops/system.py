"""What the system is doing, read for /readyz, /admin/system, /metrics and the alert rules: RQ queues (depth,
oldest job), failed jobs (and retrying or deleting them, audited), workers, the cron scheduler's heartbeat,
and API latency percentiles per route over the last hour (from the request log)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from app import clock
from app.audit import service as audit
from app.errors import NotFound
from app.extensions import db
from app.security import Actor

SCHEDULER_REGISTRY = "rq:cron_schedulers"  # rq.cron_scheduler_registry: name → Unix time of its last heartbeat
FAILED_SHOWN = 20  # failed jobs listed per queue
LATENCY_WINDOW = timedelta(hours=1)
LATENCY_ROWS_MAX = 200_000  # SQLite (percentiles in Python) reads at most this many of the hour's rows


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def queue_stats() -> list[dict[str, Any]]:
    """Per RQ queue: jobs waiting, the age in seconds of the oldest (None: empty) and failed jobs kept.
    Raises RedisError when Redis does not answer."""
    from rq.registry import FailedJobRegistry

    from app.queue import QUEUES, get_queue

    now = clock.now()
    out = []
    for name in QUEUES:
        queue = get_queue(name)
        oldest = queue.get_job_ids(0, 1)
        job = queue.fetch_job(oldest[0]) if oldest else None
        enqueued = _aware(job.enqueued_at) if job is not None else None
        out.append({"name": name, "depth": queue.count, "failed": FailedJobRegistry(queue=queue).count,
                    "oldest_s": max(0.0, round((now - enqueued).total_seconds(), 1)) if enqueued else None})
    return out


def workers() -> list[dict[str, Any]]:
    """RQ workers registered in Redis (a worker's key expires when it stops sending heartbeats)."""
    from rq import Worker

    from app.queue import get_redis

    out = []
    for worker in Worker.all(connection=get_redis()):
        job_id = worker.get_current_job_id()
        out.append({"name": worker.name, "state": worker.get_state(), "queues": worker.queue_names(),
                    "current_job": job_id, "last_heartbeat": _aware(worker.last_heartbeat),
                    "successful": worker.successful_job_count, "failed": worker.failed_job_count})
    return sorted(out, key=lambda w: w["name"])


def scheduler_heartbeat() -> datetime | None:
    """When a cron scheduler last reported itself alive (rq's CronScheduler beats at least every minute)."""
    from app.queue import get_redis

    scores = get_redis().zrange(SCHEDULER_REGISTRY, 0, -1, withscores=True)
    if not scores:
        return None
    return datetime.fromtimestamp(max(score for _, score in scores), UTC)


@dataclass
class FailedJob:
    id: str
    queue: str
    func: str
    args: str
    ended_at: datetime | None
    error: str


def failed_jobs(limit: int = FAILED_SHOWN) -> dict[str, dict[str, Any]]:
    """Per queue: how many failed jobs are kept and the newest `limit` of them."""
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    from app.queue import QUEUES, get_queue, get_redis

    out: dict[str, dict[str, Any]] = {}
    for name in QUEUES:
        registry = FailedJobRegistry(queue=get_queue(name))
        ids = registry.get_job_ids(0, limit - 1, desc=True)
        jobs = []
        for job in Job.fetch_many(ids, connection=get_redis()):
            if job is None:
                continue
            error = ""
            try:
                result = job.latest_result()
                error = (result.exc_string or "") if result is not None else ""
            except Exception:  # noqa: BLE001 - an unreadable result leaves the error blank
                error = ""
            last_line = error.strip().splitlines()[-1] if error.strip() else ""
            try:
                func_name, args = job.func_name, ", ".join(repr(a) for a in job.args)[:200]
            except Exception:  # noqa: BLE001 - a job whose function cannot be loaded still shows up
                func_name, args = "?", ""
            jobs.append(FailedJob(job.id, name, func_name, args, _aware(job.ended_at), last_line[:300]))
        out[name] = {"count": registry.count, "jobs": jobs}
    return out


def _failed_registry(queue: str):
    from rq.registry import FailedJobRegistry

    from app.queue import QUEUES, get_queue

    if queue not in QUEUES:
        raise NotFound("No such queue.")
    return FailedJobRegistry(queue=get_queue(queue))


def retry_failed(actor: Actor, queue: str, job_id: str) -> None:
    """Put a failed job back on its queue (audited)."""
    from rq.exceptions import InvalidJobOperationError, NoSuchJobError

    registry = _failed_registry(queue)
    try:
        job = registry.requeue(job_id)
    except (NoSuchJobError, InvalidJobOperationError):
        raise NotFound("That failed job is gone (retried, deleted or expired).") from None
    audit.record(actor, "ops.job.retried", targets=[audit.Target("job", job_id, job.func_name)],
                 metadata={"queue": queue})
    db.session.commit()


def delete_failed(actor: Actor, queue: str, job_id: str) -> None:
    """Delete a failed job for good (audited)."""
    from rq.job import Job

    from app.queue import get_redis

    registry = _failed_registry(queue)
    if job_id not in registry:
        raise NotFound("That failed job is gone (retried, deleted or expired).")
    job = Job.fetch(job_id, connection=get_redis())
    func_name = job.func_name
    registry.remove(job, delete_job=True)
    audit.record(actor, "ops.job.deleted", targets=[audit.Target("job", job_id, func_name)],
                 metadata={"queue": queue})
    db.session.commit()


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (as PostgreSQL's percentile_cont)."""
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def api_latency(now: datetime | None = None) -> list[dict[str, Any]]:
    """p50/p95/p99 of API request durations (ms) per method and route template over the last hour, busiest
    first. PostgreSQL computes them with percentile_cont; elsewhere the hour's durations (at most
    LATENCY_ROWS_MAX rows) are read and ranked here."""
    from app.requestlog.models import RequestLogEntry as R

    since = (now or clock.now()) - LATENCY_WINDOW
    if db.session.get_bind().dialect.name == "postgresql":
        rows = db.session.execute(
            select(R.method, R.route, func.count(),
                   func.percentile_cont(0.5).within_group(R.duration_ms),
                   func.percentile_cont(0.95).within_group(R.duration_ms),
                   func.percentile_cont(0.99).within_group(R.duration_ms))
            .where(R.at >= since).group_by(R.method, R.route)).all()
        out = [{"method": m, "route": r, "count": int(n), "p50": float(a), "p95": float(b), "p99": float(c)}
               for m, r, n, a, b, c in rows]
    else:
        by_route: dict[tuple[str, str], list[float]] = {}
        for method, route, duration in db.session.execute(
                select(R.method, R.route, R.duration_ms).where(R.at >= since).limit(LATENCY_ROWS_MAX)):
            by_route.setdefault((method, route), []).append(float(duration))
        out = []
        for (method, route), durations in by_route.items():
            durations.sort()
            out.append({"method": method, "route": route, "count": len(durations),
                        "p50": _percentile(durations, 0.5), "p95": _percentile(durations, 0.95),
                        "p99": _percentile(durations, 0.99)})
    return sorted(out, key=lambda row: (-row["count"], row["route"], row["method"]))
