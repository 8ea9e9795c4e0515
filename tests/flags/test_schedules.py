"""Scheduled flag changes run through the clock: due ones apply once, audited and published like any change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import clock, flags
from app.audit.models import AuditEvent
from app.errors import Invalid
from app.extensions import db
from app.flags import queries, schedules, service
from app.flags.engine import bucket
from app.flags.jobs import run_due_schedules
from tests.flags.conftest import STAFF

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_enable_then_raise_the_rollout_at_set_times(ctx, make, create):
    tenants = [make.tenant() for _ in range(6)]
    with clock.travel(START):
        create("launch", rules=[{"type": "rollout", "percentage": 0, "value": True}])
        on = schedules.schedule_change(STAFF, "launch", START + timedelta(hours=1), "enable")
        ramp = schedules.schedule_change(STAFF, "launch", "2026-03-01T12:00:00Z", "set_rollout", {"percentage": 100})
        assert [s.id for s in queries.schedules_for("launch", pending_only=True)] == [on.id, ramp.id]
        assert run_due_schedules() == 0
        clock.advance(timedelta(hours=1))
        assert run_due_schedules() == 1
        assert run_due_schedules() == 0  # done once
        assert queries.get_flag("launch").enabled
        assert not any(flags.is_enabled("launch", t) for t in tenants)
        clock.advance(timedelta(hours=2))
        assert run_due_schedules() == 1
    assert all(flags.is_enabled("launch", t) for t in tenants)
    db.session.expire_all()
    assert queries.get_schedule(ramp.id).status == "done"
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("flag.%"))
                                 .order_by(AuditEvent.seq)).all()
    assert actions == ["flag.created", "flag.schedule_created", "flag.schedule_created", "flag.enabled",
                       "flag.updated"]
    updated = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "flag.updated"))
    assert updated.actor_display == "scheduler" and updated.meta["schedule_id"] == ramp.id


def test_set_rules_cancel_and_failures(ctx, make, create):
    tenant = make.tenant()
    with clock.travel(START):
        create("rules", enabled=True)
        later = schedules.schedule_change(STAFF, "rules", START + timedelta(minutes=5), "set_rules",
                                          {"rules": [{"type": "tenants", "tenant_ids": [tenant.id], "value": True}]})
        canceled = schedules.schedule_change(STAFF, "rules", START + timedelta(minutes=5), "disable")
        schedules.cancel_schedule(STAFF, canceled.id)
        with pytest.raises(Invalid):
            schedules.cancel_schedule(STAFF, canceled.id)
        clock.advance(timedelta(minutes=10))
        assert schedules.run_due() == 1
    assert flags.is_enabled("rules", tenant)
    assert queries.get_schedule(later.id).status == "done"
    assert queries.get_schedule(canceled.id).status == "canceled"
    assert queries.get_flag("rules").enabled  # the canceled disable never ran


def test_a_rollout_change_whose_rule_went_away_fails_once_and_is_recorded(ctx, create):
    with clock.travel(START):
        create("ramp", enabled=True, rules=[{"type": "rollout", "percentage": 10, "value": True}])
        change = schedules.schedule_change(STAFF, "ramp", START + timedelta(minutes=1), "set_rollout",
                                           {"percentage": 50})
        service.update_flag(STAFF, "ramp", {"rules": []})
        clock.advance(timedelta(minutes=2))
        assert schedules.run_due() == 1
        assert schedules.run_due() == 0
    failed = queries.get_schedule(change.id)
    assert failed.status == "failed" and "rollout" in failed.error
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "flag.schedule_failed")) is not None


def test_scheduling_is_validated(ctx, create):
    with clock.travel(START):
        create("v", enabled=True)
        for at, action, payload, field in [
            (START - timedelta(minutes=1), "enable", None, "at"),
            ("tomorrow", "enable", None, "at"),
            (START + timedelta(days=1), "explode", None, "action"),
            (START + timedelta(days=1), "set_rollout", {"percentage": 5}, "payload.rule"),
            (START + timedelta(days=1), "set_rules", {"rules": [{"type": "rollout", "percentage": 200, "value": True}]},
             "payload.rules[0].percentage"),
        ]:
            with pytest.raises(Invalid) as caught:
                schedules.schedule_change(STAFF, "v", at, action, payload)
            assert field in caught.value.errors


def test_rollout_raised_on_schedule_keeps_the_first_tenants(ctx, make, create):
    tenants = [make.tenant() for _ in range(40)]
    with clock.travel(START):
        create("sticky", enabled=True, rules=[{"type": "rollout", "percentage": 25, "value": True}])
        first = {t.id for t in tenants if flags.is_enabled("sticky", t)}
        assert first == {t.id for t in tenants if bucket("sticky", t.id) < 25}
        schedules.schedule_change(STAFF, "sticky", START + timedelta(minutes=1), "set_rollout", {"percentage": 60})
        clock.advance(timedelta(minutes=1))
        schedules.run_due()
    assert first <= {t.id for t in tenants if flags.is_enabled("sticky", t)}
