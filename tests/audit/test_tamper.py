"""The trail is append-only in the database, and hand edits that bypass that are caught by verify."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DatabaseError

from app.audit import service as audit
from app.audit import verification
from app.audit.models import AuditEvent
from app.extensions import db
from app.security import Actor

SYSTEM = Actor.system("tests")


def seeded_chain(make, extra: int = 4):
    """A tenant whose chain has its creation event plus `extra` more."""
    tenant = make.tenant(slug="tamper-co")
    for n in range(extra):
        audit.record(SYSTEM, "thing.done", tenant_id=tenant.id, metadata={"n": n})
    db.session.commit()
    seqs = list(db.session.scalars(
        select(AuditEvent.seq).where(AuditEvent.chain == tenant.id).order_by(AuditEvent.seq)
    ))
    assert seqs == list(range(1, extra + 2))
    return tenant, len(seqs)


@contextlib.contextmanager
def trigger_bypassed():
    """Edit audit rows by hand, as someone with database access could (bypassing the trigger)."""
    db.session.commit()
    dialect = db.engine.dialect.name
    with db.engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
    try:
        with db.engine.begin() as conn:
            yield conn
    finally:
        if dialect == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))
        db.session.expire_all()


def test_update_through_sqlalchemy_is_rejected(make):
    tenant, _ = seeded_chain(make, 1)
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(update(AuditEvent).where(AuditEvent.chain == tenant.id).values(action="nothing.happened"))
        db.session.flush()
    db.session.rollback()
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.chain == tenant.id)).first()
    event.outcome = "denied"  # through the ORM unit of work too
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    assert verification.verify(tenant.id)[0].ok


def test_delete_through_sqlalchemy_is_rejected(make):
    tenant, count = seeded_chain(make, 1)
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(delete(AuditEvent).where(AuditEvent.chain == tenant.id))
        db.session.flush()
    db.session.rollback()
    remaining = db.session.scalars(select(AuditEvent).where(AuditEvent.chain == tenant.id)).all()
    assert len(remaining) == count


def test_edited_row_is_named_by_its_seq(make):
    tenant, _ = seeded_chain(make)
    with trigger_bypassed() as conn:
        conn.execute(text("UPDATE audit_events SET action = 'nothing.happened' WHERE chain = :c AND seq = 3"),
                     {"c": tenant.id})
    [report] = verification.verify(tenant.id)
    assert not report.ok
    assert report.broken_seq == 3
    assert "hash" in report.reason


def test_recomputed_hash_still_breaks_the_next_link(make):
    tenant, _ = seeded_chain(make)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.chain == tenant.id, AuditEvent.seq == 2))
    event.outcome = "denied"
    forged = audit.compute_hash(event)
    db.session.rollback()
    with trigger_bypassed() as conn:
        conn.execute(text("UPDATE audit_events SET outcome = 'denied', hash = :h WHERE chain = :c AND seq = 2"),
                     {"c": tenant.id, "h": forged})
    [report] = verification.verify(tenant.id)
    assert (report.ok, report.broken_seq) == (False, 3)


def test_deleted_middle_event_is_a_missing_seq(make):
    tenant, _ = seeded_chain(make)
    with trigger_bypassed() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE chain = :c AND seq = 2"), {"c": tenant.id})
    [report] = verification.verify(tenant.id)
    assert (report.ok, report.broken_seq) == (False, 2)


def test_deleting_the_last_event_is_caught_by_the_head(make):
    tenant, count = seeded_chain(make)
    with trigger_bypassed() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE chain = :c AND seq = :s"), {"c": tenant.id, "s": count})
    [report] = verification.verify(tenant.id)
    assert not report.ok
    assert report.broken_seq == count
    assert "removed" in report.reason


def test_other_chains_still_verify(make):
    tenant, _ = seeded_chain(make)
    other = make.tenant(slug="untouched-co")
    with trigger_bypassed() as conn:
        conn.execute(text("UPDATE audit_events SET actor_display = 'someone else' WHERE chain = :c AND seq = 1"),
                     {"c": tenant.id})
    reports = {r.chain: r for r in verification.verify()}
    assert not reports[tenant.id].ok and reports[tenant.id].broken_seq == 1
    assert reports[other.id].ok
    assert reports["platform"].ok


class TestCli:
    def test_clean_trail_exits_0(self, app, make):
        seeded_chain(make)
        result = app.test_cli_runner().invoke(args=["audit", "verify"])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("OK:")

    def test_tampering_exits_1_naming_the_seq(self, app, make):
        tenant, _ = seeded_chain(make)
        with trigger_bypassed() as conn:
            conn.execute(text("UPDATE audit_events SET metadata = :m WHERE chain = :c AND seq = 4"),
                         {"c": tenant.id, "m": '{"n": 99}'})
        result = app.test_cli_runner().invoke(args=["audit", "verify"])
        assert result.exit_code == 1
        assert "first bad sequence number 4" in result.output
        assert tenant.id in result.output

    def test_tenant_option_checks_only_that_chain(self, app, make):
        tenant, count = seeded_chain(make)
        clean = make.tenant(slug="clean-co")
        with trigger_bypassed() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE chain = :c AND seq = :s"), {"c": tenant.id, "s": count})
        runner = app.test_cli_runner()
        ok = runner.invoke(args=["audit", "verify", "--tenant", "clean-co"])
        assert ok.exit_code == 0, ok.output
        assert "1 chain(s)" in ok.output
        bad = runner.invoke(args=["audit", "verify", "--tenant", "tamper-co"])
        assert bad.exit_code == 1
        assert f"first bad sequence number {count}" in bad.output
        assert clean.id not in bad.output

    def test_unknown_tenant_is_an_error(self, app, ctx):
        result = app.test_cli_runner().invoke(args=["audit", "verify", "--tenant", "nobody"])
        assert result.exit_code != 0
        assert "No tenant with slug 'nobody'" in result.output
