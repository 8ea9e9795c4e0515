"""Page requests are limited per signed-in user, or per client IP when signed out (Flask-Limiter);
health checks are never limited."""

from __future__ import annotations

from tests.conftest import login


def test_each_signed_in_user_has_their_own_page_limit(app, ctx, make, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_PAGES_PER_USER", "5 per minute")
    monkeypatch.setitem(app.config, "RATELIMIT_PAGES_PER_IP", "1000 per minute")
    first, second = make.staff(), make.staff()
    alice, bob = app.test_client(), app.test_client()
    login(alice, first.email, make.PASSWORD, staff=True)  # the sign-in itself counts against the IP
    login(bob, second.email, make.PASSWORD, staff=True)
    statuses = [alice.get("/admin/").status_code for _ in range(6)]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429
    refused = alice.get("/admin/")
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert bob.get("/admin/").status_code == 200  # same IP, another person: their own limit


def test_signed_out_requests_are_limited_per_ip_and_health_checks_never(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_PAGES_PER_IP", "3 per minute")
    assert [client.get("/login").status_code for _ in range(4)] == [200, 200, 200, 429]
    other_ip = app.test_client()
    assert other_ip.get("/login", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200
    assert {client.get("/livez").status_code for _ in range(10)} == {200}
