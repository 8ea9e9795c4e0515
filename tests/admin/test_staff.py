"""Staff accounts page: list, create, disable/enable, sign out everywhere."""

from __future__ import annotations

import re

from app.auth import service as auth_service
from app.auth.models import User
from app.extensions import db
from tests.admin.helpers import audit_events, follow, fresh, is_fragment, text
from tests.conftest import login

NEW = {"email": "New.Person@Example.com", "name": "New Person", "password": "a long enough secret",
       "password_confirm": "a long enough secret"}


def staff_rows(response) -> list[str]:
    return re.findall(r'<tr id="staff-(usr_[a-z0-9]+)">', text(response))


def test_lists_staff_only(staff_client, make):
    other = make.staff("zed@example.com")
    tenant_user = make.user("customer@example.com")
    response = staff_client.get("/admin/staff/")
    assert response.status_code == 200
    assert staff_rows(response) == [staff_client.user.id, other.id]
    assert tenant_user.email not in text(response)


def test_htmx_gets_the_table_fragment(staff_client):
    response = staff_client.htmx_get("/admin/staff/")
    assert is_fragment(response, "staff-table") and staff_client.user.email in text(response)


def test_create_staff_who_can_then_sign_in(staff_client, app, make):
    response = staff_client.form("/admin/staff/", NEW)
    assert "Staff account new.person@example.com created." in text(follow(staff_client, response))
    fresh()
    user = auth_service.find_user_by_email("new.person@example.com")
    assert user.is_staff and user.name == "New Person"
    [event] = audit_events("staff.created")
    assert event.actor_id == staff_client.user.id and event.targets[0]["id"] == user.id
    assert "a long enough secret" not in str(event.changes) + str(event.meta)
    login(app.test_client(), "new.person@example.com", NEW["password"], staff=True)


def test_bad_input_is_422_with_the_message_and_creates_nothing(staff_client, make):
    make.staff("taken@example.com")
    cases = [
        (NEW | {"password": "short", "password_confirm": "short"}, "Use at least 12 characters."),
        (NEW | {"password_confirm": "something else entirely"}, "The passwords do not match."),
        (NEW | {"email": "not-an-email"}, 'id="e-email"'),
        (NEW | {"email": "TAKEN@example.com"}, "This email is taken."),
    ]
    for data, message in cases:
        response = staff_client.form("/admin/staff/", data)
        assert response.status_code == 422, data
        assert message in text(response), data
        assert NEW["password"] not in text(response)  # passwords are never echoed back
    htmx = staff_client.form("/admin/staff/", cases[0][0], htmx=True)
    assert htmx.status_code == 422 and is_fragment(htmx, "staff-form")
    fresh()
    assert db.session.query(User).filter_by(is_staff=True).count() == 2
    assert audit_events("staff.created") == []


def test_disable_signs_them_out_and_enable_lets_them_back(staff_client, app, make):
    other = make.staff("other@example.com")
    their_browser = app.test_client()
    login(their_browser, other.email, make.PASSWORD, staff=True)
    assert their_browser.get("/admin/").status_code == 200
    page = text(staff_client.get("/admin/staff/"))
    assert f'action="/admin/staff/{other.id}/disable" class="inline" data-confirm=' in page

    follow(staff_client, staff_client.form(f"/admin/staff/{other.id}/disable"))
    fresh()
    db.session.refresh(other)
    assert other.disabled_at is not None
    assert their_browser.get("/admin/").status_code == 302
    assert audit_events("staff.disabled")[0].targets[0]["id"] == other.id
    refused = app.test_client().form("/admin/login", {"email": other.email, "password": make.PASSWORD})
    assert refused.status_code >= 400 and "Email or password is incorrect." in text(refused)

    follow(staff_client, staff_client.form(f"/admin/staff/{other.id}/enable"))
    fresh()
    db.session.refresh(other)
    assert other.disabled_at is None and audit_events("staff.enabled")
    login(app.test_client(), other.email, make.PASSWORD, staff=True)


def test_nobody_disables_themself(staff_client):
    me = staff_client.user.id
    assert f"/admin/staff/{me}/disable" not in text(staff_client.get("/admin/staff/"))
    page = text(follow(staff_client, staff_client.form(f"/admin/staff/{me}/disable")))
    assert "You cannot disable your own account." in page
    fresh()
    assert db.session.get(User, me).disabled_at is None


def test_tenant_users_are_not_staff_to_disable(staff_client, make):
    user = make.user()
    assert staff_client.form(f"/admin/staff/{user.id}/disable").status_code == 404


def test_sign_out_everywhere_for_someone_else(staff_client, app, make):
    other = make.staff("other@example.com")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, other.email, make.PASSWORD, staff=True)
    login(phone, other.email, make.PASSWORD, staff=True)
    page = text(follow(staff_client, staff_client.form(f"/admin/staff/{other.id}/sign-out-everywhere")))
    assert "Ended 2 sessions." in page
    assert laptop.get("/admin/").status_code == 302 and phone.get("/admin/").status_code == 302
    assert staff_client.get("/admin/").status_code == 200
    assert audit_events("auth.sessions_revoked")[0].meta == {"sessions": 2}


def test_sign_out_everywhere_for_oneself_ends_this_session(staff_client):
    response = staff_client.form(f"/admin/staff/{staff_client.user.id}/sign-out-everywhere")
    assert response.headers["Location"] == "/admin/login"
    assert staff_client.get("/admin/").status_code == 302
