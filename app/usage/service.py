"""Usage use cases: quota warnings, and the catalogue of metrics staff define."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.errors import Conflict, Invalid
from app.events import service as events
from app.extensions import db
from app.plans.models import METRICS as BUILT_IN
from app.security import Actor
from app.usage import catalog
from app.usage.events import catalog as ingest_catalog
from app.usage.models import AGGREGATIONS, UsageMetric

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
FIELD_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
FIELDS = ("code", "name", "unit", "aggregation", "field", "decimals")
FIXED = ("aggregation", "field", "decimals")  # what the stored numbers mean: fixed once events exist
MAX_DECIMALS = 6


def threshold_reached(tenant_id: str, percent: int, used: int, included: int, now: datetime) -> None:
    """A tenant's billed calls reached `percent` of the quota this month: publish and audit it once."""
    period = now.strftime("%Y-%m")
    payload = {"metric": "api_calls", "percent": percent, "used": used, "included": included, "period": period}
    events.publish(tenant_id, "usage.threshold_reached", payload)
    audit.record(Actor.system("usage meter"), "usage.threshold_reached", tenant_id=tenant_id,
                 targets=[Target("tenant", tenant_id)], metadata=payload,
                 severity="warning" if percent >= 100 else "info")
    db.session.commit()


def _clean_definition(data: dict[str, Any], out: dict[str, Any], errors: dict[str, str]) -> None:
    aggregation = str(data.get("aggregation") or "").strip()
    if aggregation not in AGGREGATIONS:
        errors["aggregation"] = f"Choose one of {', '.join(AGGREGATIONS)}."
    field = str(data.get("field") or "").strip() or None
    if aggregation == "count":
        field = None  # a count needs no property
    elif field is None or not FIELD_RE.match(field):
        errors["field"] = "Name the event property to aggregate: 1–64 characters, letters, digits, _ . -"
    try:
        decimals = int(str(data.get("decimals") or 0).strip())
    except ValueError:
        decimals = -1
    if not 0 <= decimals <= MAX_DECIMALS:
        errors["decimals"] = f"Enter a whole number from 0 to {MAX_DECIMALS}."
    elif decimals and aggregation in {"count", "unique_count"}:
        errors["decimals"] = "Counts and unique counts are whole numbers: use 0 decimal places."
    out.update(aggregation=aggregation, field=field, decimals=max(decimals, 0))


def clean_metric(data: dict[str, Any], metric: UsageMetric | None) -> dict[str, Any]:
    """Validate a metric's fields, every problem at once; the definition is fixed once events exist."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    if metric is None:
        code = str(data.get("code") or "").strip().lower()
        if not CODE_RE.match(code):
            errors["code"] = "2–40 characters: a-z, 0-9 and _, starting with a letter (e.g. emails_sent)."
        elif code in BUILT_IN or catalog.find_metric(code) is not None:
            errors["code"] = "Another metric has this code."
        out["code"] = code
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 80:
        errors["name"] = "Enter a name of at most 80 characters."
    unit = str(data.get("unit") or "").strip()
    if len(unit) > 20:
        errors["unit"] = "At most 20 characters (e.g. GB, emails)."
    out.update(name=name, unit=unit)
    if metric is None or any(k in data for k in FIXED):
        _clean_definition({k: data.get(k, getattr(metric, k, None)) for k in FIXED}, out, errors)
        changed = [k for k in FIXED if metric is not None and out[k] != getattr(metric, k)]
        if changed and catalog.has_events(metric.code):
            errors.update(dict.fromkeys(changed, "Fixed: events were already reported for this metric. "
                                                 "Define a new metric to aggregate them differently."))
    if errors:
        raise Invalid("Some fields need attention.", errors=errors)
    return out


def _snapshot(metric: UsageMetric) -> dict[str, Any]:
    return {field: getattr(metric, field) for field in FIELDS}


def _committed() -> None:
    db.session.commit()
    ingest_catalog.clear()  # this process sees the change at once; others within a second


def create_metric(actor: Actor, data: dict[str, Any]) -> UsageMetric:
    metric = UsageMetric(**clean_metric(data, None))
    db.session.add(metric)
    db.session.flush()
    audit.record(actor, "usage_metric.created", targets=[Target("usage_metric", metric.id, metric.code)],
                 changes={k: [None, v] for k, v in _snapshot(metric).items()})
    _committed()
    return metric


def update_metric(actor: Actor, metric_id: str, data: dict[str, Any]) -> UsageMetric:
    """Change a metric's name and unit, and its definition while it has no events."""
    metric = catalog.get_metric(metric_id)
    before = _snapshot(metric)
    for field, value in clean_metric(data, metric).items():
        setattr(metric, field, value)
    after = _snapshot(metric)
    changes = {k: [before[k], after[k]] for k in FIELDS if before[k] != after[k]}
    if changes:
        audit.record(actor, "usage_metric.updated", targets=[Target("usage_metric", metric.id, metric.code)],
                     changes=changes)
    _committed()
    return metric


def set_metric_archived(actor: Actor, metric_id: str, archived: bool) -> UsageMetric:
    """Archive (new events are refused; what was counted stays, and plans keep its price) or restore."""
    metric = catalog.get_metric(metric_id)
    if metric.archived == archived:
        raise Conflict(f"The metric is already {'archived' if archived else 'active'}.")
    old = metric.archived_at
    metric.archived_at = clock.now() if archived else None
    audit.record(actor, "usage_metric.archived" if archived else "usage_metric.restored",
                 targets=[Target("usage_metric", metric.id, metric.code)],
                 changes={"archived_at": [old, metric.archived_at]})
    _committed()
    return metric
