"""Flag use cases: validation per field, audit with old and new values, flag.updated per affected tenant,
overrides, archive and delete, stale detection, plan features read as flags, last evaluated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import clock, flags
from app.audit.models import AuditEvent
from app.errors import Conflict, Invalid, NotFound
from app.events.models import OutboxEvent
from app.extensions import db
from app.flags import queries, service
from app.flags.models import Flag
from app.flags.snapshot import holder
from tests.flags.conftest import STAFF


def _errors(call, *args) -> dict[str, str]:
    with pytest.raises(Invalid) as caught:
        call(*args)
    return caught.value.errors


def test_validation_names_each_field(ctx, create):
    errors = _errors(service.create_flag, STAFF, {
        "key": "Bad Key", "type": "boolean", "default_value": "yes"})
    assert set(errors) == {"key"}
    errors = _errors(service.create_flag, STAFF, {"key": "ok", "type": "string", "default_value": 3, "tags": ["ok", 5],
                                                   "metadata": [], "rules": [
        {"type": "tenants", "tenant_ids": ["nope"], "value": "x"},
        {"type": "segment", "constraints": [{"attribute": "plan", "operator": "before", "value": "x"}], "value": "x"},
        {"type": "rollout", "percentage": 101, "value": "x"},
        {"type": "variants", "variants": [{"name": "a", "value": "x", "weight": 60}, {"name": "a", "value": 1,
                                                                                     "weight": 30}]},
        {"type": "segment", "constraints": [{"attribute": "country", "operator": "in", "values": ["Germany"]}],
         "value": "x"},
        {"type": "nope"},
        {"type": "plan"},
    ]})
    assert errors["default_value"].startswith("A string flag")
    assert "tags" in errors and errors["metadata"] == "A JSON object."
    assert errors["rules[0].tenant_ids"].startswith("A list of 1 to")
    assert errors["rules[1].constraints[0].operator"] == "For plan: one of in, not_in, equals."
    assert errors["rules[2].percentage"] == "A whole number from 0 to 100."
    assert "is used by another variant" in errors["rules[3].variants[1].name"]
    assert errors["rules[3].variants[1].value"].startswith("A string flag")
    assert errors["rules[4].constraints[0].values"].startswith("Two-letter")
    assert errors["rules[5].type"].startswith("One of")
    assert errors["rules[6].value"].startswith("Missing")
    weights = _errors(service.create_flag, STAFF, {"key": "w", "type": "number", "rules": [
        {"type": "variants", "variants": [{"name": "a", "value": 1, "weight": 60}, {"name": "b", "value": 2,
                                                                                     "weight": 30}]}]})
    assert weights["rules[0].variants"] == "The weights add up to 90; they must add up to 100."
    boolean = _errors(service.create_flag, STAFF, {"key": "b", "type": "boolean", "rules": [
        {"type": "variants", "variants": [{"name": "a", "value": True, "weight": 100}]}]})
    assert "rules[0].variants" in boolean
    create("taken")
    assert "exists" in _errors(service.create_flag, STAFF, {"key": "taken"})["key"]
    assert db.session.scalar(select(Flag).where(Flag.key == "ok")) is None


def test_changes_are_audited_with_old_and_new_values_and_published(ctx, make, create):
    a = make.tenant(slug="tenant-aa", plan="pro")
    b = make.tenant(slug="tenant-bb", plan="free")
    flag = create("new-ui", enabled=True, owner="growth", tags=["Beta"], metadata={"jira": "UI-1"})
    assert flag.tags == ["beta"] and flag.version == 1
    created = db.session.scalars(select(OutboxEvent).where(OutboxEvent.type == "flag.updated")).all()
    assert {e.tenant_id for e in created} == {a.id, b.id}  # nothing served before: every tenant learns the value
    assert created[0].payload["previous"] == {"value": None, "variant": None}
    db.session.execute(OutboxEvent.__table__.delete())
    db.session.commit()
    rules = [{"type": "segment", "constraints": [{"attribute": "plan", "operator": "equals", "value": "pro"}],
              "value": True}]
    service.update_flag(STAFF, "new-ui", {"rules": rules}, expected_version=1)
    events = db.session.scalars(select(OutboxEvent).where(OutboxEvent.type == "flag.updated")).all()
    assert [e.tenant_id for e in events] == [a.id]  # only the tenant whose value changed
    assert events[0].payload == {"key": "new-ui", "type": "boolean", "action": "updated", "value": True,
                                 "variant": "on", "reason": "TARGETING_MATCH",
                                 "previous": {"value": False, "variant": "default"}}
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("flag.%"))
                               .order_by(AuditEvent.seq)).all()
    assert [e.action for e in audit] == ["flag.created", "flag.updated"]
    assert audit[1].changes == {"rules": [[], rules]}
    assert audit[1].targets[0]["name"] == "new-ui" and audit[1].meta["version"] == 2
    with pytest.raises(Conflict):
        service.update_flag(STAFF, "new-ui", {"description": "late"}, expected_version=1)
    assert _errors(service.update_flag, STAFF, "new-ui", {"type": "string"})["type"].startswith("A flag's type")
    service.set_enabled(STAFF, "new-ui", False)
    last = db.session.scalars(select(AuditEvent).order_by(AuditEvent.occurred_at.desc(), AuditEvent.seq.desc())).first()
    assert last.action == "flag.disabled" and last.changes == {"enabled": [True, False]}
    assert [e.action for e in queries.history("new-ui")][:1] == ["flag.disabled"]


def test_a_failed_change_changes_nothing(ctx, make, create):
    make.tenant()
    create("x", enabled=True)
    before = db.session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    _errors(service.update_flag, STAFF, "x", {"rules": [{"type": "rollout", "percentage": -1, "value": True}]})
    assert queries.get_flag("x").rules == [] and queries.get_flag("x").version == 1
    assert db.session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) == before


def test_kill_switch_and_evaluate_for(ctx, make, create):
    tenant = make.tenant()
    create("beta", rules=[{"type": "tenants", "tenant_ids": [tenant.id], "value": True}])
    result = flags.evaluate_for("beta", tenant)
    assert (result.value, result.reason) == (False, "DISABLED")
    service.toggle(STAFF, "beta")
    assert flags.is_enabled("beta", tenant) is True
    assert flags.evaluate_for("beta", tenant).reason == "TARGETING_MATCH"
    missing = flags.evaluate_for("nope", tenant)
    assert (missing.reason, missing.error_code) == ("ERROR", "FLAG_NOT_FOUND")
    assert flags.value("nope", tenant, "fallback") == "fallback"


def test_overrides_for_one_tenant(ctx, make, create):
    a, b = make.tenant(), make.tenant()
    create("limit", type="number", default_value=10, enabled=True)
    service.set_override(STAFF, "limit", a.id, 50)
    service.set_override(STAFF, "limit", b.id, 50)
    assert queries.get_flag("limit").rules == [{"type": "tenants", "tenant_ids": sorted([a.id, b.id]), "value": 50}]
    service.set_override(STAFF, "limit", a.id, 99)
    assert flags.value("limit", a) == 99 and flags.value("limit", b) == 50
    service.remove_override(STAFF, "limit", b.id)
    assert flags.value("limit", b) == 10
    with pytest.raises(NotFound):
        service.set_override(STAFF, "limit", "ten_01jd0000000000000000000000", 1)
    assert "value" in _errors(service.set_override, STAFF, "limit", a.id, "many")


def test_archive_restore_delete(ctx, make, create):
    tenant = make.tenant()
    create("old", enabled=True, default_value=True)
    with pytest.raises(Conflict):
        service.delete_flag(STAFF, "old")
    service.archive_flag(STAFF, "old")
    assert flags.evaluate_for("old", tenant).error_code == "FLAG_NOT_FOUND"
    assert [f.key for f in queries.list_flags(archived=True)] == ["old"]
    service.restore_flag(STAFF, "old")
    assert flags.is_enabled("old", tenant)
    service.archive_flag(STAFF, "old")
    service.delete_flag(STAFF, "old")
    assert queries.find_flag("old") is None
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "flag.deleted")) is not None


def test_plan_features_read_through_flags(ctx, make, create):
    from app.plans import service as plans_service
    from app.plans.queries import find_plan

    free, pro = make.tenant(plan="free"), make.tenant(plan="pro")
    assert flags.is_enabled("webhooks", pro) and not flags.is_enabled("webhooks", free)
    assert flags.evaluate_for("webhooks", pro).reason == "TARGETING_MATCH"
    assert find_plan("pro").features == ["api", "audit_export", "webhooks"]  # Plan.features still works
    plans_service.update_plan(STAFF, find_plan("free").id, {"features": ["api", "webhooks"]})
    assert flags.is_enabled("webhooks", free)  # the plan change reached the snapshot
    create("webhooks", enabled=False)  # a flag of a feature key takes over from the plan
    assert not flags.is_enabled("webhooks", pro)


def test_stale_detection(ctx, create):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with clock.travel(start):
        create("everyone", enabled=True, default_value=True)
        create("split", enabled=True, rules=[{"type": "rollout", "percentage": 50, "value": True}])
        create("off", rules=[{"type": "rollout", "percentage": 50, "value": True}])
    at = start + timedelta(days=29)
    assert queries.stale_flags(at) == []
    at = start + timedelta(days=31)
    assert [f.key for f in queries.stale_flags(at)] == ["everyone", "off"]
    with clock.travel(at):
        service.update_flag(STAFF, "everyone", {"description": "still used"})
    assert [f.key for f in queries.stale_flags(at)] == ["off"]
    assert [f.key for f in queries.list_flags(stale=False, now=at)] == ["everyone", "split"]


def test_last_evaluated_is_flushed_from_memory(ctx, make, create):
    tenant = make.tenant()
    create("seen", enabled=True)
    create("unseen", enabled=True)
    for _ in range(1000):
        flags.evaluate_for("seen", tenant)
    assert queries.get_flag("seen").last_evaluated_at is None  # never per evaluation
    moment = datetime(2026, 5, 1, tzinfo=UTC)
    with clock.travel(moment):
        assert holder.flush_evaluated() == 1
    db.session.expire_all()
    assert queries.get_flag("seen").last_evaluated_at == moment
    assert queries.get_flag("unseen").last_evaluated_at is None
    assert queries.get_flag("seen").version == 1  # not a change


def test_listing_filters(ctx, create):
    create("alpha", description="Checkout redesign", tags=["ui"])
    create("beta", owner="payments-team", tags=["api"])
    assert [f.key for f in queries.list_flags(search="checkout")] == ["alpha"]
    assert [f.key for f in queries.list_flags(search="PAYMENTS")] == ["beta"]
    assert [f.key for f in queries.list_flags(tag="api")] == ["beta"]
    assert queries.all_tags() == ["api", "ui"]
