"""Request log filters from a query string, shared by the tenant and staff pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from app import clock
from app.db import is_id
from app.requestlog.queries import LogFilters

FILTER_ARGS = ("status", "route", "key", "request_id", "period", "since", "until")
PERIODS = {"15m": ("Last 15 minutes", timedelta(minutes=15)), "1h": ("Last hour", timedelta(hours=1)),
           "24h": ("Last 24 hours", timedelta(hours=24))}
STATUS_CLASSES = ("2xx", "4xx", "5xx")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_STATUS = re.compile(r"^(?:([1-5])xx|([1-5]\d\d))$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def valid_request_id(value: str) -> bool:
    return bool(_REQUEST_ID.match(value or ""))


def _moment(raw: str, field: str, errors: dict[str, str]) -> tuple[datetime | None, bool]:
    """A UTC time (2025-01-31T14:05) or a day (2025-01-31), and whether it was a whole day."""
    raw = raw.strip()
    if not raw:
        return None, False
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC), fmt == "%Y-%m-%d"
        except ValueError:
            continue
    errors[field] = f"Use a UTC time like 2025-01-31T14:05 or a day like 2025-01-31 (you entered “{raw[:40]}”)."
    return None, False


def parse_filters(args: dict[str, str], tenant_id: str | None = None) -> tuple[LogFilters, dict[str, str]]:
    """Filters, and per-field errors for anything unusable (never silently ignored)."""
    errors: dict[str, str] = {}
    filters = LogFilters(tenant_id=tenant_id)
    status = args.get("status", "").strip().lower()
    if status:
        match = _STATUS.match(status)
        if not match:
            errors["status"] = "Use a class (2xx, 4xx, 5xx) or a code such as 429."
        elif match.group(1):
            filters.status_class = int(match.group(1))
        else:
            filters.status = int(match.group(2))
    route = args.get("route", "").strip()
    if route:
        method, _, rule = route.partition(" ") if " " in route else ("", "", route)
        if len(rule) > 200 or not rule.startswith("/") or (method and method.upper() not in METHODS):
            errors["route"] = "Choose a route from the list, e.g. GET /api/v1/tenant."
        else:
            filters.method, filters.route = method.upper(), rule
    key = args.get("key", "").strip()
    if key:
        if is_id(key, "key"):
            filters.api_key_id = key
        else:
            errors["key"] = "Use an API key id (key_…)."
    request_id = args.get("request_id", "").strip()
    if request_id:
        if valid_request_id(request_id):
            filters.request_id = request_id
        else:
            errors["request_id"] = "A request id has up to 64 letters, digits, dots, dashes or underscores."
    period = args.get("period", "").strip()
    if period and period not in PERIODS:
        errors["period"] = f"Choose one of {', '.join(PERIODS)}."
    since, _ = _moment(args.get("since", ""), "since", errors)
    until, whole_day = _moment(args.get("until", ""), "until", errors)
    if until and whole_day:
        until += timedelta(days=1)  # a day given as "until" includes that day
    if since and until and until <= since:
        errors["until"] = "Until must be after since."
    if since is None and period in PERIODS:
        since = clock.now() - PERIODS[period][1]  # anything before the retention window is never shown
    filters.since, filters.until = since, until
    return filters, errors


def form_values(args: dict[str, str]) -> dict[str, str]:
    """The query as the filter form shows it: since/until as datetime-local values (2025-01-31T14:05),
    so a day typed into the URL is not blanked by the browser (and lost on the next filter change)."""
    values = dict(args)
    for field in ("since", "until"):
        moment, whole_day = _moment(args.get(field, ""), field, {})
        if moment:
            if whole_day and field == "until":
                moment += timedelta(days=1)
            values[field] = moment.strftime("%Y-%m-%dT%H:%M")
    return values
