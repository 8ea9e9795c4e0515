"""Retention: rows older than REQUEST_LOG_RETENTION_DAYS are pruned in batches; newer ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app import clock
from app.extensions import db
from app.requestlog import jobs, service
from app.requestlog.models import RequestLogEntry
from tests.requestlog.helpers import entry, insert

NOW = datetime(2030, 5, 20, 12, 0, tzinfo=UTC)


def _ids() -> set[str]:
    db.session.expire_all()
    return set(db.session.scalars(select(RequestLogEntry.request_id)))


def test_prune_deletes_only_rows_past_retention(ctx, tenant_world):
    tenant_id = tenant_world["a"]["tenant"].id
    ages = {"fresh": timedelta(hours=1), "six-days": timedelta(days=6, hours=23),
            "just-inside": timedelta(days=7) - timedelta(seconds=1), "just-past": timedelta(days=7, seconds=1),
            "month-old": timedelta(days=30)}
    insert(*(entry(tenant_id, request_id=f"{name}-req", at=NOW - age) for name, age in ages.items()))
    with clock.travel(NOW):
        assert jobs.prune_request_log() == 2
        assert _ids() == {"fresh-req", "six-days-req", "just-inside-req"}
        assert service.prune() == 0  # running it again finds nothing


def test_retention_is_configurable(ctx, app, tenant_world, monkeypatch):
    tenant_id = tenant_world["b"]["tenant"].id
    insert(entry(tenant_id, request_id="two-days", at=NOW - timedelta(days=2)),
           entry(tenant_id, request_id="half-day", at=NOW - timedelta(hours=12)))
    monkeypatch.setitem(app.config, "REQUEST_LOG_RETENTION_DAYS", 1)
    with clock.travel(NOW):
        assert service.prune() == 1
    assert _ids() == {"half-day"}


def test_prune_works_in_batches(ctx, tenant_world):
    tenant_id = tenant_world["a"]["tenant"].id
    insert(*(entry(tenant_id, request_id=f"old-{n}", at=NOW - timedelta(days=9, minutes=n)) for n in range(7)),
           entry(tenant_id, request_id="new", at=NOW))
    with clock.travel(NOW):
        assert service.prune(batch=3) == 7  # three batches of 3, 3 and 1
    assert _ids() == {"new"}
