"""The audit trail: per-tenant hash chains, masking, limits, failures that survive rollbacks, verify."""

from __future__ import annotations

import itertools

from sqlalchemy import func, select

from app.audit import service as audit
from app.audit import verification
from app.audit.models import AuditChain, AuditEvent
from app.audit.service import GENESIS, MASK, Target, compute_hash
from app.extensions import db
from app.security import Actor

ALICE = Actor(type="user", id="usr_01hzzzzzzzzzzzzzzzzzzzzzzz", display="alice@example.com", ip="203.0.113.9",
              user_agent="pytest", request_id="req-12345678")


def chain_events(chain: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)))


def test_events_chain_per_tenant_with_consecutive_seqs(make):
    a, b = make.tenant(), make.tenant()
    before_a, before_b = len(chain_events(a.id)), len(chain_events(b.id))
    for n in range(3):
        audit.record(ALICE, "thing.done", tenant_id=a.id, metadata={"n": n})
        audit.record(ALICE, "thing.done", tenant_id=b.id, metadata={"n": n})
    audit.record(ALICE, "thing.done", tenant_id=a.id)
    db.session.commit()

    for tenant, added in ((a, 4), (b, 3)):
        events = chain_events(tenant.id)
        assert len(events) == {a.id: before_a, b.id: before_b}[tenant.id] + added
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert events[0].prev_hash == GENESIS
        for previous, event in itertools.pairwise(events):
            assert event.prev_hash == previous.hash
            assert event.hash == compute_hash(event)
            assert event.tenant_id == tenant.id
        head = db.session.get(AuditChain, tenant.id)
        assert (head.seq, head.hash) == (events[-1].seq, events[-1].hash)


def test_platform_events_have_their_own_chain(ctx):
    for action in ("plan.created", "staff.created"):
        audit.record(Actor.system("tests"), action)
    db.session.commit()
    events = chain_events("platform")
    assert [e.seq for e in events] == [1, 2]
    assert all(e.tenant_id is None for e in events)
    assert events[1].prev_hash == events[0].hash


def test_event_records_actor_context_targets_and_outcome(make):
    tenant = make.tenant()
    event = audit.record(ALICE, "api_key.created", tenant_id=tenant.id, targets=[Target("api_key", "key_x", "ci")],
                         changes={"name": [None, "ci"], "unchanged": [1, 1]})
    db.session.commit()
    stored = db.session.get(AuditEvent, event.id)
    assert (stored.actor_type, stored.actor_id, stored.actor_display) == ("user", ALICE.id, ALICE.display)
    assert (stored.ip, stored.user_agent, stored.request_id) == ("203.0.113.9", "pytest", "req-12345678")
    assert stored.targets == [{"type": "api_key", "id": "key_x", "name": "ci"}]
    assert stored.changes == {"name": [None, "ci"]}  # unchanged fields are dropped
    assert (stored.outcome, stored.severity) == ("success", "info")
    assert stored.occurred_at.tzinfo is not None


def test_secrets_are_masked_in_changes_and_metadata(make):
    tenant = make.tenant()
    event = audit.record(
        ALICE, "secrets.everywhere", tenant_id=tenant.id,
        changes={"password": ["old-hunter2", "new-hunter2"], "key_hash": [None, "a" * 64], "name": ["a", "b"]},
        metadata={"token": "tok-hunter2", "signing_secret": "whsec_hunter2", "api_key": "tnt_live_hunter2",
                  "current_password": "cur-hunter2", "request": {"password": "nested-hunter2", "ok": 1},
                  "items": [{"access_token": "list-hunter2"}], "email": "a@example.com"},
    )
    db.session.commit()
    stored = db.session.get(AuditEvent, event.id)
    assert stored.changes["password"] == [MASK, MASK]
    assert stored.changes["key_hash"] == [MASK, MASK]
    assert stored.changes["name"] == ["a", "b"]
    assert stored.meta["token"] == MASK
    assert stored.meta["signing_secret"] == MASK
    assert stored.meta["api_key"] == MASK
    assert stored.meta["email"] == "a@example.com"
    assert "hunter2" not in repr(stored.changes) + repr(stored.meta)
    assert stored.meta["request"]["ok"] == 1


def test_metadata_is_capped_at_50_keys_and_500_char_strings(make):
    tenant = make.tenant()
    metadata = {f"k{n:03}": n for n in range(80)} | {"k000": "x" * 5000}
    event = audit.record(ALICE, "big.metadata", tenant_id=tenant.id, metadata=metadata)
    db.session.commit()
    stored = db.session.get(AuditEvent, event.id)
    assert len(stored.meta) == 50
    assert stored.meta["k000"] == "x" * 500
    assert "k049" in stored.meta and "k050" not in stored.meta


def test_record_failure_commits_even_when_the_caller_rolls_back(make):
    tenant = make.tenant(name="Before")
    tenant_id = tenant.id
    tenant.name = "Changed but rolled back"  # the caller's pending change
    audit.record_failure(ALICE, "access.denied", tenant_id=tenant_id, metadata={"permission": "tenant:write"})
    audit.record(ALICE, "tenant.updated", tenant_id=tenant_id)  # in the caller's transaction
    db.session.rollback()

    assert db.session.get(type(tenant), tenant_id).name == "Before"
    actions = [e.action for e in chain_events(tenant_id)]
    assert "access.denied" in actions
    assert "tenant.updated" not in actions
    denied = next(e for e in chain_events(tenant_id) if e.action == "access.denied")
    assert (denied.outcome, denied.severity) == ("denied", "warning")
    assert verification.verify(tenant_id)[0].ok


def test_rolled_back_events_leave_no_gap_in_the_chain(make):
    tenant = make.tenant()
    audit.record(ALICE, "will.roll.back", tenant_id=tenant.id)
    db.session.rollback()
    audit.record(ALICE, "kept", tenant_id=tenant.id)
    db.session.commit()
    events = chain_events(tenant.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(report.ok for report in verification.verify())


def test_verify_is_ok_on_an_untouched_trail(make):
    tenants = [make.tenant() for _ in range(2)]
    for tenant in tenants:
        make.api_key(tenant)
    reports = verification.verify()
    assert {r.chain for r in reports} >= {tenants[0].id, tenants[1].id, "platform"}
    assert all(r.ok for r in reports), reports
    total = db.session.scalar(select(func.count()).select_from(AuditEvent))
    assert sum(r.events for r in reports) == total


def test_verify_leaves_the_callers_objects_usable(make):
    tenant = make.tenant(name="Still Here")
    assert all(r.ok for r in verification.verify())
    tenant.name = "Renamed after verify"  # not detached by verify's batching: the change is saved
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(type(tenant), tenant.id).name == "Renamed after verify"
