"""Prometheus metrics: the counters other parts of the app increment, and `/metrics` to scrape them.

With several processes (gunicorn workers, RQ workers on the same host), set `PROMETHEUS_MULTIPROC_DIR` to
an empty directory shared by them (scripts/run does, and its gunicorn config marks exited workers dead):
each process writes its samples there and `/metrics` adds them up. Without it, `/metrics` shows the
answering process's own counts. Figures read at scrape time (queue depths, endpoints per circuit state)
come from a collector that asks Redis and the database on each scrape.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client.core import GaugeMetricFamily

from app.security import public

REDIS_FAILURES = Counter(
    "tenantry_redis_unavailable_total",
    "Requests that found Redis unavailable, by the feature affected and what it did (open: let through, "
    "closed: refused).", ["scope", "policy"])
RATE_LIMITED = Counter(
    "tenantry_rate_limited_total", "Requests refused by a rate limit, quota, concurrency limit or block.",
    ["scope", "policy"])
SHED = Counter("tenantry_load_shed_total", "API requests refused by load shedding, by route priority.",
               ["priority"])

# OpenTelemetry's http.server.request.duration buckets.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
HTTP_DURATION = Histogram(
    "tenantry_http_request_duration_seconds",
    "Time to answer HTTP requests, by route template (unmatched: no route), method and status class.",
    ["route", "method", "status"], buckets=HTTP_BUCKETS)
HTTP_REQUESTS = Counter("tenantry_http_requests_total", "HTTP requests answered, by route template, method and "
                        "status class.", ["route", "method", "status"])
WEBHOOK_DELIVERIES = Counter(
    "tenantry_webhook_deliveries_total",
    "Outbound webhook delivery outcomes (succeeded, failed: retried later, dead, circuit_open, throttled, "
    "endpoint_disabled, skipped, error).", ["outcome"])
WEBHOOK_DURATION = Histogram("tenantry_webhook_delivery_duration_seconds",
                             "Time of outbound webhook HTTP attempts, answered or not.", buckets=HTTP_BUCKETS)
BILLING_INVOICES = Counter("tenantry_billing_invoices_created_total", "Invoices created by billing runs.")
BILLING_FAILURES = Counter("tenantry_billing_run_failures_total",
                           "Subscriptions or invoices a billing run could not process.")
AUDIT_VERIFY_FAILURES = Counter("tenantry_audit_verify_failures_total",
                                "Audit hash chains found broken by `flask audit verify` runs.")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

bp = Blueprint("metrics", __name__)


_children: dict[tuple[str, str, str], tuple] = {}  # labels → (histogram child, counter child): no lookup per request


@bp.after_app_request
def _observe(response: Response) -> Response:
    """Count every answer under its route template (never the raw path: one series per route). The clock
    started in app.web's before_request, the first of all."""
    rule = request.url_rule
    key = (rule.rule if rule is not None else "unmatched", request.method if request.method in METHODS else "other",
           f"{response.status_code // 100}xx")
    children = _children.get(key)
    if children is None:
        children = _children.setdefault(key, (HTTP_DURATION.labels(*key), HTTP_REQUESTS.labels(*key)))
    started = g.get("started_at")
    children[0].observe(time.perf_counter() - started if started is not None else 0.0)
    children[1].inc()
    return response


def record_webhook_outcome(outcome: str, n: int = 1) -> None:
    WEBHOOK_DELIVERIES.labels(outcome).inc(n)


def record_billing_run(invoices_created: int, failures: int) -> None:
    BILLING_INVOICES.inc(invoices_created)
    BILLING_FAILURES.inc(failures)


class ScrapeCollector:
    """Gauges read when scraped: RQ queue depths (and failed jobs) and webhook endpoints per circuit state."""

    def collect(self):
        from redis.exceptions import RedisError

        depth = GaugeMetricFamily("tenantry_rq_queue_depth", "Jobs waiting in an RQ queue.", labels=["queue"])
        failed = GaugeMetricFamily("tenantry_rq_failed_jobs", "Failed jobs kept for an RQ queue.", labels=["queue"])
        oldest = GaugeMetricFamily("tenantry_rq_oldest_job_age_seconds",
                                   "Age of the oldest job waiting in an RQ queue (0: empty).", labels=["queue"])
        try:
            from app.ops.system import queue_stats

            for queue in queue_stats():
                depth.add_metric([queue["name"]], queue["depth"])
                failed.add_metric([queue["name"]], queue["failed"])
                oldest.add_metric([queue["name"]], queue["oldest_s"] or 0)
        except RedisError:
            pass
        yield from (depth, failed, oldest)
        yield self._circuits()

    @staticmethod
    def _circuits() -> GaugeMetricFamily:
        from sqlalchemy import func, select
        from sqlalchemy.exc import SQLAlchemyError

        from app.extensions import db
        from app.webhooks.outbound_models import WebhookEndpoint as E

        family = GaugeMetricFamily("tenantry_webhook_endpoints_circuit", "Enabled webhook endpoints per circuit "
                                   "breaker state.", labels=["state"])
        counts = {"closed": 0, "open": 0, "half_open": 0}
        try:
            for state, count in db.session.execute(select(E.circuit_state, func.count())
                                                   .where(E.status == "enabled").group_by(E.circuit_state)):
                counts[state] = int(count)
            db.session.rollback()
        except SQLAlchemyError:
            db.session.rollback()
        for state, count in counts.items():
            family.add_metric([state], count)
        return family


class _Both:
    def __init__(self, *parts) -> None:
        self.parts = parts

    def collect(self):
        for part in self.parts:
            yield from part.collect()


@bp.route("/metrics")
@public
def scrape() -> Response:
    """The Prometheus text format. Restrict it to the scraper at the proxy or network level."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        source = _Both(registry, ScrapeCollector())
    else:
        source = _Both(DEFAULT_REGISTRY, ScrapeCollector())
    return Response(generate_latest(source), content_type=CONTENT_TYPE_LATEST)
