"""Billing test helpers: a frozen clock, tenants subscribed through the real services, usage written to
the rollup tables, and readers for invoices, history, audit and outbox rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from app import clock
from app.audit.models import AuditEvent
from app.billing import subscriptions
from app.billing.invoice_models import Invoice
from app.billing.models import SubscriptionEvent
from app.events.models import OutboxEvent
from app.extensions import db
from app.security import Actor
from app.usage.models import UsageDaily

T0 = datetime(2030, 1, 15, 10, 0, tzinfo=UTC)
STAFF = Actor(type="staff", id="usr_staff", display="staff@example.com")
SYSTEM = Actor.system("tests")


@pytest.fixture
def frozen() -> Iterator[datetime]:
    """The clock frozen at T0 (tests move it with clock.advance or a nested clock.travel)."""
    with clock.travel(T0):
        yield T0


@pytest.fixture
def subscribe(make, frozen):
    """subscribe(plan="pro", trial=False, **kwargs) → (tenant, subscription) made through the services."""

    def _subscribe(plan: str = "pro", trial: bool = False, **kwargs):
        tenant = make.tenant(plan=plan)
        sub = subscriptions.create(SYSTEM, tenant.id, plan, trial=trial, **kwargs)
        return tenant, sub

    return _subscribe


def add_usage(tenant_id: str, day: date, value: int, metric: str = "api_calls") -> None:
    db.session.add(UsageDaily(tenant_id=tenant_id, day=day, metric=metric, value=value))
    db.session.commit()


def invoices_of(tenant_id: str) -> list[Invoice]:
    db.session.expire_all()
    return list(db.session.scalars(select(Invoice).where(Invoice.tenant_id == tenant_id)
                                   .order_by(Invoice.period_start)))


def history_of(tenant_id: str) -> list[SubscriptionEvent]:
    return list(db.session.scalars(select(SubscriptionEvent).where(SubscriptionEvent.tenant_id == tenant_id)
                                   .order_by(SubscriptionEvent.occurred_at, SubscriptionEvent.id)))


def outbox_types(tenant_id: str) -> list[str]:
    return list(db.session.scalars(select(OutboxEvent.type).where(OutboxEvent.tenant_id == tenant_id)
                                   .order_by(OutboxEvent.id)))


def audit_actions(tenant_id: str) -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant_id)
                                   .order_by(AuditEvent.seq)))


def lines_of(invoice: Invoice) -> list[tuple[str, int]]:
    return [(line.kind, line.amount) for line in invoice.lines]
