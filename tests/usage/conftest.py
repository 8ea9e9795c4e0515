"""Helpers for the usage-event tests: metrics defined through the real service, batches posted through
the real API, and the rolled-up numbers read back from the tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.security import Actor
from app.usage import events, rollup, service
from app.usage.models import UsageDaily

# A fixed moment in the middle of a month, so every event of a test falls in the same period.
NOW = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)
STAFF = Actor.system("tests")
EVENTS_URL = "/api/v1/usage/events"


@pytest.fixture(autouse=True)
def _forget_metric_catalog() -> Iterator[None]:
    """The ingestion path caches metric definitions for a second: a metric from the previous test's
    (emptied) database must not be accepted in this one."""
    events.catalog.clear()
    yield
    events.catalog.clear()


@pytest.fixture
def at_now() -> Iterator[datetime]:
    with clock.travel(NOW):
        yield NOW


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def define(code: str, aggregation: str = "count", field: str | None = None, decimals: int = 0, **extra):
    data = {"code": code, "name": extra.pop("name", code.replace("_", " ").capitalize()),
            "unit": extra.pop("unit", ""), "aggregation": aggregation, "field": field or "", "decimals": decimals}
    return service.create_metric(STAFF, data)


def event(event_id: str, metric: str, at: datetime | str | None = None, **properties) -> dict:
    out: dict = {"id": event_id, "metric": metric}
    if at is not None:
        out["timestamp"] = at.isoformat().replace("+00:00", "Z") if isinstance(at, datetime) else at
    if properties:
        out["properties"] = properties
    return out


def post(client, token: str, batch: list | dict, **headers):
    body = batch if isinstance(batch, dict) else {"events": batch}
    return client.post(EVENTS_URL, json=body, headers={**bearer(token), **headers})


def daily(tenant_id: str, metric: str) -> dict[str, int]:
    """The rolled-up value per day (ISO date → stored integer) of one tenant's metric."""
    rows = db.session.execute(select(UsageDaily.day, UsageDaily.value).where(
        UsageDaily.tenant_id == tenant_id, UsageDaily.metric == metric).order_by(UsageDaily.day)).all()
    return {day.isoformat(): int(value) for day, value in rows}


def current_metrics(client, token: str) -> dict[str, dict]:
    """GET /api/v1/usage/current's metrics, by code."""
    response = client.get("/api/v1/usage/current", headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    return {m["metric"]: m for m in response.get_json()["metrics"]}


def used(client, token: str, metric: str) -> Decimal:
    return Decimal(current_metrics(client, token)[metric]["used"])


def roll() -> int:
    applied = rollup.rollup_all()
    db.session.expire_all()  # read back what the rollup wrote, not objects loaded before it
    return applied
