"""HTMX helpers: one URL renders the full page or its partial; toasts; redirects; response headers."""

from __future__ import annotations

import functools
import json
import re
import secrets
import time
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, flash, g, get_flashed_messages, redirect, render_template, request
from flask_htmx import HTMX

from app.extensions import htmx

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

# No 'unsafe-inline' or 'unsafe-eval' anywhere. Plotly adds its CSS by creating an empty <style> element and
# filling it through the CSSOM (insertRule, which CSP allows); the one hash allowed in style-src is that of
# the empty string, so only an empty <style> element passes, never inline CSS.
EMPTY_STYLE_HASH = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
CSP = (
    f"default-src 'self'; script-src 'self'; style-src 'self' {EMPTY_STYLE_HASH}; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)


def is_partial_request() -> bool:
    """An htmx request that wants a fragment (not a boosted navigation or a history restore)."""
    hx: HTMX = htmx
    return bool(hx) and not hx.boosted and not hx.history_restore_request


def render(template: str, partial: str | None = None, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render the full page, or only `partial` when htmx asks for a fragment."""
    name = partial if partial and is_partial_request() else template
    return render_template(name, **context), status


def toast(message: str, level: str = "success") -> None:
    """Queue a toast: shown on the next full page, or sent in HX-Trigger for htmx requests."""
    flash(message, level)


def redirect_to(url: str, full_reload: bool = False) -> Response:
    """After a successful POST: HX-Location for htmx (no 302 followed into the target), else 303.

    `full_reload` (HX-Redirect) is for sign-in and sign-out: the session, and with it the CSRF token
    in <body hx-headers>, changes, so the whole document must be loaded again.
    """
    if htmx and full_reload:
        response = Response(status=204)
        response.headers["HX-Redirect"] = url
        return response
    if htmx:
        response = Response(status=204)
        # The follow-up GET says it is a navigation (HX-Boosted), so the server answers the full page
        # (not a partial meant for an in-page swap) and renders pending toasts once, in the page.
        response.headers["HX-Location"] = json.dumps(
            {"path": url, "target": "body", "headers": {"HX-Boosted": "true"}}
        )
        return response
    return redirect(url, code=303)


def safe_next(url: str | None, default: str) -> str:
    """Only same-site relative paths are accepted as post-login destinations."""
    if not url:
        return default
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url


def int_arg(name: str, default: int, lo: int = 1, hi: int = 10_000) -> int:
    """An integer query argument clamped to [lo, hi]; garbage gives the default."""
    try:
        return max(lo, min(hi, int(request.args.get(name, default))))
    except (TypeError, ValueError):
        return default


def _before_request() -> None:
    g.started_at = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(12)


API_PREFIXES = ("/api/v1/", "/ofrep/v1/")  # Bearer-key routes behind the request gate (OFREP: app.flags)
_API_HEADERS = tuple((name, name.lower(), value) for name, value in (
    ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN")))


def _after_request(response: Response) -> Response:
    if request.path.startswith(API_PREFIXES):
        return _after_api_request(response)
    response.headers["X-Request-ID"] = g.get("request_id", "")
    response.vary.add("HX-Request")
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    if current_app.config.get("COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("Cache-Control", "no-store")
    # htmx requests that stay on the page carry flashed messages as an HX-Trigger toast event.
    if htmx and not htmx.boosted and "HX-Location" not in headers and "HX-Redirect" not in headers:
        messages = get_flashed_messages(with_categories=True)
        if messages:
            trigger = {"toast": [{"level": level, "message": message} for level, message in messages]}
            headers["HX-Trigger"] = json.dumps(trigger)
    return response


def _after_api_request(response: Response) -> Response:
    """The same security headers on JSON answers to API clients, set in one pass over the few already
    there: no HTML (no CSP), no htmx (no Vary: HX-Request) and no flashed messages (no session)."""
    headers = response.headers
    present = {name.lower(): value for name, value in headers}
    request_id = g.get("request_id", "")
    if "x-request-id" in present:
        headers["X-Request-ID"] = request_id
    else:
        headers.add("X-Request-ID", request_id)
    for name, lower, value in _API_HEADERS:
        if lower not in present:
            headers.add(name, value)
    if "strict-transport-security" not in present and current_app.config.get("COOKIE_SECURE"):
        headers.add("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if present.get("content-type", "").startswith("text/html"):  # never an API view's; an error page
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("Cache-Control", "no-store")
    return response


def _vendor_asset(filename: str) -> Response:
    """Third-party front-end files, served from their installed packages (never a CDN or a copy)."""
    from flask import abort, send_from_directory

    directory = VENDOR.get(filename)
    if directory is None:
        abort(404)
    return send_from_directory(directory(), filename, max_age=86400)


def _htmx_dir() -> str:
    import js_lib_htmx

    return str(Path(js_lib_htmx.__file__).parent / "static" / "htmx")


def _plotly_dir() -> str:
    import plotly

    return str(Path(plotly.__file__).parent / "package_data")


VENDOR = {"htmx.min.js": _htmx_dir, "plotly.min.js": _plotly_dir}


@functools.cache
def plotly_preset_style_ids() -> tuple[str, ...]:
    """Ids of the <style> elements Plotly's bundle creates with fixed CSS when it loads (MapLibre's, for map
    traces we never draw) unless an element with that id exists: the page carries such an element, so no
    inline CSS is ever added (the CSP has no 'unsafe-inline'). Read from the installed bundle, so an upgrade
    that changes the id still works."""
    source = (Path(_plotly_dir()) / "plotly.min.js").read_text(encoding="utf-8", errors="replace")
    return tuple(dict.fromkeys(re.findall(
        r'getElementById\("([0-9a-f]{64})"\)\)\{var \w+=document\.createElement\("style"\)', source)))


def init_app(app: Flask) -> None:
    """Install request ids, Vary: HX-Request, security headers, toast forwarding and vendor assets."""
    from app.security import public

    app.add_url_rule("/vendor/<path:filename>", "vendor_asset", public(_vendor_asset))
    app.before_request(_before_request)
    app.after_request(_after_request)
    app.jinja_env.globals["is_partial_request"] = is_partial_request
    app.jinja_env.globals["plotly_preset_style_ids"] = plotly_preset_style_ids


def form_moment(raw: str, field: str, example: str = "2026-03-01") -> datetime | None:
    """A form's datetime-local ("2026-03-01T12:00") or date as UTC; blank is None; anything else is
    Invalid naming `field`."""
    from app.errors import Invalid

    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid(errors={field: f"Enter a date ({example}) or a date and time ({example}T12:00), in UTC."}
                      ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def form_day_end(raw: str, field: str, errors: dict[str, str]) -> datetime | None:
    """A form's date ("2026-12-31") as the last moment of that day, UTC; blank is None; a bad date is
    reported in `errors[field]`."""
    if not (raw or "").strip():
        return None
    try:
        return datetime.combine(datetime.fromisoformat(raw.strip()).date(), clock_time.max, UTC)
    except ValueError:
        errors[field] = "A date such as 2026-12-31, or empty."
        return None
