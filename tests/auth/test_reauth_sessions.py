"""Re-authentication before sensitive actions, and ending sessions (oneself everywhere, or staff for a user)."""

from __future__ import annotations

from datetime import timedelta

import pyotp

from app import clock
from app.auth.models import ApiKey
from app.extensions import db
from app.tenancy import queries
from tests.admin.helpers import audit_events, follow, fresh, text
from tests.conftest import client_for, login

LATER = timedelta(minutes=11)  # past the 10-minute re-authentication window, within the 30-minute idle limit


def test_a_fresh_sign_in_counts_as_a_recent_confirmation(as_role):
    owner = as_role("owner")
    assert owner.get("/t/tenant-a/api-keys/new").status_code == 200
    response = owner.form("/t/tenant-a/api-keys", {"name": "ci", "scopes": ["usage:read"]})
    assert response.status_code == 201


def test_key_creation_asks_for_the_password_again_then_goes_back(as_role, tenant_world):
    owner = as_role("owner")
    with clock.travel(clock.now() + LATER):
        page = owner.get("/t/tenant-a/api-keys/new")
        assert page.status_code == 302
        assert page.headers["Location"] == "/account/confirm?next=/t/tenant-a/api-keys/new"
        post = owner.form("/t/tenant-a/api-keys", {"name": "ci", "scopes": ["usage:read"]},
                          headers={"Referer": "http://localhost/t/tenant-a/api-keys/new"})
        assert post.status_code == 302
        assert post.headers["Location"] == "/account/confirm?next=/t/tenant-a/api-keys/new"
        htmx = owner.form("/t/tenant-a/api-keys", {"name": "ci", "scopes": ["usage:read"]}, htmx=True,
                          headers={"HX-Current-URL": "http://localhost/t/tenant-a/api-keys/new"})
        assert htmx.status_code == 204
        assert htmx.headers["HX-Redirect"] == "/account/confirm?next=/t/tenant-a/api-keys/new"
        fresh()
        assert db.session.query(ApiKey).filter_by(name="ci").count() == 0

        confirm_page = owner.get("/account/confirm?next=/t/tenant-a/api-keys/new")
        assert "Confirm it's you" in text(confirm_page)
        wrong = owner.form("/account/confirm", {"password": "not my password", "next": "/t/tenant-a/api-keys/new"})
        assert wrong.status_code == 422 and "That password is not correct." in text(wrong)
        assert audit_events("auth.reauth_failed")[0].outcome == "denied"
        right = owner.form("/account/confirm", {"password": "correct horse battery",
                                                "next": "/t/tenant-a/api-keys/new"})
        assert right.status_code == 303 and right.headers["Location"] == "/t/tenant-a/api-keys/new"
        assert audit_events("auth.reauthenticated")[0].meta["method"] == "password"
        assert owner.form("/t/tenant-a/api-keys", {"name": "ci", "scopes": ["usage:read"]}).status_code == 201
    with clock.travel(clock.now() + 2 * LATER):  # and it lapses again
        assert owner.get("/t/tenant-a/api-keys/new").status_code == 302


def test_the_confirmation_refuses_foreign_next_urls(as_role):
    owner = as_role("owner")
    response = owner.form("/account/confirm", {"password": "correct horse battery", "next": "https://evil.example"})
    assert response.headers["Location"] == "/"


def test_a_code_confirms_too_when_two_factor_is_on(app, make, tenant_world):
    user = make.enrol(tenant_world["a"]["users"]["owner"])
    owner = client_for(app, make, user)
    with clock.travel(clock.now() + LATER):
        assert owner.get("/t/tenant-a/api-keys/new").status_code == 302
        code = pyotp.TOTP(make.TOTP_SECRET).at(clock.now())
        assert owner.form("/account/confirm", {"code": code, "next": "/t/tenant-a/api-keys/new"}).status_code == 303
        assert owner.get("/t/tenant-a/api-keys/new").status_code == 200
        assert audit_events("auth.reauthenticated")[0].meta["method"] == "totp"


def test_plan_change_secret_rotation_and_tenant_close_need_a_recent_confirmation(app, make, staff_client,
                                                                               tenant_world):
    owner = client_for(app, make, tenant_world["a"]["users"]["owner"])
    tenant = tenant_world["a"]["tenant"]
    with clock.travel(clock.now() + LATER):
        for response in (
            owner.form("/t/tenant-a/billing/change", {"plan": "enterprise", "interval": "month"}),
            owner.form("/t/tenant-a/webhooks/ep_0000000000000000000000000000/rotate"),
            staff_client.form(f"/admin/tenants/{tenant.id}/close"),
            staff_client.form(f"/admin/billing/tenants/{tenant.id}/change", {"plan": "free"}),
        ):
            assert response.status_code == 302 and response.headers["Location"].startswith("/account/confirm")
        fresh()
        db.session.refresh(tenant)
        assert tenant.status == "active"
        code = pyotp.TOTP(make.TOTP_SECRET).at(clock.now() + timedelta(seconds=30))  # login used this step
        assert staff_client.form("/account/confirm", {"code": code, "next": f"/admin/tenants/{tenant.id}"}
                                 ).status_code == 303
        follow(staff_client, staff_client.form(f"/admin/tenants/{tenant.id}/close"))
        fresh()
        db.session.refresh(tenant)
        assert tenant.status == "closed"


def test_staff_end_a_tenant_users_sessions_from_the_tenant_page(app, make, staff_client, tenant_world):
    tenant = tenant_world["a"]["tenant"]
    member = tenant_world["a"]["users"]["member"]
    laptop, phone = client_for(app, make, member), client_for(app, make, member)
    page = text(staff_client.get(f"/admin/tenants/{tenant.id}"))
    membership_id = next(m.id for m in queries.members(tenant.id) if m.user_id == member.id)
    url = f"/admin/tenants/{tenant.id}/members/{membership_id}/sign-out"
    assert url in page and "End sessions" in page
    done = follow(staff_client, staff_client.form(url))
    assert f"Ended 2 sessions of {member.email}." in text(done)
    assert laptop.get("/t/tenant-a/").status_code == 302 and phone.get("/t/tenant-a/").status_code == 302
    event = audit_events("auth.sessions_revoked")[0]
    assert event.actor_id == staff_client.user.id and event.targets[0]["id"] == member.id
    login(laptop, member.email, make.PASSWORD)  # they can sign in again
    assert laptop.get("/t/tenant-a/").status_code == 200
    # a membership of another tenant is not found through this tenant
    other = tenant_world["b"]["tenant"]
    foreign = next(m.id for m in queries.members(other.id))
    assert staff_client.form(f"/admin/tenants/{tenant.id}/members/{foreign}/sign-out").status_code == 404


def test_sign_out_everywhere_kills_the_other_session_too(app, make):
    user = make.enrol(make.user("pat@example.com"))
    make.member(make.tenant(slug="acme"), "owner", user)
    with clock.travel(clock.now()):
        laptop = app.test_client()
        login(laptop, user.email, make.PASSWORD)
        phone = app.test_client()
        login(phone, user.email, make.PASSWORD)  # the helper takes the next time step: no replay
    assert phone.get("/t/acme/").status_code == 200
    response = phone.form("/account/sign-out-everywhere")
    assert response.headers["Location"] == "/login"
    assert laptop.get("/t/acme/").status_code == 302 and phone.get("/t/acme/").status_code == 302
    assert audit_events("auth.sessions_revoked")[0].meta == {"sessions": 2}
