"""Helpers for the ops tests: a live worker and scheduler as Redis sees them, failed jobs, old jobs."""

from __future__ import annotations

import time


def boom(n: int = 1) -> None:
    """A job that fails."""
    raise RuntimeError(f"boom {n}")


def noop() -> str:
    return "ok"


def alive(worker_name: str = "test-worker") -> object:
    """An RQ worker registered in Redis (as a running one is) and a cron scheduler heartbeat now."""
    from rq import Worker

    from app.queue import get_queue, get_redis

    worker = Worker([get_queue("default")], connection=get_redis(), name=worker_name)
    worker.register_birth()
    worker.heartbeat()
    beat(time.time())
    return worker


def beat(at: float) -> None:
    from app.ops.system import SCHEDULER_REGISTRY
    from app.queue import get_redis

    get_redis().zadd(SCHEDULER_REGISTRY, {"tenantry-cron": at})


def fail_a_job(queue: str = "low", n: int = 1) -> str:
    """Enqueue a job that raises and run it (SimpleWorker, burst), so it lands in the failed registry."""
    from rq import SimpleWorker

    from app.queue import get_queue, get_redis

    job = get_queue(queue).enqueue(boom, n)
    SimpleWorker([get_queue(queue)], connection=get_redis()).work(burst=True, with_scheduler=False)
    return job.id


def age_oldest(queue: str, seconds: float) -> str:
    """Enqueue a job whose enqueued_at lies `seconds` in the past (it waits: no worker runs it)."""
    from datetime import UTC, datetime, timedelta

    from app.queue import get_queue

    job = get_queue(queue).enqueue(noop)
    job.enqueued_at = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=seconds)
    job.save()
    return job.id
