"""Exports: tenants, users, memberships, plans, flags, usage and the audit trail as CSV or JSON Lines, with the
filters of their staff pages, read in keyset batches (never the whole table in memory) and written
gzip-compressed into the job. CSV cells that a spreadsheet would run as a formula (starting with = + - @,
a tab or a carriage return) are prefixed with a single quote (OWASP's CSV injection advice); lists and
objects are JSON in a CSV cell and themselves in JSON Lines."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select

from app.errors import Invalid
from app.extensions import db

FORMATS = ("csv", "jsonl")
BATCH = 1000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    filters: tuple[str, ...]  # query-string names, as on the dataset's page
    columns: tuple[str, ...]
    query: Callable[[dict[str, Any]], Select]  # cleaned filters → a select of rows (ordered by `key` here)
    key: Any  # the column batches are keyed on (unique, increasing)
    row: Callable[[Any], dict[str, Any]]


def _iso(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


# --- the datasets -------------------------------------------------------------------------------------


def _tenants(filters: dict[str, Any]) -> Select:
    from app.tenancy.queries import tenants_query

    return tenants_query(filters.get("q", ""), filters.get("status", ""), filters.get("plan", ""),
                         filters.get("tag", ""))


def _tenant_row(tenant: Any) -> dict[str, Any]:
    return {"id": tenant.id, "slug": tenant.slug, "name": tenant.name, "status": tenant.status,
            "status_reason": tenant.status_reason, "country": tenant.country, "billing_email": tenant.billing_email,
            "plan": tenant.plan.code if tenant.plan else None, "tags": tenant.tags, "created_at": tenant.created_at}


def _users(filters: dict[str, Any]) -> Select:
    from app.auth.models import User
    from app.db import like_escape

    stmt = select(User)
    if filters.get("q"):
        like = f"%{like_escape(filters['q'].strip().lower())}%"
        stmt = stmt.where(User.email.like(like, escape="\\") | User.name.ilike(like, escape="\\"))
    if filters.get("staff") in ("1", "0"):
        stmt = stmt.where(User.is_staff.is_(filters["staff"] == "1"))
    return stmt


def _user_row(user: Any) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name, "is_staff": user.is_staff,
            "disabled_at": user.disabled_at, "last_login_at": user.last_login_at, "created_at": user.created_at}


def _memberships(filters: dict[str, Any]) -> Select:
    from app.auth.models import User
    from app.tenancy.models import Membership, Tenant

    stmt = (select(Membership.id, Membership.tenant_id, Tenant.slug, Membership.user_id, User.email,
                   Membership.role, Membership.created_at)
            .join(Tenant, Tenant.id == Membership.tenant_id).join(User, User.id == Membership.user_id))
    if filters.get("tenant_id"):
        stmt = stmt.where(Membership.tenant_id == filters["tenant_id"])
    return stmt


def _membership_row(row: Any) -> dict[str, Any]:
    return {"id": row.id, "tenant_id": row.tenant_id, "tenant_slug": row.slug, "user_id": row.user_id,
            "email": row.email, "role": row.role, "created_at": row.created_at}


def _plans(filters: dict[str, Any]) -> Select:
    from app.plans.models import Plan

    return select(Plan)


def _plan_row(plan: Any) -> dict[str, Any]:
    return {"id": plan.id, "code": plan.code, "name": plan.name, "currency": plan.currency,
            "price_monthly": plan.price_monthly, "price_annual": plan.price_annual, "trial_days": plan.trial_days,
            "quotas": plan.quotas, "features": plan.features, "rate_limit_per_second": plan.rate_limit_per_second,
            "rate_limit_per_minute": plan.rate_limit_per_minute, "is_public": plan.is_public,
            "archived_at": plan.archived_at}


def _flags(filters: dict[str, Any]) -> Select:
    from app.db import like_escape
    from app.flags.models import Flag

    stmt = select(Flag)
    if filters.get("q"):
        like = f"%{like_escape(filters['q'].strip().lower())}%"
        stmt = stmt.where(Flag.key.like(like, escape="\\") | Flag.description.ilike(like, escape="\\"))
    if filters.get("archived") != "1":
        stmt = stmt.where(Flag.archived_at.is_(None))
    return stmt


def _flag_row(flag: Any) -> dict[str, Any]:
    return {"key": flag.key, "type": flag.type, "enabled": flag.enabled, "default_value": flag.default_value,
            "rules": flag.rules, "tags": flag.tags, "owner": flag.owner, "description": flag.description,
            "version": flag.version, "changed_at": flag.changed_at, "archived_at": flag.archived_at}


def _usage(filters: dict[str, Any]) -> Select:
    from app.usage.models import UsageDaily

    stmt = select(UsageDaily)
    if filters.get("tenant_id"):
        stmt = stmt.where(UsageDaily.tenant_id == filters["tenant_id"])
    if filters.get("metric"):
        stmt = stmt.where(UsageDaily.metric == filters["metric"])
    if filters.get("since"):
        stmt = stmt.where(UsageDaily.day >= date.fromisoformat(filters["since"]))
    if filters.get("until"):
        stmt = stmt.where(UsageDaily.day <= date.fromisoformat(filters["until"]))
    return stmt


def _usage_row(row: Any) -> dict[str, Any]:
    return {"tenant_id": row.tenant_id, "day": row.day, "metric": row.metric, "value": row.value}


def _audit(filters: dict[str, Any]) -> Select:
    from app.audit.forms import parse_filters
    from app.audit.queries import filtered

    parsed, _ = parse_filters({k: v for k, v in filters.items() if k != "tenant_id"}, filters.get("tenant_id"))
    return filtered(parsed)


def _audit_row(event: Any) -> dict[str, Any]:
    return {"id": event.id, "occurred_at": event.occurred_at, "tenant_id": event.tenant_id, "action": event.action,
            "outcome": event.outcome, "severity": event.severity, "actor_type": event.actor_type,
            "actor_id": event.actor_id, "actor_display": event.actor_display, "targets": event.targets,
            "changes": event.changes, "metadata": event.meta, "ip": event.ip, "request_id": event.request_id,
            "chain": event.chain, "seq": event.seq, "prev_hash": event.prev_hash, "hash": event.hash}


def _datasets() -> dict[str, Dataset]:
    from app.audit.models import AuditEvent
    from app.auth.models import User
    from app.flags.models import Flag
    from app.plans.models import Plan
    from app.tenancy.models import Membership, Tenant
    from app.usage.models import UsageDaily

    return {d.name: d for d in (
        Dataset("tenants", "Tenants", ("q", "status", "plan", "tag"),
                ("id", "slug", "name", "status", "status_reason", "country", "billing_email", "plan", "tags",
                 "created_at"), _tenants, Tenant.id, _tenant_row),
        Dataset("users", "Users", ("q", "staff"),
                ("id", "email", "name", "is_staff", "disabled_at", "last_login_at", "created_at"),
                _users, User.id, _user_row),
        Dataset("memberships", "Memberships", ("tenant",),
                ("id", "tenant_id", "tenant_slug", "user_id", "email", "role", "created_at"),
                _memberships, Membership.id, _membership_row),
        Dataset("plans", "Plans", (),
                ("id", "code", "name", "currency", "price_monthly", "price_annual", "trial_days", "quotas", "features",
                 "rate_limit_per_second", "rate_limit_per_minute", "is_public", "archived_at"),
                _plans, Plan.id, _plan_row),
        Dataset("flags", "Feature flags", ("q", "archived"),
                ("key", "type", "enabled", "default_value", "rules", "tags", "owner", "description", "version",
                 "changed_at", "archived_at"), _flags, Flag.key, _flag_row),
        Dataset("usage", "Usage (daily)", ("tenant", "metric", "since", "until"),
                ("tenant_id", "day", "metric", "value"), _usage, UsageDaily.id, _usage_row),
        Dataset("audit", "Audit trail", ("tenant", "actor", "action", "outcome", "severity", "since", "until"),
                ("id", "occurred_at", "tenant_id", "action", "outcome", "severity", "actor_type", "actor_id",
                 "actor_display", "targets", "changes", "metadata", "ip", "request_id", "chain", "seq", "prev_hash",
                 "hash"), _audit, AuditEvent.id, _audit_row),
    )}


def datasets() -> dict[str, Dataset]:
    return _datasets()


def clean_request(dataset: str, fmt: str, args: dict[str, str]) -> dict[str, Any]:
    """Check an export request: a known dataset and format, and filters that parse (a tenant by slug or id,
    days as YYYY-MM-DD); raises Invalid naming each bad field. Returns the filters to store."""
    from app.tenancy.queries import tenant_filter

    errors: dict[str, str] = {}
    found = _datasets().get(dataset)
    if found is None:
        raise Invalid("Unknown export.", errors={"dataset": f"One of {', '.join(_datasets())}."})
    if fmt not in FORMATS:
        errors["format"] = "csv or jsonl."
    filters = {name: str(args.get(name, "")).strip()[:200] for name in found.filters if str(args.get(name, "")).strip()}
    if "tenant" in filters:
        filters["tenant_id"] = tenant_filter(filters.pop("tenant"), errors)
    for name in ("since", "until"):
        if name in filters:
            try:
                date.fromisoformat(filters[name])
            except ValueError:
                errors[name] = "A day as YYYY-MM-DD."
    if dataset == "audit" and not errors:
        from app.audit.forms import parse_filters

        errors.update(parse_filters(filters)[1])
    if errors:
        raise Invalid("The export has invalid filters.", errors=errors)
    return filters


def count(dataset: str, filters: dict[str, Any]) -> int:
    found = _datasets()[dataset]
    return db.session.scalar(select(func.count()).select_from(found.query(filters).subquery())) or 0


def rows(dataset: str, filters: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """The dataset's rows in batches of BATCH, in key order (each batch a fresh query after the last key)."""
    found = _datasets()[dataset]
    stmt = found.query(filters)
    last = None
    key_name = found.key.key
    while True:
        page = stmt.where(found.key > last) if last is not None else stmt
        result = db.session.execute(page.order_by(found.key).limit(BATCH))
        batch = list(result.scalars() if len(result.keys()) == 1 else result)
        if not batch:
            return
        yield [found.row(item) for item in batch]
        last = getattr(batch[-1], key_name)
        if len(batch) < BATCH:
            return


