"""Prometheus metrics: the counters other parts of the app increment, and `/metrics` to scrape them.

With several web processes (gunicorn), set `PROMETHEUS_MULTIPROC_DIR` to an empty directory shared by
them: each process writes its samples there and `/metrics` adds them up. Without it, `/metrics` shows
the answering process's own counts.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

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

bp = Blueprint("metrics", __name__)


@bp.route("/metrics")
@public
def scrape() -> Response:
    """The Prometheus text format. Restrict it to the scraper at the proxy or network level."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = DEFAULT_REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
