"""Sign-in throttling, CSRF, session revocation and timeouts, through the real pages."""

from __future__ import annotations

from datetime import timedelta

from app import clock
from app.audit.models import AuditEvent
from app.extensions import db
from tests.conftest import login


def _fail(client, email, staff=False):
    return client.form("/admin/login" if staff else "/login", {"email": email, "password": "wrong password!!"})


def test_eleventh_failed_login_for_an_account_gets_429_even_with_the_right_password(app, make, client):
    user = make.user("victim@example.com")
    for _ in range(10):
        assert _fail(client, "victim@example.com").status_code == 422
    right = client.form("/login", {"email": "Victim@Example.com", "password": make.PASSWORD})
    assert right.status_code == 429
    assert "Too many failed sign-ins" in right.get_data(as_text=True)
    with app.app_context():
        actions = [e.action for e in db.session.query(AuditEvent).all()]
    assert actions.count("auth.login_failed") == 10
    assert "auth.login_throttled" in actions
    assert user.email == "victim@example.com"


def test_throttle_window_is_fifteen_minutes_per_account(app, make):
    make.user("slow@example.com")
    first = app.test_client()
    for _ in range(10):
        _fail(first, "slow@example.com")
    assert _fail(first, "slow@example.com").status_code == 429


def test_failed_logins_from_one_ip_are_throttled_across_accounts(app, make, client):
    for n in range(10):
        assert _fail(client, f"nobody{n}@example.com").status_code == 422
    assert _fail(client, "someone-else@example.com").status_code == 429


def test_successful_logins_do_not_count_towards_the_throttle(app, make):
    user = make.user()
    for _ in range(12):
        c = app.test_client()
        login(c, user.email, make.PASSWORD)


def test_login_message_does_not_reveal_whether_the_account_exists(make, client):
    make.user("exists@example.com")
    existing = _fail(client, "exists@example.com").get_data(as_text=True)
    missing = _fail(client, "missing@example.com").get_data(as_text=True)
    assert "Email or password is incorrect." in existing
    assert "Email or password is incorrect." in missing


def test_tenant_user_cannot_sign_in_as_staff(make, client):
    user = make.user()
    response = client.form("/admin/login", {"email": user.email, "password": make.PASSWORD})
    assert response.status_code == 422
    assert "Email or password is incorrect." in response.get_data(as_text=True)


def test_post_without_csrf_token_is_refused(make, client):
    user = make.user()
    response = client.post("/login", data={"email": user.email, "password": make.PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_htmx_post_with_csrf_header_is_accepted(make, client):
    user = make.user()
    token = client.csrf_token()
    response = client.post("/login", data={"email": user.email, "password": make.PASSWORD},
                           headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/"  # a full reload: the CSRF token in <body> changes


def test_logout_ends_the_session_even_if_the_cookie_is_replayed(app, make):
    user = make.user()
    make.member(make.tenant(slug="acme"), "owner", user)
    c = app.test_client()
    login(c, user.email, make.PASSWORD)
    assert c.get("/t/acme/").status_code == 200
    stolen = c.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    c.form("/logout")
    thief = app.test_client()
    thief.set_cookie(app.config["SESSION_COOKIE_NAME"], stolen)
    response = thief.get("/t/acme/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_sign_out_everywhere_ends_other_browsers(app, make):
    user = make.user()
    make.member(make.tenant(slug="acme"), "owner", user)
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, user.email, make.PASSWORD)
    login(phone, user.email, make.PASSWORD)
    assert phone.get("/t/acme/").status_code == 200
    laptop.form("/account/sign-out-everywhere")
    assert phone.get("/t/acme/").status_code == 302
    assert laptop.get("/t/acme/").status_code == 302


def test_session_ends_after_30_idle_minutes_and_after_12_hours(app, make):
    user = make.user()
    make.member(make.tenant(slug="acme"), "owner", user)
    start = clock.now()
    with clock.travel(start):
        c = app.test_client()
        login(c, user.email, make.PASSWORD)
    with clock.travel(start + timedelta(minutes=29)):
        assert c.get("/t/acme/").status_code == 200
    with clock.travel(start + timedelta(minutes=29 + 31)):
        assert c.get("/t/acme/").status_code == 302  # idle for 31 minutes
    with clock.travel(start):
        c2 = app.test_client()
        login(c2, user.email, make.PASSWORD)
    moment = start
    for _ in range(12 * 3):  # active every 20 minutes, yet cut off at 12 hours
        moment += timedelta(minutes=20)
        with clock.travel(moment):
            status = c2.get("/t/acme/").status_code
        if moment - start <= timedelta(hours=12):
            assert status == 200
    with clock.travel(start + timedelta(hours=12, minutes=1)):
        assert c2.get("/t/acme/").status_code == 302


def test_session_id_changes_at_login(app, make):
    user = make.user()
    c = app.test_client()
    login(c, user.email, make.PASSWORD)
    first = c.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    c.form("/logout")
    login(c, user.email, make.PASSWORD)
    assert c.get_cookie(app.config["SESSION_COOKIE_NAME"]).value != first


def test_session_cookie_flags(app, make, monkeypatch):
    monkeypatch.delenv("COOKIE_SECURE", raising=False)
    from app import create_app
    from app.config import Config

    production = create_app(Config())
    assert production.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert production.config["SESSION_COOKIE_SECURE"] is True
    assert production.config["SESSION_COOKIE_HTTPONLY"] is True
    assert production.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    user = make.user()
    c = app.test_client()
    response = login(c, user.email, make.PASSWORD)
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_open_redirect_is_refused_after_login(make, client):
    user = make.user()
    response = client.form("/login", {"email": user.email, "password": make.PASSWORD, "next": "https://evil.example"})
    assert response.headers["Location"] == "/"


def test_pages_carry_security_headers(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'self'" in csp and "object-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "HX-Request" in response.headers["Vary"]
