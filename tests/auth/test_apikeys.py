"""Tenant API keys: format and checksum, SHA-256 storage, scopes, expiry, revoke, roll, authenticate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select, text

from app import clock
from app.audit.models import AuditEvent
from app.auth import apikeys
from app.auth.models import ApiKey
from app.errors import Forbidden, Invalid, NotFound, Unauthorized
from app.events.models import OutboxEvent
from app.extensions import db
from app.security import ROLE_PERMISSIONS
from app.tenancy import service as tenancy_service

BASE62 = set(apikeys.BASE62)


def key_events(tenant_id: str, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == action)
        .order_by(AuditEvent.seq)
    ))


class TestFormat:
    def test_prefix_length_alphabet_checksum(self, ctx):
        for _ in range(50):
            key = apikeys.generate("live")
            assert key.startswith("tnt_live_")
            body = key[len("tnt_live_"):]
            assert len(body) == 32 and set(body) <= BASE62
            assert apikeys.is_well_formed(key)
            assert key[-6:] == apikeys.checksum(key[:-6])

    def test_keys_are_unique(self, ctx):
        assert len({apikeys.generate() for _ in range(500)}) == 500

    def test_every_one_character_typo_is_rejected(self, ctx):
        key = apikeys.generate()
        for position in range(len("tnt_live_"), len(key)):
            original = key[position]
            replacement = "a" if original != "a" else "b"
            typo = key[:position] + replacement + key[position + 1:]
            assert not apikeys.is_well_formed(typo), position

    @pytest.mark.parametrize("bad", ["", "tnt_live_", "sk_live_abc", "tnt_prod_" + "a" * 32, "tnt_live_" + "a" * 31,
                                     "tnt_live_" + "a" * 33, "TNT_LIVE_" + "a" * 32, "tnt_live_" + "-" * 32])
    def test_wrong_shapes_are_rejected(self, ctx, bad):
        assert not apikeys.is_well_formed(bad)

    def test_malformed_keys_are_refused_without_a_database_lookup(self, make):
        tenant = make.tenant()
        _, plaintext = make.api_key(tenant)
        typo = plaintext[:-8] + ("x" if plaintext[-8] != "x" else "y") + plaintext[-7:]
        statements = []

        def count(*_args):
            statements.append(1)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            with pytest.raises(Unauthorized, match="malformed"):
                apikeys.authenticate(typo)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert statements == []


class TestCreate:
    def test_only_the_sha256_is_stored(self, make):
        tenant = make.tenant()
        key, plaintext = make.api_key(tenant, name="prod backend")
        secret_part = plaintext[13:-4]  # what is neither the displayed prefix nor the last four
        assert key.key_hash == apikeys.hash_key(plaintext)
        assert key.masked == f"{plaintext[:13]}…{plaintext[-4:]}"
        db.session.commit()
        with db.engine.connect() as conn:
            dumped = [repr(tuple(row)) for table in ("api_keys", "audit_events", "outbox_events", "audit_chains")
                      for row in conn.execute(text(f"SELECT * FROM {table}"))]
        assert dumped
        assert not [row for row in dumped if plaintext in row or secret_part in row]
        assert any(apikeys.hash_key(plaintext) in row for row in dumped)

    def test_creation_is_audited_and_published(self, make):
        tenant = make.tenant()
        key, _ = make.api_key(tenant, scopes=["tenant:read", "usage:write"], name="ci")
        [created] = key_events(tenant.id, "api_key.created")
        assert created.targets == [{"type": "api_key", "id": key.id, "name": "ci"}]
        assert created.changes["scopes"] == [None, ["tenant:read", "usage:write"]]
        outbox = db.session.scalars(select(OutboxEvent).where(OutboxEvent.type == "api_key.created")).all()
        assert [o.payload["id"] for o in outbox] == [key.id]

    def test_scopes_must_be_within_the_actors_permissions(self, make):
        tenant = make.tenant()
        viewer = make.actor_for(tenant, "viewer")
        with pytest.raises(Forbidden) as exc:
            apikeys.create_key(viewer, tenant.id, "too much", ["tenant:read", "keys:write"])
        assert "keys:write" in exc.value.errors["scopes"]
        db.session.rollback()
        member = make.actor_for(tenant, "member")
        key, _ = apikeys.create_key(member, tenant.id, "fine", sorted(ROLE_PERMISSIONS["member"]))
        assert set(key.scopes) == ROLE_PERMISSIONS["member"]
        with pytest.raises(Forbidden):
            apikeys.create_key(member, tenant.id, "billing", ["billing:write"])
        db.session.rollback()
        assert [k.name for k in apikeys.list_keys(tenant.id)] == ["fine"]

    @pytest.mark.parametrize("scopes", [[], None, ["nope:read"], ["tenant:read", "tenant:admin"]])
    def test_scopes_must_be_known_and_non_empty(self, make, scopes):
        tenant = make.tenant()
        with pytest.raises(Invalid) as exc:
            apikeys.create_key(make.actor_for(tenant), tenant.id, "k", scopes)
        assert "scopes" in exc.value.errors
        db.session.rollback()
        assert apikeys.list_keys(tenant.id) == []

    @pytest.mark.parametrize("name", ["", "   ", "x" * 81])
    def test_name_is_required_and_short(self, make, name):
        tenant = make.tenant()
        with pytest.raises(Invalid) as exc:
            apikeys.create_key(make.actor_for(tenant), tenant.id, name, ["tenant:read"])
        assert "name" in exc.value.errors

    def test_expiry_must_be_in_the_future_and_aware(self, make):
        tenant = make.tenant()
        owner = make.actor_for(tenant)
        for past in (clock.now() - timedelta(seconds=1), clock.now()):
            with pytest.raises(Invalid) as exc:
                apikeys.create_key(owner, tenant.id, "k", ["tenant:read"], expires_at=past)
            assert "expires_at" in exc.value.errors
        with pytest.raises(Invalid):
            apikeys.create_key(owner, tenant.id, "k", ["tenant:read"], expires_at=datetime(2099, 1, 1))
        db.session.rollback()
        assert apikeys.list_keys(tenant.id) == []


class TestAuthenticate:
    def test_valid_key_returns_the_key(self, make):
        tenant = make.tenant()
        key, plaintext = make.api_key(tenant)
        assert apikeys.authenticate(plaintext).id == key.id

    def test_unknown_well_formed_key(self, ctx):
        with pytest.raises(Unauthorized, match="not valid") as exc:
            apikeys.authenticate(apikeys.generate())
        assert exc.value.headers["WWW-Authenticate"].startswith("Bearer")

    def test_revoked_key_is_refused(self, make):
        tenant = make.tenant()
        key, plaintext = make.api_key(tenant)
        owner = make.actor_for(tenant)
        apikeys.revoke_key(owner, tenant.id, key.id)
        with pytest.raises(Unauthorized, match="revoked"):
            apikeys.authenticate(plaintext)
        [revoked] = key_events(tenant.id, "api_key.revoked")
        assert revoked.severity == "warning"
        apikeys.revoke_key(owner, tenant.id, key.id)  # twice is a no-op, not a second event
        assert len(key_events(tenant.id, "api_key.revoked")) == 1

    def test_revoking_another_tenants_key_is_not_found(self, make):
        a, b = make.tenant(), make.tenant()
        key, plaintext = make.api_key(a)
        with pytest.raises(NotFound):
            apikeys.revoke_key(make.actor_for(b), b.id, key.id)
        assert apikeys.authenticate(plaintext).id == key.id

    def test_expired_key_is_refused(self, make):
        tenant = make.tenant()
        expires = clock.now() + timedelta(days=1)
        _, plaintext = make.api_key(tenant, expires_at=expires)
        with clock.travel(expires - timedelta(seconds=1)):
            assert apikeys.authenticate(plaintext)
        with clock.travel(expires), pytest.raises(Unauthorized, match="expired"):
            apikeys.authenticate(plaintext)

    def test_suspended_tenant_is_forbidden(self, make):
        tenant = make.tenant()
        _, plaintext = make.api_key(tenant)
        tenancy_service.set_status(make.system, tenant.id, "suspended", "unpaid")
        with pytest.raises(Forbidden, match="suspended"):
            apikeys.authenticate(plaintext)
        tenancy_service.set_status(make.system, tenant.id, "active")
        assert apikeys.authenticate(plaintext)

    def test_last_used_at_is_written_at_most_once_a_minute(self, make):
        tenant = make.tenant()
        key, plaintext = make.api_key(tenant)
        assert key.last_used_at is None
        start = datetime.now(UTC).replace(microsecond=0)
        with clock.travel(start):
            apikeys.authenticate(plaintext)
        assert db.session.get(ApiKey, key.id).last_used_at == start
        with clock.travel(start + timedelta(seconds=30)):
            apikeys.authenticate(plaintext)
        assert db.session.get(ApiKey, key.id).last_used_at == start
        with clock.travel(start + timedelta(seconds=61)):
            apikeys.authenticate(plaintext)
        assert db.session.get(ApiKey, key.id).last_used_at == start + timedelta(seconds=61)


class TestRoll:
    def test_old_key_works_until_the_chosen_time_and_no_longer(self, make):
        tenant = make.tenant()
        old, old_plain = make.api_key(tenant, scopes=["tenant:read", "members:read"], name="backend")
        start = datetime.now(UTC).replace(microsecond=0)
        until = start + timedelta(hours=6)
        with clock.travel(start):
            new, new_plain = apikeys.roll_key(make.actor_for(tenant), tenant.id, old.id, until)
        assert new_plain != old_plain
        assert (new.name, new.scopes, new.rolled_from_id) == ("backend", ["members:read", "tenant:read"], old.id)
        with clock.travel(until - timedelta(seconds=1)):
            assert apikeys.authenticate(old_plain).id == old.id
            assert apikeys.authenticate(new_plain).id == new.id
        with clock.travel(until):
            with pytest.raises(Unauthorized, match="expired"):
                apikeys.authenticate(old_plain)
            assert apikeys.authenticate(new_plain).id == new.id
        [rolled] = key_events(tenant.id, "api_key.rolled")
        assert rolled.meta["new_key"] == new.id
        assert {t["id"] for t in rolled.targets} == {old.id, new.id}

    def test_roll_without_grace_ends_the_old_key_now(self, make):
        tenant = make.tenant()
        old, old_plain = make.api_key(tenant)
        _, new_plain = apikeys.roll_key(make.actor_for(tenant), tenant.id, old.id)
        with pytest.raises(Unauthorized):
            apikeys.authenticate(old_plain)
        assert apikeys.authenticate(new_plain)

    def test_grace_is_at_most_7_days(self, make):
        tenant = make.tenant()
        old, old_plain = make.api_key(tenant)
        owner = make.actor_for(tenant)
        start = datetime.now(UTC).replace(microsecond=0)
        with clock.travel(start):
            with pytest.raises(Invalid):
                apikeys.roll_key(owner, tenant.id, old.id, start + timedelta(days=7, seconds=1))
            with pytest.raises(Invalid):
                apikeys.roll_key(owner, tenant.id, old.id, start - timedelta(minutes=1))
            db.session.rollback()
            assert len(apikeys.list_keys(tenant.id)) == 1
            apikeys.roll_key(owner, tenant.id, old.id, start + timedelta(days=7))
        with clock.travel(start + timedelta(days=7, seconds=-1)):
            assert apikeys.authenticate(old_plain)

    def test_revoked_or_expired_keys_cannot_be_rolled(self, make):
        tenant = make.tenant()
        owner = make.actor_for(tenant)
        key, _ = make.api_key(tenant)
        apikeys.revoke_key(owner, tenant.id, key.id)
        with pytest.raises(Invalid, match="revoked"):
            apikeys.roll_key(owner, tenant.id, key.id)