def _cell(value: Any) -> str:
    value = _iso(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        value = json.dumps(value, sort_keys=True, default=str)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


class Writer:
    """Rows into a gzip-compressed CSV or JSON Lines file in memory."""

    def __init__(self, fmt: str, columns: tuple[str, ...]) -> None:
        self.fmt, self.columns = fmt, columns
        self.buffer = io.BytesIO()
        self.gz = gzip.GzipFile(fileobj=self.buffer, mode="wb", mtime=0)
        self.text = io.TextIOWrapper(self.gz, encoding="utf-8", newline="")
        if fmt == "csv":
            self.csv = csv.writer(self.text, lineterminator="\r\n")
            self.csv.writerow(columns)

    def write(self, batch: list[dict[str, Any]]) -> None:
        for row in batch:
            if self.fmt == "csv":
                self.csv.writerow([_cell(row.get(column)) for column in self.columns])
            else:
                self.text.write(json.dumps({k: _iso(row.get(k)) for k in self.columns}, default=str,
                                           sort_keys=False) + "\n")

    def close(self) -> bytes:
        self.text.flush()
        self.text.detach()
        self.gz.close()
        return self.buffer.getvalue()


def file_name(dataset: str, fmt: str, moment: datetime) -> str:
    return f"tenantry-{dataset}-{moment:%Y%m%d-%H%M%S}.{fmt}"

