"""Read side of the plan catalogue."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db import is_id
from app.errors import NotFound
from app.extensions import db
from app.plans.models import Plan


def find_plan(code_or_id: str) -> Plan | None:
    """A plan by id (plan_…) or by code."""
    if is_id(code_or_id, "plan"):
        return db.session.get(Plan, code_or_id)
    return db.session.scalar(select(Plan).where(Plan.code == (code_or_id or "").strip().lower()))


def get_plan(plan_id: str) -> Plan:
    plan = db.session.get(Plan, plan_id) if is_id(plan_id, "plan") else None
    if plan is None:
        raise NotFound("No such plan.")
    return plan


def list_plans(include_archived: bool = True) -> list[Plan]:
    """Plans in catalogue order; archived ones last."""
    stmt = select(Plan)
    if not include_archived:
        stmt = stmt.where(Plan.archived_at.is_(None))
    return list(db.session.scalars(stmt.order_by(Plan.archived_at.is_not(None), Plan.sort_order, Plan.price_monthly)))


def tenant_counts() -> dict[str, int]:
    """How many tenants are on each plan."""
    from app.tenancy.models import Tenant

    return dict(db.session.execute(select(Tenant.plan_id, func.count()).group_by(Tenant.plan_id)).all())


def tenant_ids_on(plan_id: str) -> list[str]:
    """Ids of the tenants on a plan (to refresh their cached limits when it changes)."""
    from app.tenancy.models import Tenant

    return list(db.session.scalars(select(Tenant.id).where(Tenant.plan_id == plan_id)))


def features_by_code() -> dict[str, list[str]]:
    """Each plan's feature keys by plan code (archived plans too: tenants may still be on them)."""
    return {code: list(features or []) for code, features in db.session.execute(select(Plan.code, Plan.features))}
