"""Audit trail filters from a query string, shared by the staff and tenant pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.audit.models import OUTCOMES, SEVERITIES
from app.audit.queries import AuditFilters


def _day(raw: str, field: str, errors: dict[str, str]) -> datetime | None:
    """A YYYY-MM-DD day as its UTC midnight; bad input adds a field error."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        errors[field] = f"Use a date like 2025-01-31 (you entered “{raw[:40]}”)."
        return None


def parse_filters(args: dict[str, str], tenant_id: str | None = None) -> tuple[AuditFilters, dict[str, str]]:
    """Filters, and per-field errors for anything unusable (never silently ignored)."""
    errors: dict[str, str] = {}
    actor, action = args.get("actor", "").strip(), args.get("action", "").strip()
    if len(actor) > 254:
        errors["actor"] = "At most 254 characters."
    if len(action) > 80:
        errors["action"] = "At most 80 characters."
    choices = {}
    for field, allowed in (("outcome", OUTCOMES), ("severity", SEVERITIES)):
        value = args.get(field, "").strip()
        if value and value not in allowed:
            errors[field] = f"Choose one of {', '.join(allowed)}."
        choices[field] = value if value in allowed else ""
    since = _day(args.get("since", ""), "since", errors)
    until = _day(args.get("until", ""), "until", errors)
    if since and until and until < since:
        errors["until"] = "Until must not be before since."
    filters = AuditFilters(tenant_id=tenant_id, actor=actor, action=action, since=since,
                           until=until + timedelta(days=1) if until else None, **choices)  # until: whole day
    return filters, errors
