"""The metric catalogue, read side: the metrics staff defined, and whether one already has events."""

from __future__ import annotations

from redis.exceptions import RedisError
from sqlalchemy import select

from app.errors import NotFound
from app.extensions import db
from app.plans.models import METRICS as BUILT_IN
from app.usage.events import used_key
from app.usage.models import UsageDaily, UsageMetric


def list_metrics() -> list[UsageMetric]:
    """Every metric, active ones first, each group by code."""
    return list(db.session.scalars(select(UsageMetric).order_by(UsageMetric.archived_at.is_not(None),
                                                                UsageMetric.code)))


def active_metrics() -> list[UsageMetric]:
    return [metric for metric in list_metrics() if not metric.archived]


def get_metric(metric_id: str) -> UsageMetric:
    metric = db.session.get(UsageMetric, metric_id)
    if metric is None:
        raise NotFound("No such metric.")
    return metric


def find_metric(code: str) -> UsageMetric | None:
    return db.session.scalar(select(UsageMetric).where(UsageMetric.code == code))


def quota_metrics(on_plan: dict | None = None) -> dict[str, str]:
    """Metrics a plan may set a quota for, code → label: the built-in ones, every active metric, and
    any metric the plan already has a quota for (an archived metric keeps its price on the plan)."""
    choices = dict(BUILT_IN)
    for metric in list_metrics():
        if not metric.archived or metric.code in (on_plan or {}):
            choices[metric.code] = f"{metric.name} ({metric.unit})" if metric.unit else metric.name
    return choices


def has_events(code: str) -> bool:
    """True once any event of the metric was accepted (rolled up or still in Redis)."""
    if db.session.scalar(select(UsageDaily.id).where(UsageDaily.metric == code).limit(1)) is not None:
        return True
    from app.queue import get_redis

    try:
        return bool(get_redis().exists(used_key(code)))
    except RedisError:
        return True  # unknown: keep the definition fixed rather than risk mixing two meanings
