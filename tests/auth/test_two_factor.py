"""Two-factor sign-in: enrolment, the code step, replay, recovery codes, turning it off, staff enforcement."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from app import clock
from app.auth.models import RecoveryCode, User
from app.extensions import db
from app.webhooks import secrets
from tests.admin.helpers import audit_events, follow, fresh, text
from tests.conftest import login, totp_code

SECRET_RE = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
CODES_RE = re.compile(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>")


def _code(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30 * steps_ahead))


def _enrol(client) -> tuple[str, list[str]]:
    """Enrol the signed-in client's user through the pages: (secret, recovery codes)."""
    page = client.get("/account/two-factor/setup")
    assert page.status_code == 200
    secret = SECRET_RE.search(text(page)).group(1)
    done = client.form("/account/two-factor/setup", {"code": _code(secret)})
    assert done.status_code == 201, text(done)[:500]
    return secret, CODES_RE.findall(text(done))


def _password_step(client, email, password, staff=False):
    response = client.form("/admin/login" if staff else "/login", {"email": email, "password": password})
    assert response.status_code == 303 and response.headers["Location"] == "/login/two-factor"
    return response


def _user(email: str) -> User:
    fresh()
    return db.session.scalar(select(User).where(User.email == email))


def test_tenant_user_enrols_and_gets_ten_single_use_recovery_codes(app, make, client, caplog):
    caplog.set_level(logging.DEBUG)
    user = make.user("pat@example.com")
    login(client, user.email, make.PASSWORD)
    assert "Set up two-factor sign-in" in text(client.get("/account/two-factor"))
    page = text(client.get("/account/two-factor/setup"))
    secret = SECRET_RE.search(page).group(1)
    assert "<svg" in page and f"otpauth://totp/Tenantry:pat%40example.com?secret={secret}" in page
    assert SECRET_RE.search(text(client.get("/account/two-factor/setup"))).group(1) == secret  # stable on reload

    wrong = client.form("/account/two-factor/setup", {"code": "000000" if _code(secret) != "000000" else "111111"})
    assert wrong.status_code == 422 and "That code is not right" in text(wrong)
    assert _user(user.email).totp_enabled_at is None
    assert audit_events("auth.2fa_enrol_failed")

    done = client.form("/account/two-factor/setup", {"code": _code(secret)})
    assert done.status_code == 201
    codes = CODES_RE.findall(text(done))
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = _user(user.email)
    assert stored.totp_enabled_at is not None
    assert stored.totp_secret != secret and secrets.decrypt(stored.totp_secret) == secret  # encrypted at rest
    hashes = list(db.session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)))
    assert len(hashes) == 10 and not {c.replace("-", "") for c in codes} & set(hashes)
    enabled = audit_events("auth.2fa_enabled")[0]
    assert enabled.changes == {"two_factor": [False, True]}
    assert "on" in text(client.get("/account/two-factor")) and "10 unused recovery codes" in text(
        client.get("/account/two-factor"))
    # the secret and the codes appear in no audit event and no log line
    everything = repr([(e.changes, e.meta, e.targets) for e in audit_events("auth.2fa_enabled")])
    assert secret not in everything and secret not in caplog.text
    assert not any(code in caplog.text for code in codes)


def test_sign_in_takes_two_steps_and_the_password_alone_opens_nothing(app, make, client):
    user = make.enrol(make.user("pat@example.com"))
    _password_step(client, user.email, make.PASSWORD)
    assert client.get("/account").status_code == 302  # no session yet
    page = client.get("/login/two-factor")
    assert page.status_code == 200 and "authenticator app" in text(page)
    with app.app_context():
        code = totp_code(user.email)
    done = client.form("/login/two-factor", {"code": code[:3] + " " + code[3:]})  # as apps display it
    assert done.status_code == 303 and done.headers["Location"] == "/"
    assert client.get("/account").status_code == 200
    login_event = audit_events("auth.login")[-1]
    assert login_event.meta["second_factor"] == "totp" and login_event.actor_id == user.id


