"""Read side of flags: lookups, listings with search/tag/stale filters, schedules, history, and a tenant's
values (from the snapshot)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from app import clock
from app.db import like_escape
from app.errors import NotFound
from app.extensions import db
from app.flags.engine import Evaluation, Subject, serves_one_value, subject_of
from app.flags.models import Flag, FlagSchedule

STALE_AFTER = timedelta(days=30)


def find_flag(key: str) -> Flag | None:
    """A flag by key, archived or not."""
    return db.session.scalar(select(Flag).where(Flag.key == key)) if isinstance(key, str) else None


def get_flag(key: str, include_archived: bool = False, for_update: bool = False) -> Flag:
    stmt = select(Flag).where(Flag.key == key)
    if for_update:
        stmt = stmt.with_for_update()
    flag = db.session.scalar(stmt) if isinstance(key, str) else None
    if flag is None or (flag.archived and not include_archived):
        raise NotFound(f"No flag {key!r}.")
    return flag


def is_stale(flag: Flag, now: datetime | None = None) -> bool:
    """Unchanged for 30 days and serving one value to everyone (Flagsmith's 30 days; GrowthBook's test)."""
    now = now or clock.now()
    return (not flag.archived and flag.changed_at <= now - STALE_AFTER
            and serves_one_value(flag.enabled, flag.default_value, flag.rules or []))


def list_flags(search: str = "", tag: str | None = None, archived: bool = False, stale: bool | None = None,
               now: datetime | None = None) -> list[Flag]:
    """Flags by key; `search` matches key, description or owner; `stale` True/False filters on staleness."""
    stmt = select(Flag).where(Flag.archived_at.is_not(None) if archived else Flag.archived_at.is_(None))
    if search.strip():
        term = f"%{like_escape(search.strip().lower())}%"
        stmt = stmt.where(or_(Flag.key.like(term, escape="\\"), Flag.description.ilike(term, escape="\\"),
                              Flag.owner.ilike(term, escape="\\")))
    flags = list(db.session.scalars(stmt.order_by(Flag.key)))
    if tag:
        flags = [f for f in flags if tag in (f.tags or [])]
    if stale is not None:
        flags = [f for f in flags if is_stale(f, now) == stale]
    return flags


def stale_flags(now: datetime | None = None) -> list[Flag]:
    return list_flags(stale=True, now=now)


def all_tags() -> list[str]:
    return sorted({tag for tags in db.session.scalars(select(Flag.tags)) for tag in (tags or [])})


def schedules_for(key: str, pending_only: bool = False) -> list[FlagSchedule]:
    flag = get_flag(key, include_archived=True)
    stmt = select(FlagSchedule).where(FlagSchedule.flag_id == flag.id)
    if pending_only:
        stmt = stmt.where(FlagSchedule.done_at.is_(None), FlagSchedule.canceled_at.is_(None))
    return list(db.session.scalars(stmt.order_by(FlagSchedule.at, FlagSchedule.id)))


def pending_schedules() -> list[FlagSchedule]:
    return list(db.session.scalars(select(FlagSchedule).where(
        FlagSchedule.done_at.is_(None), FlagSchedule.canceled_at.is_(None)).order_by(FlagSchedule.at)))


def get_schedule(schedule_id: str) -> FlagSchedule:
    schedule = db.session.get(FlagSchedule, schedule_id) if isinstance(schedule_id, str) else None
    if schedule is None:
        raise NotFound("No such scheduled change.")
    return schedule


def history(key: str, limit: int = 50) -> list[Any]:
    """The flag's audit events, newest first (its change history with old and new values)."""
    from app.audit.models import AuditEvent

    flag = get_flag(key, include_archived=True)
    stmt = select(AuditEvent).where(AuditEvent.tenant_id.is_(None), AuditEvent.action.like("flag.%"))
    events = db.session.scalars(stmt.order_by(AuditEvent.occurred_at.desc(), AuditEvent.seq.desc()).limit(2000))
    return [e for e in events if any(t.get("id") == flag.id for t in e.targets or [])][:limit]


def tenant_subjects() -> list[Subject]:
    """Every tenant that is not closed, as rules see it (two queries, whatever the number of tenants)."""
    from app.plans.models import Plan
    from app.tenancy.models import Tenant, TenantTag

    tags: dict[str, set[str]] = defaultdict(set)
    for tenant_id, tag in db.session.execute(select(TenantTag.tenant_id, TenantTag.tag)):
        tags[tenant_id].add(tag)
    rows = db.session.execute(select(Tenant.id, Plan.code, Tenant.status, Tenant.country, Tenant.created_at)
                              .join(Plan, Plan.id == Tenant.plan_id).where(Tenant.status != "closed"))
    return [Subject(tid, code, status, country, frozenset(tags.get(tid, ())), created_at)
            for tid, code, status, country, created_at in rows]


def tenant_values(tenant: Any) -> list[Evaluation]:
    """Every live flag (and plan feature) evaluated for a tenant, by key, from the snapshot."""
    from app.flags.snapshot import holder

    subject = subject_of(tenant)
    snapshot = holder.current()
    return [holder.evaluate(key, subject) for key in sorted(snapshot.flags)]


def flag_types() -> dict[str, str]:
    """Key → type of every served flag (plan features are booleans)."""
    from app.flags.snapshot import holder

    return {key: flag.type for key, flag in holder.current().flags.items()}


def tenant_overview(tenant: Any) -> list[dict[str, Any]]:
    """For a tenant's staff page: every served flag's value for it and why, whether it is a flag staff can
    override (plan features without a flag are not), and the tenant's own override if it has one."""
    from app.flags.models import Flag

    flags = {f.key: f for f in db.session.scalars(select(Flag).where(Flag.archived_at.is_(None)))}
    out = []
    for evaluation in tenant_values(tenant):
        flag = flags.get(evaluation.key)
        override = next((rule["value"] for rule in (flag.rules or []) if flag is not None and rule.get("type") ==
                         "tenants" and tenant.id in rule.get("tenant_ids", [])), None) if flag else None
        out.append({"evaluation": evaluation, "flag": flag, "overridden": flag is not None and any(
            rule.get("type") == "tenants" and tenant.id in rule.get("tenant_ids", []) for rule in flag.rules or []),
            "override": override})
    return out
