"""A Flask test client signed in as staff, through the real sign-in pages (password, then a TOTP code: staff
must have two-factor sign-in), for benchmarks that time staff pages."""

from __future__ import annotations

import contextvars
import re

from flask.testing import FlaskClient

STAFF = ("bench-staff@tenantry.example.com", "bench-staff-password-1")
TOTP_SECRET = "BENCHSTAFFTOTPSECRETBENCHSTAFF23"  # noqa: S105 - a bench-only account in a throwaway database


class BenchClient(FlaskClient):
    """Each request in an empty contextvars context: its own app context, `g` and database session, as in
    production, even while the bench holds an app context open."""

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
    return found.group(1) if found else ""


def staff_client(app):
    """Make the bench's staff account (enrolled in two-factor sign-in) and sign a test client in."""
    import pyotp

    from app import clock
    from app.auth import service as auth_service
    from app.auth import twofactor
    from app.security import Actor

    system = Actor.system("bench")
    user = auth_service.create_staff(system, STAFF[0], "Bench staff", STAFF[1])
    twofactor.enrol_with_secret(system, user, TOTP_SECRET)
    client = BenchClient(app, app.response_class, use_cookies=True)
    page = client.get("/admin/login").get_data(as_text=True)
    answer = client.post("/admin/login", data={"email": STAFF[0], "password": STAFF[1], "csrf_token": _token(page)})
    step = answer.headers.get("Location", "")
    if "two-factor" in step:
        token = _token(client.get("/login").get_data(as_text=True))  # (as tests.conftest does)
        client.post(step.split("?")[0], data={"code": pyotp.TOTP(TOTP_SECRET).at(clock.now()), "csrf_token": token})
    return client
