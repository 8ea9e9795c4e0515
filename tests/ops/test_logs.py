"""Structured logs carry the request id (and the tenant and actor once known); audit events and error
responses carry it too; with SENTRY_DSN set an unhandled exception reaches Sentry."""

from __future__ import annotations

import gzip
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from flask import g

from app import config as app_config
from app import create_app
from app.ops import logs
from app.security import Actor


def _record(message: str = "hello") -> logging.LogRecord:
    record = logging.LogRecord("app.test", logging.WARNING, __file__, 1, message, None, None)
    logs.RequestContextFilter().filter(record)
    return record


def test_json_lines_carry_the_request_id_tenant_and_actor(app):
    with app.test_request_context("/t/acme/"):
        g.request_id = "req-1234567890"
        g.actor = Actor(type="user", id="usr_1", display="a@example.com", tenant_id="ten_1")
        line = logs.make_formatter("json").format(_record("something happened"))
    body = json.loads(line)
    assert body["message"] == "something happened" and body["level"] == "WARNING" and body["logger"] == "app.test"
    assert (body["request_id"], body["tenant_id"], body["actor"]) == ("req-1234567890", "ten_1", "user:usr_1")
    assert body["time"]


def test_outside_a_request_the_fields_are_null(app):
    body = json.loads(logs.make_formatter("json").format(_record()))
    assert body["request_id"] is None and body["tenant_id"] is None and body["actor"] is None
    assert logs.make_formatter("text").format(_record()).endswith("app.test [-]: hello")


def test_log_format_follows_config(monkeypatch):
    monkeypatch.setenv("TENANTRY_ENV", "production")
    assert app_config.TestConfig().LOG_FORMAT == "json"
    monkeypatch.setenv("LOG_FORMAT", "text")
    assert app_config.TestConfig().LOG_FORMAT == "text"
    monkeypatch.delenv("TENANTRY_ENV")
    monkeypatch.delenv("LOG_FORMAT")
    assert app_config.TestConfig().LOG_FORMAT == "text"


def test_a_request_logs_its_id_and_the_audit_event_keeps_it(staff_client):
    from tests.admin.helpers import audit_events

    response = staff_client.form("/admin/system/alerts", {"name": "Queue slow", "kind": "queue_oldest_job",
                                                         "threshold": "60", "for_seconds": "0"},
                                 headers={"X-Request-ID": "trace-abcdef123456"})
    assert response.status_code == 303
    [event] = audit_events("ops.alert_rule.created")
    assert event.request_id == "trace-abcdef123456"


def test_problem_json_errors_carry_the_request_id(client):
    response = client.get("/api/v1/nothing-here", headers={"X-Request-ID": "trace-problem-0001"})
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["request_id"] == "trace-problem-0001"
    assert response.headers["X-Request-ID"] == "trace-problem-0001"


class _Envelopes:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.event = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                outer.bodies.append(body)
                outer.event.set()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_an_unhandled_exception_reaches_sentry(database, redis_url):
    import sentry_sdk

    sink = _Envelopes()
    config = app_config.TestConfig(database_url=database["url"], redis_url=redis_url)
    config.SENTRY_DSN = f"http://publickey@127.0.0.1:{sink.server.server_address[1]}/42"
    application = create_app(config)

    from app.security import public

    @public
    def explode():
        raise RuntimeError("kaboom from a route")

    application.add_url_rule("/_explode", "explode", explode)
    try:
        response = application.test_client().get("/_explode", headers={"X-Request-ID": "trace-sentry-00001"})
        assert response.status_code == 500
        assert "trace-sentry-00001" in response.get_data(as_text=True)  # the error page names it
        sentry_sdk.flush(timeout=5)
        assert sink.event.wait(5), "no envelope reached the Sentry endpoint"
        text = b"\n".join(sink.bodies).decode("utf-8", "replace")
        assert "kaboom from a route" in text and "RuntimeError" in text
        assert "trace-sentry-00001" in text
    finally:
        sentry_sdk.init(dsn=None)  # off again for the other tests
        sink.server.shutdown()
