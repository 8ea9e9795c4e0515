"""Plan catalogue use cases for staff: create, edit, archive, restore; and the default catalogue."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.auth import keycache
from app.errors import Conflict, Invalid
from app.extensions import db
from app.money import CURRENCIES
from app.plans import queries
from app.plans.models import Plan
from app.ratelimit.gcra import MAX_PER_SECOND
from app.security import Actor
from app.usage.catalog import quota_metrics

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,39}$")
FEATURE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
FIELDS = ("code", "name", "description", "currency", "price_monthly", "price_annual", "trial_days", "late_fee",
          "late_fee_percent", "quotas",
          "rate_limit_per_second", "rate_limit_per_minute", "max_concurrent_requests", "max_webhook_endpoints",
          "max_members", "features", "is_public", "sort_order")

DEFAULT_PLANS: list[dict[str, Any]] = [
    {"code": "free", "name": "Free", "description": "For trying the API.", "price_monthly": 0, "price_annual": 0,
     "trial_days": 0, "quotas": {"api_calls": {"included": 1000, "overage": None}},
     "rate_limit_per_second": 5, "rate_limit_per_minute": 60, "max_concurrent_requests": 5,
     "max_webhook_endpoints": 1, "max_members": 3,
     "features": ["api"], "sort_order": 0},
    {"code": "pro", "name": "Pro", "description": "For production workloads.", "price_monthly": 4900,
     "price_annual": 49000, "trial_days": 14, "quotas": {"api_calls": {"included": 100_000, "overage": "0.1"}},
     "rate_limit_per_second": 50, "rate_limit_per_minute": 1000, "max_concurrent_requests": 25,
     "max_webhook_endpoints": 10, "max_members": 20,
     "features": ["api", "webhooks", "audit_export"], "sort_order": 1},
    {"code": "enterprise", "name": "Enterprise", "description": "Unlimited usage, priority support.",
     "price_monthly": 50000, "price_annual": 500000, "trial_days": 30,
     "quotas": {"api_calls": {"included": None, "overage": None}}, "rate_limit_per_second": 500,
     "rate_limit_per_minute": 20000, "max_concurrent_requests": 100, "max_webhook_endpoints": None,
     "max_members": None,
     "features": ["api", "webhooks", "audit_export", "sso", "priority_support"], "sort_order": 2},
]


def _optional_int(value: Any, field: str, errors: dict[str, str], lo: int = 0, hi: int = 10**12) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
        if isinstance(value, float | bool) or str(number) != str(value).strip():
            raise ValueError
    except (TypeError, ValueError):
        errors[field] = "Enter a whole number."
        return None
    if not lo <= number <= hi:
        errors[field] = f"Enter a number from {lo} to {hi:,}."
    return number


def _quotas(raw: Any, errors: dict[str, str], metrics: dict[str, str]) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        errors["quotas"] = "Quotas map a metric to {included, overage}."
        return {}
    out: dict[str, dict[str, Any]] = {}
    for metric, spec in raw.items():
        if metric not in metrics:
            errors["quotas"] = f"Unknown metric {metric!r}; metrics: {', '.join(metrics)}."
            continue
        spec = spec if isinstance(spec, dict) else {}
        included = _optional_int(spec.get("included"), f"quotas.{metric}.included", errors)
        overage = spec.get("overage")
        if overage in (None, ""):
            overage = None
        else:
            try:
                value = Decimal(str(overage))
                if not value.is_finite() or value < 0 or value > 10**9:
                    raise InvalidOperation
                overage = str(value.normalize()) if value != value.to_integral() else str(value.quantize(Decimal(1)))
            except (InvalidOperation, ValueError):
                errors[f"quotas.{metric}.overage"] = "Enter a price per unit in minor units (e.g. 0.1 for $0.001)."
                overage = None
        grace = _optional_int(spec.get("grace"), f"quotas.{metric}.grace", errors, 0, 100)
        if grace and (included is None or overage is not None):
            errors[f"quotas.{metric}.grace"] = "A grace applies only to a hard quota (included, no overage price)."
        out[metric] = {"included": included, "overage": overage} | ({"grace": grace} if grace else {})
    return out


def clean(data: dict[str, Any], plan: Plan | None) -> dict[str, Any]:
    """Validate plan fields; every problem is reported at once, per field."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    if "code" in data or plan is None:
        code = str(data.get("code") or "").strip().lower()
        if not CODE_RE.match(code):
            errors["code"] = "2–40 characters: a-z, 0-9, _ and -."
        else:
            other = queries.find_plan(code)
            if other is not None and (plan is None or other.id != plan.id):
                errors["code"] = "Another plan has this code."
        out["code"] = code
    if "name" in data or plan is None:
        name = str(data.get("name") or "").strip()
        if not name or len(name) > 80:
            errors["name"] = "Enter a name of at most 80 characters."
        out["name"] = name
    if "description" in data:
        description = str(data.get("description") or "").strip()
        if len(description) > 500:
            errors["description"] = "At most 500 characters."
        out["description"] = description
    if "currency" in data or plan is None:
        currency = str(data.get("currency") or "USD").strip().upper()
        if currency not in CURRENCIES:
            errors["currency"] = f"Currency is one of {', '.join(CURRENCIES)}."
        out["currency"] = currency
    if "late_fee_percent" in data:
        raw = data.get("late_fee_percent")
        percent = None
        if raw not in (None, ""):
            try:
                percent = Decimal(str(raw).strip())
                if not percent.is_finite() or not 0 <= percent <= 100 or percent.as_tuple().exponent < -2:
                    raise InvalidOperation
            except (InvalidOperation, ValueError):
                errors["late_fee_percent"] = "A percentage from 0 to 100 with at most 2 decimals, or blank."
                percent = None
        out["late_fee_percent"] = percent or None
    for field, hi in (("price_monthly", 10**10), ("price_annual", 10**11), ("trial_days", 365), ("sort_order", 1000),
                      ("late_fee", 10**10)):
        if field in data:
            value = _optional_int(data.get(field), field, errors, 0, hi)
            out[field] = value if value is not None else 0
    for field, hi in (("rate_limit_per_second", MAX_PER_SECOND), ("rate_limit_per_minute", 60 * MAX_PER_SECOND),
                      ("max_concurrent_requests", 10**9), ("max_webhook_endpoints", 10**9), ("max_members", 10**9)):
        if field in data:
            out[field] = _optional_int(data.get(field), field, errors, 1, hi)
    if "quotas" in data:
        out["quotas"] = _quotas(data.get("quotas"), errors, quota_metrics(plan.quotas if plan else None))
    if "features" in data:
        raw = data.get("features") or []
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        features = sorted({str(f).strip().lower() for f in items if str(f).strip()})
        bad = [f for f in features if not FEATURE_RE.match(f)]
        if bad:
            errors["features"] = f"Feature keys use a-z, 0-9 and _.- : {', '.join(bad)}."
        out["features"] = features
    if "is_public" in data:
        out["is_public"] = bool(data.get("is_public"))
    if errors:
        raise Invalid("Some fields need attention.", errors=errors)
    return out


