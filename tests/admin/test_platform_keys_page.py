"""Staff page /admin/api-keys: list, create (shown once), revoke; audited; staff only."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.auth import platform_keys
from app.auth.platform_models import PlatformApiKey
from app.extensions import db
from tests.admin.helpers import audit_events, follow, fresh, is_fragment, text

KEY_RE = re.compile(r"tnt_plat_[0-9A-Za-z]{32}")


def test_empty_page_and_nav(staff_client):
    response = staff_client.get("/admin/api-keys/")
    assert response.status_code == 200
    body = text(response)
    assert "No platform keys" in body and 'href="/admin/api-keys/"' in body
    for scope in platform_keys.PLATFORM_SCOPES:
        assert f'value="{scope}"' in body


def test_create_shows_the_key_once_and_stores_only_its_hash(staff_client):
    response = staff_client.form("/admin/api-keys/", {"name": "provisioning bot",
                                                      "scopes": ["admin:read", "admin:tenants:write"]})
    assert response.status_code == 201
    plaintext = KEY_RE.search(text(response)).group(0)
    assert platform_keys.is_well_formed(plaintext)
    fresh()
    key = db.session.scalar(select(PlatformApiKey))
    assert key.key_hash == platform_keys.hash_key(plaintext) and key.scopes == ["admin:read", "admin:tenants:write"]
    assert key.created_by == staff_client.user.email
    listing = text(staff_client.get("/admin/api-keys/"))
    assert plaintext not in listing and key.masked in listing and "provisioning bot" in listing
    [event] = audit_events("platform_key.created")
    assert event.actor_id == staff_client.user.id and plaintext not in str(event.changes)


def test_create_over_htmx_swaps_in_the_secret(staff_client):
    response = staff_client.form("/admin/api-keys/", {"name": "bot", "scopes": ["admin:read"]}, htmx=True)
    assert response.status_code == 201 and is_fragment(response, "platform-key-secret")
    assert KEY_RE.search(text(response))


def test_bad_input_re_renders_the_form(staff_client):
    response = staff_client.form("/admin/api-keys/", {"name": ""}, htmx=True)
    assert response.status_code == 422 and is_fragment(response, "platform-key-form")
    body = text(response)
    assert "Give the key a name" in body and "Choose at least one scope" in body
    response = staff_client.form("/admin/api-keys/", {"name": "x", "scopes": ["tenant:read"]})
    assert response.status_code == 422 and "Unknown scope" in text(response) and 'value="x"' in text(response)
    fresh()
    assert db.session.scalar(select(PlatformApiKey)) is None


def test_revoke(staff_client, client):
    response = staff_client.form("/admin/api-keys/", {"name": "bot", "scopes": ["admin:read"]})
    plaintext = KEY_RE.search(text(response)).group(0)
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/api/v1/admin/tenants", headers=headers).status_code == 200
    fresh()
    key = db.session.scalar(select(PlatformApiKey))
    page = follow(staff_client, staff_client.form(f"/admin/api-keys/{key.id}/revoke"))
    assert "was revoked" in text(page) and "revoked" in text(page)
    assert client.get("/api/v1/admin/tenants", headers=headers).status_code == 401
    [event] = audit_events("platform_key.revoked")
    assert event.actor_id == staff_client.user.id and event.severity == "warning"


def test_unknown_key_is_404(staff_client):
    assert staff_client.form("/admin/api-keys/pkey_00000000000000000000000000/revoke").status_code == 404


def test_tenant_users_never_see_the_page(as_role):
    assert as_role("owner").get("/admin/api-keys/").status_code == 404


def test_creating_a_key_needs_a_recent_sign_in(staff_client, monkeypatch):
    from app.auth import twofactor

    monkeypatch.setattr(twofactor, "is_recent", lambda session: False)
    response = staff_client.form("/admin/api-keys/", {"name": "bot", "scopes": ["admin:read"]},
                                 headers={"Referer": "http://localhost/admin/api-keys/"})
    assert response.status_code == 302 and "/account/confirm" in response.headers["Location"]
    fresh()
    assert db.session.scalar(select(PlatformApiKey)) is None