def test_wrong_codes_are_audited_and_the_fifth_ends_the_attempt(app, make, client):
    user = make.enrol(make.user("pat@example.com"))
    _password_step(client, user.email, make.PASSWORD)
    with app.app_context():
        right = totp_code(user.email)
    wrong = "123456" if right != "123456" else "654321"
    for _ in range(4):
        response = client.form("/login/two-factor", {"code": wrong})
        assert response.status_code == 422 and "That code is not right" in text(response)
    last = client.form("/login/two-factor", {"code": wrong})
    assert last.status_code == 303 and last.headers["Location"] == "/login"
    assert client.form("/login/two-factor", {"code": right}).headers["Location"] == "/login"  # start again
    failures = audit_events("auth.2fa_failed")
    assert len(failures) == 5 and failures[0].outcome == "denied" and failures[0].meta["reason"] == "wrong_code"
    assert failures[0].actor_id == user.id


def test_the_code_step_expires_after_five_minutes(app, make, client):
    user = make.enrol(make.user("pat@example.com"))
    start = clock.now()
    with clock.travel(start):
        _password_step(client, user.email, make.PASSWORD)
    with clock.travel(start + timedelta(minutes=5, seconds=1)), app.app_context():
        response = client.form("/login/two-factor", {"code": totp_code(user.email)})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert client.get("/account").status_code == 302


def test_a_code_used_once_is_refused_the_second_time(app, make):
    user = make.enrol(make.user("pat@example.com"))
    first, second = app.test_client(), app.test_client()
    with clock.travel(clock.now()):  # both within one time step
        with app.app_context():
            code = totp_code(user.email)
        _password_step(first, user.email, make.PASSWORD)
        assert first.form("/login/two-factor", {"code": code}).status_code == 303
        _password_step(second, user.email, make.PASSWORD)
        replayed = second.form("/login/two-factor", {"code": code})
    assert replayed.status_code == 422 and "used already" in text(replayed)
    assert second.get("/account").status_code == 302
    assert audit_events("auth.2fa_failed")[0].meta["reason"] == "replayed_code"


def test_an_older_code_is_refused_after_a_newer_one(app, make, client):
    user = make.enrol(make.user("pat@example.com"))
    with clock.travel(clock.now()):
        login(client, user.email, make.PASSWORD)  # uses the current step
        other = app.test_client()
        _password_step(other, user.email, make.PASSWORD)
        previous = pyotp.TOTP(make.TOTP_SECRET).at(clock.now() - timedelta(seconds=30))
        assert other.form("/login/two-factor", {"code": previous}).status_code == 422


def test_a_recovery_code_signs_in_once(app, make, client):
    user = make.user("pat@example.com")
    login(client, user.email, make.PASSWORD)
    _secret, codes = _enrol(client)
    client.form("/logout")

    _password_step(client, user.email, make.PASSWORD)
    done = client.form("/login/two-factor", {"code": codes[0].upper()})  # case and dashes do not matter
    assert done.status_code == 303
    assert "9 left" in text(client.get(done.headers["Location"], follow_redirects=True))
    used = audit_events("auth.recovery_code_used")
    assert len(used) == 1 and used[0].meta == {"purpose": "login", "recovery_codes_left": 9}
    assert audit_events("auth.login")[-1].meta["second_factor"] == "recovery_code"
    client.form("/logout")

    again = app.test_client()
    _password_step(again, user.email, make.PASSWORD)
    refused = again.form("/login/two-factor", {"code": codes[0]})
    assert refused.status_code == 422
    assert audit_events("auth.2fa_failed")[-1].meta["reason"] == "wrong_recovery_code"


def test_new_recovery_codes_replace_the_old_ones_after_a_fresh_confirmation(app, make, client):
    user = make.user("pat@example.com")
    login(client, user.email, make.PASSWORD)
    _secret, old_codes = _enrol(client)
    with clock.travel(clock.now() + timedelta(minutes=11)):
        stale = client.form("/account/two-factor/recovery-codes")
        assert stale.status_code == 302 and stale.headers["Location"].startswith("/account/confirm")
        assert client.form("/account/confirm", {"password": make.PASSWORD, "next": "/account/two-factor"}
                           ).status_code == 303
        response = client.form("/account/two-factor/recovery-codes")
    assert response.status_code == 201
    new_codes = CODES_RE.findall(text(response))
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert audit_events("auth.recovery_codes_regenerated")
    client.form("/logout")
    other = app.test_client()
    _password_step(other, user.email, make.PASSWORD)
    assert other.form("/login/two-factor", {"code": old_codes[1]}).status_code == 422
    assert other.form("/login/two-factor", {"code": new_codes[1]}).status_code == 303


