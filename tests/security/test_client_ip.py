"""The client IP that limits and the audit trail see: X-Forwarded-For counts only behind trusted proxies."""

from __future__ import annotations

from app import create_app
from app.config import TestConfig as Settings
from app.extensions import db


def _ip_seen(app, database, headers) -> str:
    from app.audit.models import AuditEvent

    client = app.test_client()
    client.post("/login", data={"email": "x@example.com", "password": "wrong password"},
                headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    with app.app_context():
        return db.session.query(AuditEvent).order_by(AuditEvent.id.desc()).first().ip


def test_forwarded_for_is_ignored_without_trusted_proxies(app, database):
    app.config["WTF_CSRF_ENABLED"] = False
    try:
        assert _ip_seen(app, database, {"X-Forwarded-For": "203.0.113.9"}) == "10.0.0.1"
    finally:
        app.config["WTF_CSRF_ENABLED"] = True


def test_forwarded_for_is_used_behind_one_trusted_proxy(app, database, redis_url):
    settings = Settings(database_url=database["url"], redis_url=redis_url)
    settings.SQLALCHEMY_DATABASE_URI = database["url"]
    settings.TRUSTED_PROXIES = 1
    settings.WTF_CSRF_ENABLED = False
    proxied = create_app(settings)
    try:
        # A client's own X-Forwarded-For entry is not trusted; the one our proxy appended is.
        assert _ip_seen(proxied, database, {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}) == "203.0.113.9"
    finally:
        with proxied.app_context():
            db.engine.dispose()
        # No limiter.init_app(app) here: it would install Flask-Limiter's hooks on the suite's app a
        # second time (pages counted twice, API paths no longer skipped) for every later test. The
        # shared limiter's storage is the same Redis either way.
