"""Helpers for outbound webhook tests: a real HTTP receiver on 127.0.0.1, settings, running jobs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.security import Actor


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local HTTP server: records each request, answers with the queued responses (else 200)."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    default: tuple[int, dict[str, str], bytes] = (200, {}, b"ok")

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"", times: int = 1) -> None:
        self.answers.extend([(status, headers or {}, body)] * times)


def start_receiver() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status, headers, payload = receiver.answers.pop(0) if receiver.answers else receiver.default
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = start_receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def webhook_env(ctx, monkeypatch):
    """Plain http and 127.0.0.0/8 allowed (a local receiver), and the event-type catalogue present."""
    from app.webhooks import catalogue

    monkeypatch.setitem(ctx.config, "WEBHOOKS_ALLOW_HTTP", True)
    monkeypatch.setitem(ctx.config, "WEBHOOKS_ALLOWED_SUBNETS", ["127.0.0.0/8"])
    catalogue.ensure_event_types()
    return ctx


def owner(tenant) -> Actor:
    return Actor(type="user", id=None, display="owner@tests", tenant_id=tenant.id,
                 permissions=frozenset({"webhooks:write"}))


def run_jobs() -> None:
    """Run every job waiting on the webhooks queue in this process (SimpleWorker, burst), as a worker would."""
    from rq import SimpleWorker

    from app.queue import get_queue, get_redis

    SimpleWorker([get_queue("webhooks")], connection=get_redis()).work(burst=True, with_scheduler=False)
