"""Periodic jobs, declared as data and run by RQ's own cron scheduler (`flask scheduler`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.api import jobs as api_jobs
from app.auth import jobs as auth_jobs
from app.billing import jobs as billing_jobs
from app.billing import metrics as revenue_metrics
from app.console import jobs as console_jobs
from app.flags import jobs as flag_jobs
from app.ops import jobs as ops_jobs
from app.ratelimit import jobs as ratelimit_jobs
from app.requestlog import jobs as requestlog_jobs
from app.usage import jobs as usage_jobs
from app.webhooks import inbound_jobs
from app.webhooks import jobs as webhook_jobs


@dataclass(frozen=True)
class Periodic:
    """A job to enqueue every `interval` seconds (or on a cron expression) on `queue`."""

    func: Callable
    queue: str
    interval: int | None = None
    cron: str | None = None
    timeout: int = 300


JOBS: list[Periodic] = [
    Periodic(api_jobs.prune_idempotency_keys, "low", interval=3600),
    Periodic(auth_jobs.prune_sessions, "low", cron="17 3 * * *"),
    Periodic(auth_jobs.flush_last_used, "low", interval=60),
    Periodic(ratelimit_jobs.flush_violations, "low", interval=60),
    Periodic(usage_jobs.rollup_usage, "default", interval=60),
    Periodic(requestlog_jobs.drain_request_log, "default", interval=10),
    Periodic(requestlog_jobs.prune_request_log, "low", interval=3600),
    Periodic(inbound_jobs.sweep_inbound, "billing", interval=60),
    Periodic(inbound_jobs.flush_inbound_counts, "low", interval=60),
    Periodic(webhook_jobs.fan_out_outbox, "webhooks", interval=5),
    Periodic(webhook_jobs.sweep_deliveries, "webhooks", interval=5),
    Periodic(webhook_jobs.prune_webhook_messages, "low", interval=3600),
    Periodic(billing_jobs.billing_run, "billing", cron="5 0 * * *", timeout=3600),
    Periodic(billing_jobs.billing_run, "billing", interval=900, timeout=3600),  # closes periods within minutes
    Periodic(billing_jobs.retry_dunning, "billing", interval=3600, timeout=1800),
    Periodic(billing_jobs.expire_credits, "billing", interval=3600),
    Periodic(revenue_metrics.refresh, "low", interval=3600, timeout=1800),
    Periodic(flag_jobs.run_due_schedules, "default", interval=60),
    Periodic(console_jobs.refresh_overview, "low", interval=300),
    Periodic(ops_jobs.evaluate_alerts, "default", interval=60),
    Periodic(ops_jobs.verify_audit, "low", cron="40 2 * * *", timeout=3600),
]


def build_scheduler(connection):
    """An rq CronScheduler with every job registered."""
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=connection, name="tenantry-cron")
    for job in JOBS:
        scheduler.register(job.func, job.queue, interval=job.interval, cron=job.cron, job_timeout=job.timeout)
    return scheduler
