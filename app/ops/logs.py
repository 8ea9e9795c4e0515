"""Logs and error reporting.

`configure(app)` installs one handler on the root logger: JSON lines (python-json-logger) when LOG_FORMAT
is json (the default in production), else text. Every record carries `request_id` within a request, and
`tenant_id` and `actor` once the request's access decision knows them (app.security sets g.actor). With
SENTRY_DSN set, sentry-sdk reports unhandled exceptions (app.errors signals them) with the request id as
a tag; no personal data is sent.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, has_request_context

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_tag)s]: %(message)s"
JSON_FIELDS = ("asctime", "levelname", "name", "message")


class RequestContextFilter(logging.Filter):
    """Adds request_id, tenant_id and actor to every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = record.__dict__.get("request_id")
        record.tenant_id = record.__dict__.get("tenant_id")
        record.actor = record.__dict__.get("actor")
        if has_request_context():
            record.request_id = record.request_id or g.get("request_id")
            actor = g.get("actor")
            if actor is not None:
                record.tenant_id = record.tenant_id or actor.tenant_id
                record.actor = record.actor or (f"{actor.type}:{actor.id}" if actor.id else actor.type)
            tenant = g.get("tenant")
            if record.tenant_id is None and tenant is not None:
                record.tenant_id = getattr(tenant, "id", None)
        record.request_tag = record.request_id or "-"
        return True


def make_formatter(kind: str) -> logging.Formatter:
    """The formatter for LOG_FORMAT `kind` (json or text)."""
    if kind == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(
            " ".join(f"%({name})s" for name in (*JSON_FIELDS, "request_id", "tenant_id", "actor")),
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False, json_ensure_ascii=False)
    return TextFormatter(TEXT_FORMAT, defaults={"request_tag": "-"})


class TextFormatter(logging.Formatter):
    """Text lines whose CR and LF (from input a message quotes) are escaped, so one record is one line and no
    input can forge another record; a traceback still follows on its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return super().formatMessage(record).replace("\r", "\\r").replace("\n", "\\n")


class _Handler(logging.StreamHandler):
    """Ours, so that configuring again (tests build several apps) replaces it rather than adding one."""


def configure(app: Flask) -> None:
    """Install the root handler with the configured format, level and request fields; start Sentry."""
    root = logging.getLogger()
    root.setLevel(app.config["LOG_LEVEL"])
    handler = next((h for h in root.handlers if isinstance(h, _Handler)), None)
    if handler is None:
        handler = _Handler()
        handler.addFilter(RequestContextFilter())
        root.addHandler(handler)
    handler.setFormatter(make_formatter(app.config["LOG_FORMAT"]))
    if app.config.get("SENTRY_DSN"):
        init_sentry(app)


def _before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    if has_request_context() and g.get("request_id"):
        event.setdefault("tags", {})["request_id"] = g.get("request_id")
    return event


def init_sentry(app: Flask) -> None:
    """Report errors to Sentry (sentry-sdk's Flask integration), without personal data."""
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(dsn=app.config["SENTRY_DSN"], integrations=[FlaskIntegration()],
                    environment=app.config.get("ENV"),
                    traces_sample_rate=app.config.get("SENTRY_TRACES_SAMPLE_RATE", 0.0),
                    before_send=_before_send)