def _snapshot(plan: Plan) -> dict[str, Any]:
    return {field: getattr(plan, field) for field in FIELDS}


def create_plan(actor: Actor, data: dict[str, Any]) -> Plan:
    plan = Plan(**clean(data, None))
    db.session.add(plan)
    db.session.flush()
    audit.record(actor, "plan.created", targets=[Target("plan", plan.id, plan.code)],
                 changes={k: [None, v] for k, v in _snapshot(plan).items()})
    db.session.commit()
    return plan


def update_plan(actor: Actor, plan_id: str, data: dict[str, Any]) -> Plan:
    plan = queries.get_plan(plan_id)
    before = _snapshot(plan)
    for field, value in clean({k: v for k, v in data.items() if k in FIELDS}, plan).items():
        setattr(plan, field, value)
    after = _snapshot(plan)
    changes = {k: [before[k], after[k]] for k in FIELDS if before[k] != after[k]}
    if changes:
        keycache.bump_after_commit(db.session, queries.tenant_ids_on(plan.id))
        audit.record(actor, "plan.updated", targets=[Target("plan", plan.id, plan.code)], changes=changes)
    db.session.commit()
    return plan


def set_archived(actor: Actor, plan_id: str, archived: bool) -> Plan:
    """Archive (no new tenants can choose it; existing ones keep it) or restore a plan."""
    plan = queries.get_plan(plan_id)
    if plan.archived == archived:
        raise Conflict(f"The plan is already {'archived' if archived else 'active'}.")
    old = plan.archived_at
    plan.archived_at = clock.now() if archived else None
    audit.record(actor, "plan.archived" if archived else "plan.restored", targets=[Target("plan", plan.id, plan.code)],
                 changes={"archived_at": [old, plan.archived_at]})
    db.session.commit()
    return plan


def ensure_default_plans(actor: Actor) -> list[Plan]:
    """Create Free, Pro and Enterprise if missing (idempotent)."""
    created = []
    for spec in DEFAULT_PLANS:
        if queries.find_plan(spec["code"]) is None:
            created.append(create_plan(actor, spec))
    return created