def test_turning_two_factor_off_needs_a_current_code(app, make, client):
    user = make.user("pat@example.com")
    login(client, user.email, make.PASSWORD)
    secret, _codes = _enrol(client)
    refused = client.form("/account/two-factor/disable", {"code": "not-a-code"})
    assert refused.status_code == 422 and _user(user.email).totp_enabled_at is not None
    with clock.travel(clock.now() + timedelta(seconds=31)):  # the enrolment's own code is spent
        done = client.form("/account/two-factor/disable", {"code": _code(secret)})
    assert done.status_code == 303
    stored = _user(user.email)
    assert stored.totp_enabled_at is None and stored.totp_secret is None
    assert db.session.scalar(select(RecoveryCode).where(RecoveryCode.user_id == user.id)) is None
    assert audit_events("auth.2fa_disabled")[0].severity == "warning"
    client.form("/logout")
    login(client, user.email, make.PASSWORD)  # one step again
    assert client.get("/account").status_code == 200


def test_staff_cannot_turn_two_factor_off(staff_client, app):
    with app.app_context():
        code = totp_code(staff_client.user.email)
    response = staff_client.form("/account/two-factor/disable", {"code": code})
    assert response.status_code == 403 and "keep two-factor sign-in on" in text(response)


def test_staff_must_enrol_before_any_admin_page(app, make, client):
    staff = make.staff("new-ops@example.com", enrolled=False)
    response = client.form("/admin/login", {"email": staff.email, "password": make.PASSWORD})
    assert response.headers["Location"].startswith("/account/two-factor/setup?next=")
    for url in ("/admin/", "/admin/tenants/", "/admin/staff/"):
        blocked = client.get(url)
        assert blocked.status_code == 302 and blocked.headers["Location"].startswith("/account/two-factor/setup")
    htmx = client.get("/admin/tenants/", headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"].startswith("/account/two-factor/setup")
    other_browser = app.test_client()
    client_page = text(client.get("/account/two-factor/setup?next=/admin/tenants/"))
    assert "Staff accounts need a second factor" in client_page
    login(other_browser, staff.email, make.PASSWORD)  # a second session, also password-only

    secret = SECRET_RE.search(client_page).group(1)
    done = client.form("/account/two-factor/setup", {"code": _code(secret), "next": "/admin/tenants/"})
    assert done.status_code == 201 and 'href="/admin/tenants/"' in text(done)
    assert client.get("/admin/").status_code == 200
    # the other session never proved a second factor: it must give a code first
    blocked = other_browser.get("/admin/")
    assert blocked.status_code == 302 and blocked.headers["Location"].startswith("/account/confirm?factor=code")
    with clock.travel(clock.now() + timedelta(seconds=30)):
        assert other_browser.form("/account/confirm", {"factor": "code", "code": _code(secret), "next": "/admin/"}
                                  ).status_code == 303
    assert other_browser.get("/admin/").status_code == 200


def test_staff_two_factor_can_be_switched_off_by_config(app, make, client, monkeypatch):
    monkeypatch.setitem(app.config, "STAFF_REQUIRE_2FA", False)
    staff = make.staff("relaxed@example.com", enrolled=False)
    login(client, staff.email, make.PASSWORD, staff=True)
    assert client.get("/admin/").status_code == 200


def test_enrolled_staff_sign_in_with_a_code(app, make, client):
    staff = make.staff("ops@example.com")
    _password_step(client, staff.email, make.PASSWORD, staff=True)
    assert client.get("/admin/").status_code == 302
    with app.app_context():
        code = totp_code(staff.email)
    done = client.form("/login/two-factor", {"code": code})
    assert done.headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("attempts", [10])
def test_wrong_codes_are_throttled_per_person_across_attempts(app, make, attempts):
    user = make.enrol(make.user("pat@example.com"))
    for _ in range(attempts // 5):
        c = app.test_client()
        _password_step(c, user.email, make.PASSWORD)
        for _ in range(5):
            c.form("/login/two-factor", {"code": "999999"})
    c = app.test_client()
    _password_step(c, user.email, make.PASSWORD)
    with app.app_context():
        code = totp_code(user.email)
    assert c.form("/login/two-factor", {"code": code}).status_code == 429


def test_the_account_page_links_to_two_factor(make, client):
    user = make.user()
    login(client, user.email, make.PASSWORD)
    page = text(client.get("/account"))
    assert "/account/two-factor" in page
    assert follow(client, client.form("/account/sign-out-everywhere")).status_code == 200
