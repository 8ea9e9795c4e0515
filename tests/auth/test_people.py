"""People: argon2id passwords, email normalisation, sign-in, and server-side sessions with timeouts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import extract_parameters
from sqlalchemy import select

from app import clock
from app.audit.models import AuditEvent
from app.auth import passwords, service
from app.auth.models import User
from app.errors import Conflict, Invalid, Unauthorized
from app.extensions import db
from app.security import Actor

SYSTEM = Actor.system("tests")
PASSWORD = "correct horse battery"


def actions(action_prefix: str = "") -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action.like(f"{action_prefix}%")).order_by(AuditEvent.id)
    return list(db.session.scalars(stmt))


def new_user(email="pat@example.com", password=PASSWORD, staff=False) -> User:
    user = service.build_user(email, "Pat", password, is_staff=staff)
    db.session.commit()
    return user


class TestPasswords:
    def test_hashes_are_argon2id_above_the_owasp_minimum(self, ctx):
        stored = passwords.hash_password("a long enough password")
        assert stored.startswith("$argon2id$")
        params = extract_parameters(stored)
        assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2 and params.parallelism >= 1
        assert passwords.verify_password(stored, "a long enough password")
        assert not passwords.verify_password(stored, "a long enough passworD")
        assert not passwords.verify_password(None, "anything at all")
        assert not passwords.verify_password("not-a-hash", "anything at all")

    def test_user_rows_store_only_the_hash(self, ctx):
        user = new_user()
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash

    @pytest.mark.parametrize("bad", ["short", " leading space pw", "trailing space pw ", "x" * 129])
    def test_policy(self, ctx, bad):
        with pytest.raises(Invalid) as exc:
            service.build_user("pol@example.com", "", bad)
        assert "password" in exc.value.errors
        db.session.rollback()
        assert service.find_user_by_email("pol@example.com") is None


class TestEmails:
    def test_case_and_whitespace_are_normalised(self, ctx):
        user = new_user("  Pat.Smith@Example.COM ")
        assert user.email == "pat.smith@example.com"
        assert service.find_user_by_email(service.normalize_email("PAT.SMITH@example.com")).id == user.id

    def test_registering_twice_by_case_is_a_conflict(self, ctx):
        new_user("pat@example.com")
        with pytest.raises(Conflict) as exc:
            service.build_user("PAT@Example.com", "Other Pat", PASSWORD)
        assert "email" in exc.value.errors
        db.session.rollback()
        assert len(db.session.scalars(select(User)).all()) == 1

    @pytest.mark.parametrize("bad", ["", "   ", "no-at-sign", "a@", "@example.com", "a b@example.com",
                                     "x" * 250 + "@example.com"])
    def test_bad_addresses_are_invalid(self, ctx, bad):
        with pytest.raises(Invalid) as exc:
            service.normalize_email(bad)
        assert exc.value.errors["email"]


class TestSignIn:
    def test_right_password_signs_in_any_case_of_email(self, ctx):
        user = new_user()
        assert service.authenticate(SYSTEM, "PAT@example.com ", PASSWORD, staff=False).id == user.id

    @pytest.mark.parametrize(("email", "password"), [("pat@example.com", "wrong password!"),
                                                     ("nobody@example.com", PASSWORD), ("not an email", PASSWORD)])
    def test_failures_say_the_same_thing_and_are_audited(self, ctx, email, password):
        new_user()
        with pytest.raises(Unauthorized) as exc:
            service.authenticate(SYSTEM, email, password, staff=False)
        assert exc.value.detail == service.LOGIN_FAILED
        db.session.rollback()
        [failed] = actions("auth.login_failed")
        assert (failed.outcome, failed.severity) == ("denied", "warning")
        assert failed.actor_display == email  # who tried, as typed (normalised when it is an address)
        assert password not in repr(failed.meta) + failed.actor_display

    def test_staff_login_refuses_non_staff(self, ctx):
        new_user()
        with pytest.raises(Unauthorized):
            service.authenticate(SYSTEM, "pat@example.com", PASSWORD, staff=True)
        staff = new_user("boss@example.com", staff=True)
        assert service.authenticate(SYSTEM, "boss@example.com", PASSWORD, staff=True).id == staff.id


class TestSessions:
    def test_start_load_end(self, ctx):
        user = new_user()
        session = service.start_session(SYSTEM, user)
        assert session.id.startswith("ses_")
        loaded = service.load_session(session.id)
        assert loaded.id == user.id and loaded.session_id == session.id
        assert [e.meta["session"] for e in actions("auth.login")] == [session.id]

        service.end_session(Actor(type="user", id=user.id, display=user.email), session.id)
        assert service.load_session(session.id) is None
        [logout] = actions("auth.logout")
        assert logout.meta["session"] == session.id
        assert service.load_session("ses_doesnotexist") is None

    def test_idle_timeout_is_30_minutes(self, ctx):
        user = new_user()
        start = clock.now()
        with clock.travel(start):
            session = service.start_session(SYSTEM, user)
            clock.advance(timedelta(minutes=29))
            assert service.load_session(session.id) is not None  # activity resets the idle timer
            clock.advance(timedelta(minutes=29))
            assert service.load_session(session.id) is not None
            clock.advance(timedelta(minutes=30, seconds=1))
            assert service.load_session(session.id) is None

    def test_absolute_timeout_is_12_hours_even_when_active(self, ctx):
        user = new_user()
        with clock.travel(clock.now()):
            session = service.start_session(SYSTEM, user)
            for _ in range(28):  # 11 h 40 min of activity every 25 minutes
                clock.advance(timedelta(minutes=25))
                assert service.load_session(session.id) is not None
            clock.advance(timedelta(minutes=19))  # 11:59
            assert service.load_session(session.id) is not None
            clock.advance(timedelta(minutes=2))  # 12:01
            assert service.load_session(session.id) is None

    def test_disabled_user_loses_their_sessions(self, ctx):
        staff = new_user("boss@example.com", staff=True)
        other = new_user("ops@example.com", staff=True)
        session = service.start_session(SYSTEM, other)
        service.set_staff_disabled(Actor(type="staff", id=staff.id, display=staff.email), other.id, True)
        assert service.load_session(session.id) is None
        assert actions("staff.disabled")

    def test_sign_out_everywhere_ends_every_session(self, ctx):
        user = new_user()
        sessions = [service.start_session(SYSTEM, user) for _ in range(3)]
        other = service.start_session(SYSTEM, new_user("someone@example.com"))
        ended = service.sign_out_everywhere(Actor(type="user", id=user.id, display=user.email), user.id)
        assert ended == 3
        assert all(service.load_session(s.id) is None for s in sessions)
        assert service.load_session(other.id) is not None
        [event] = actions("auth.sessions_revoked")
        assert event.meta["sessions"] == 3 and event.targets[0]["id"] == user.id
        assert service.active_sessions(user.id) == []

    def test_change_password_keeps_this_session_and_ends_the_others(self, ctx):
        user = new_user()
        current, other = service.start_session(SYSTEM, user), service.start_session(SYSTEM, user)
        me = service.load_session(current.id)
        actor = Actor(type="user", id=user.id, display=user.email)
        service.change_password(actor, me, PASSWORD, "a brand new passphrase")

        assert service.load_session(current.id) is not None
        assert service.load_session(other.id) is None
        assert [s.id for s in service.active_sessions(user.id)] == [current.id]
        assert service.authenticate(SYSTEM, user.email, "a brand new passphrase", staff=False).id == user.id
        with pytest.raises(Unauthorized):
            service.authenticate(SYSTEM, user.email, PASSWORD, staff=False)
        [event] = actions("auth.password_changed")
        assert event.changes == {"password": ["***", "***"]}
        assert "brand new" not in repr(event.changes) + repr(event.meta)

    def test_change_password_needs_the_current_one_and_the_policy(self, ctx):
        user = new_user()
        me = service.load_session(service.start_session(SYSTEM, user).id)
        actor = Actor(type="user", id=user.id, display=user.email)
        with pytest.raises(Invalid) as exc:
            service.change_password(actor, me, "not my password", "a brand new passphrase")
        assert "current_password" in exc.value.errors
        with pytest.raises(Invalid) as exc:
            service.change_password(actor, me, PASSWORD, "short")
        assert "password" in exc.value.errors
        db.session.rollback()
        assert service.authenticate(SYSTEM, user.email, PASSWORD, staff=False)
        assert not actions("auth.password_changed")

    def test_prune_removes_only_dead_sessions(self, ctx):
        user = new_user()
        start = clock.now()
        with clock.travel(start - timedelta(days=3)):
            old_id = service.start_session(SYSTEM, user).id
        live_id = service.start_session(SYSTEM, user).id
        assert service.prune_sessions() == 1
        assert service.load_session(live_id) is not None
        assert service.load_session(old_id) is None
        assert service.prune_sessions() == 0
