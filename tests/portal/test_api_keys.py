"""API key pages: list, create (shown once), revoke, roll with a grace period."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app import clock
from app.auth import apikeys
from app.auth.models import ApiKey
from app.extensions import db
from tests.portal.conftest import assert_denied

KEY_RE = re.compile(r"tnt_(?:live|test)_[0-9A-Za-z]{%d}" % (apikeys.RANDOM_CHARS + apikeys.CHECKSUM_CHARS))


def _create(client, name="deploy bot", scopes=("tenant:read",), expires_at="", htmx=False):
    return client.form("/t/tenant-a/api-keys", {"name": name, "scopes": list(scopes), "expires_at": expires_at},
                       htmx=htmx)


def _plaintext(response) -> str:
    keys = set(KEY_RE.findall(response.get_data(as_text=True)))
    assert len(keys) == 1, f"expected one plaintext key on the page, found {len(keys)}"
    return keys.pop()


def _api(client, token: str, path: str = "/api/v1/tenant"):
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def _key_named(fresh, name: str) -> ApiKey:
    rows = fresh(ApiKey, name=name)
    assert len(rows) == 1
    return rows[0]


def test_the_list_shows_keys_masked_for_every_reader(as_role, tenant_world):
    key, token = tenant_world["a"]["key"], tenant_world["a"]["token"]
    for role in ("owner", "admin", "member", "viewer"):
        html = as_role(role).get("/t/tenant-a/api-keys").get_data(as_text=True)
        assert key.masked in html and "test key" in html and token not in html
        assert "active" in html and "tests" in html  # status badge, created by
    assert tenant_world["b"]["key"].masked not in html
    viewer = as_role("viewer").get("/t/tenant-a/api-keys").get_data(as_text=True)
    assert "New API key" not in viewer and "Revoke" not in viewer and "Roll" not in viewer
    owner = as_role("owner").get("/t/tenant-a/api-keys").get_data(as_text=True)
    assert "New API key" in owner and 'data-confirm="Revoke' in owner


def test_empty_state_says_what_to_do(app, make):
    from tests.conftest import client_for

    tenant = make.tenant(slug="keyless")
    user = make.user()
    make.member(tenant, "member", user)
    html = client_for(app, make, user).get("/t/keyless/api-keys").get_data(as_text=True)
    assert "No API keys yet" in html and "Create your first key" in html


def test_readers_cannot_create_revoke_or_roll(as_role, tenant_world, audit_events, fresh):
    viewer = as_role("viewer")
    key_id = tenant_world["a"]["key"].id
    assert viewer.get("/t/tenant-a/api-keys/new").status_code == 403
    response = _create(viewer)
    assert response.status_code == 403 and "keys:write" in response.get_data(as_text=True)
    assert viewer.form(f"/t/tenant-a/api-keys/{key_id}/revoke").status_code == 403
    assert viewer.form(f"/t/tenant-a/api-keys/{key_id}/roll", {"grace": "now"}).status_code == 403
    tenant = tenant_world["a"]["tenant"]
    assert_denied(audit_events, tenant, "keys:write", "/t/tenant-a/api-keys")
    assert_denied(audit_events, tenant, "keys:write", f"/t/tenant-a/api-keys/{key_id}/revoke")
    assert fresh(ApiKey, name="deploy bot") == []
    assert fresh(ApiKey, id=key_id)[0].revoked_at is None


def test_non_members_get_404(as_role):
    assert as_role("owner", "b").get("/t/tenant-a/api-keys").status_code == 404
    assert _create(as_role("owner", "b")).status_code == 404


def test_scopes_offered_are_those_of_your_role(as_role):
    member = as_role("member").get("/t/tenant-a/api-keys/new").get_data(as_text=True)
    assert 'value="keys:write"' in member and 'value="events:write"' in member
    assert 'value="audit:read"' not in member and 'value="billing:read"' not in member
    assert "Publish events" in member  # what each scope allows
    owner = as_role("owner").get("/t/tenant-a/api-keys/new").get_data(as_text=True)
    assert 'value="billing:write"' in owner and 'value="audit:read"' in owner


def test_create_shows_the_key_once_and_stores_only_its_hash(as_role, client, fresh):
    member = as_role("member")
    response = _create(member, scopes=("tenant:read", "usage:read"))
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    assert "You won't see it again" in html and 'data-copy="#new-key"' in html
    assert response.headers["Cache-Control"] == "no-store"
    plaintext = _plaintext(response)

    key = _key_named(fresh, "deploy bot")
    assert key.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert key.scopes == ["tenant:read", "usage:read"] and key.created_by == "member@a.example.com"
    for table in db.metadata.sorted_tables:  # nowhere in the database: not the key row, audit or outbox
        assert plaintext not in repr(db.session.execute(select(table)).all()), table.name

    for page in ("/t/tenant-a/api-keys", "/t/tenant-a/api-keys/new"):
        assert plaintext not in member.get(page).get_data(as_text=True)
    assert key.masked in member.get("/t/tenant-a/api-keys").get_data(as_text=True)

    answer = _api(client, plaintext)
    assert answer.status_code == 200 and answer.get_json()["slug"] == "tenant-a"
    assert _api(client, plaintext, "/api/v1/members").status_code == 403  # scoped to what it was given


def test_create_over_htmx_swaps_in_the_secret(as_role):
    response = _create(as_role("admin"), htmx=True)
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    assert "<html" not in html and 'id="keys-secret"' in html
    _plaintext(response)


def test_bad_input_is_refused_with_field_messages(as_role, fresh):
    owner = as_role("owner")
    no_name = _create(owner, name="  ")
    assert no_name.status_code == 422 and "Give the key a name" in no_name.get_data(as_text=True)
    no_scopes = _create(owner, scopes=())
    assert no_scopes.status_code == 422 and "Choose at least one scope" in no_scopes.get_data(as_text=True)
    past = _create(owner, expires_at="2001-01-01T00:00")
    assert past.status_code == 422 and "must be in the future" in past.get_data(as_text=True)
    garbage = _create(owner, expires_at="next tuesday")
    html = garbage.get_data(as_text=True)
    assert garbage.status_code == 422 and "Enter a date" in html
    assert 'value="deploy bot"' in html and 'value="tenant:read" checked' in html  # what was typed stays
    partial = _create(owner, name="", htmx=True)
    assert partial.status_code == 422 and "<html" not in partial.get_data(as_text=True)
    assert fresh(ApiKey, name="deploy bot") == [] and len(fresh(ApiKey)) == 2


def test_a_member_cannot_grant_scopes_it_does_not_have(as_role, fresh):
    response = _create(as_role("member"), scopes=("tenant:read", "audit:read"))
    assert response.status_code == 403
    assert "You cannot grant scopes you do not have: audit:read" in response.get_data(as_text=True)
    assert fresh(ApiKey, name="deploy bot") == []


def test_expiry_is_read_as_utc(as_role, fresh):
    assert _create(as_role("owner"), name="dated", expires_at="2099-01-31").status_code == 201
    assert _create(as_role("owner"), name="timed", expires_at="2099-01-31T12:30").status_code == 201
    assert _key_named(fresh, "dated").expires_at == datetime(2099, 1, 31, tzinfo=UTC)
    assert _key_named(fresh, "timed").expires_at == datetime(2099, 1, 31, 12, 30, tzinfo=UTC)


def test_revoked_keys_stop_working(as_role, client, fresh):
    owner = as_role("owner")
    plaintext = _plaintext(_create(owner))
    assert _api(client, plaintext).status_code == 200
    key = _key_named(fresh, "deploy bot")
    response = owner.form(f"/t/tenant-a/api-keys/{key.id}/revoke")
    assert response.status_code == 303 and response.headers["Location"] == "/t/tenant-a/api-keys"
    assert _api(client, plaintext).status_code == 401
    html = owner.get("/t/tenant-a/api-keys").get_data(as_text=True)
    assert "was revoked" in html and "badge-revoked" in html


def test_roll_keeps_the_old_key_for_the_grace_period(as_role, client, tenant_world):
    owner = as_role("owner")
    old = tenant_world["a"]["key"]
    old_token = tenant_world["a"]["token"]
    form = owner.get(f"/t/tenant-a/api-keys/{old.id}/roll").get_data(as_text=True)
    assert "1 hour" in form and "24 hours" in form and "7 days" in form and "Stop it now" in form
    started = clock.now()
    response = owner.form(f"/t/tenant-a/api-keys/{old.id}/roll", {"grace": "1h"})
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    assert "You won't see it again" in html and "keeps working until" in html
    new_token = _plaintext(response)
    assert new_token != old_token

    assert _api(client, old_token).status_code == 200 and _api(client, new_token).status_code == 200
    with clock.travel(started + timedelta(minutes=50)):
        assert _api(client, old_token).status_code == 200
    with clock.travel(started + timedelta(minutes=61)):
        assert _api(client, old_token).status_code == 401
        assert _api(client, new_token).status_code == 200


def test_roll_now_stops_the_old_key_at_once(as_role, client, tenant_world):
    old, old_token = tenant_world["a"]["key"], tenant_world["a"]["token"]
    response = as_role("owner").form(f"/t/tenant-a/api-keys/{old.id}/roll", {"grace": "now"})
    assert response.status_code == 201 and "stopped working now" in response.get_data(as_text=True)
    new_token = _plaintext(response)
    assert _api(client, old_token).status_code == 401
    assert _api(client, new_token).status_code == 200


def test_a_member_cannot_roll_a_key_with_more_scopes_than_it_has(as_role, client, tenant_world, fresh):
    old, old_token = tenant_world["a"]["key"], tenant_world["a"]["token"]  # the owner's key: every scope
    member = as_role("member")
    listing = member.get("/t/tenant-a/api-keys").get_data(as_text=True)
    assert f"/t/tenant-a/api-keys/{old.id}/roll" not in listing and "more scopes than you have" in listing
    response = member.form(f"/t/tenant-a/api-keys/{old.id}/roll", {"grace": "now"})
    assert response.status_code == 403 and "You cannot grant scopes" in response.get_data(as_text=True)
    assert len(fresh(ApiKey, tenant_id=old.tenant_id)) == 1
    assert _api(client, old_token).status_code == 200


def test_roll_needs_a_valid_choice(as_role, client, tenant_world, fresh):
    old, old_token = tenant_world["a"]["key"], tenant_world["a"]["token"]
    response = as_role("owner").form(f"/t/tenant-a/api-keys/{old.id}/roll", {"grace": "forever"})
    assert response.status_code == 422 and "Choose how long" in response.get_data(as_text=True)
    assert len(fresh(ApiKey, tenant_id=old.tenant_id)) == 1
    assert _api(client, old_token).status_code == 200


def test_another_tenants_key_is_not_found(as_role, client, tenant_world):
    other, other_token = tenant_world["b"]["key"], tenant_world["b"]["token"]
    owner = as_role("owner")
    assert owner.form(f"/t/tenant-a/api-keys/{other.id}/revoke").status_code == 404
    assert owner.get(f"/t/tenant-a/api-keys/{other.id}/roll").status_code == 404
    assert owner.form(f"/t/tenant-a/api-keys/{other.id}/roll", {"grace": "now"}).status_code == 404
    assert owner.form("/t/tenant-a/api-keys/key_not-a-real-id/revoke").status_code == 404
    assert _api(client, other_token).status_code == 200
