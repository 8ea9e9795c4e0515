"""A local HTTP server that answers like Stripe's API for the calls Tenantry makes, so the real `stripe`
package can be pointed at it (STRIPE_API_BASE) and the tests can assert the requests it received.

It keeps customers, checkout sessions, setup intents, payment methods and payment intents in memory,
honours Idempotency-Key (the same key answers the same response, as Stripe does for 24 hours), and charges
cards according to `next_charge`: "succeeded", "declined" (HTTP 402 card_error with a PaymentIntent, as
Stripe answers a declined off-session payment) or "processing".
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest


@dataclass
class Received:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeStripe:
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    next_charge: list[str] = field(default_factory=list)  # outcomes of the next PaymentIntents, in order
    objects: dict[str, dict] = field(default_factory=dict)
    replies: dict[str, tuple[int, dict]] = field(default_factory=dict)  # idempotency key → first answer
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self.counter):06d}"

    def posts(self, path_start: str) -> list[Received]:
        return [r for r in self.requests if r.method == "POST" and r.path.startswith(path_start)]

    def complete_setup(self, customer: str, brand: str = "visa", last4: str = "4242") -> dict:
        """What Checkout does when the tenant enters a card: a PaymentMethod and a succeeded SetupIntent."""
        method = {"id": self.new_id("pm"), "object": "payment_method", "type": "card", "customer": customer,
                  "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034}}
        setup = {"id": self.new_id("seti"), "object": "setup_intent", "status": "succeeded", "customer": customer,
                 "payment_method": method["id"]}
        self.objects[method["id"]], self.objects[setup["id"]] = method, setup
        return setup

    # --- the API ---------------------------------------------------------------------------------------

    def answer(self, method: str, path: str, params: dict[str, str]) -> tuple[int, dict]:
        parts = path.strip("/").split("/")[1:]  # drop "v1"
        if method == "POST" and parts == ["customers"]:
            return 200, self._store({"id": self.new_id("cus"), "object": "customer", "name": params.get("name"),
                                     "metadata": _nested(params, "metadata"), "invoice_settings": {}})
        if method == "POST" and parts[0] == "customers" and len(parts) == 2:
            customer = self.objects[parts[1]]
            if "invoice_settings[default_payment_method]" in params:
                customer["invoice_settings"] = {"default_payment_method":
                                                params["invoice_settings[default_payment_method]"]}
            return 200, customer
        if method == "POST" and parts == ["checkout", "sessions"]:
            session_id = self.new_id("cs")
            return 200, self._store({"id": session_id, "object": "checkout.session", "mode": params.get("mode"),
                                     "customer": params.get("customer"), "url": f"https://checkout.example/{session_id}",
                                     "metadata": _nested(params, "metadata")})
        if method == "GET" and len(parts) == 2 and parts[1] in self.objects:
            return 200, self.objects[parts[1]]
        if method == "POST" and parts == ["payment_intents"]:
            return self._payment_intent(params)
        return 404, {"error": {"type": "invalid_request_error", "message": f"No such route {method} {path}"}}

    def _store(self, obj: dict) -> dict:
        self.objects[obj["id"]] = obj
        return obj

    def _payment_intent(self, params: dict[str, str]) -> tuple[int, dict]:
        outcome = self.next_charge.pop(0) if self.next_charge else "succeeded"
        status = {"succeeded": "succeeded", "processing": "processing", "declined": "requires_payment_method"}[outcome]
        intent = self._store({"id": self.new_id("pi"), "object": "payment_intent", "amount": int(params["amount"]),
                              "currency": params["currency"], "customer": params.get("customer"),
                              "payment_method": params.get("payment_method"), "status": status,
                              "metadata": _nested(params, "metadata")})
        if outcome == "declined":
            return 402, {"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                                   "message": "Your card has insufficient funds.", "payment_intent": intent}}
        return 200, intent


def _nested(params: dict[str, str], name: str) -> dict[str, str]:
    prefix = f"{name}["
    return {k[len(prefix):-1]: v for k, v in params.items() if k.startswith(prefix) and k.endswith("]")}


def serve(fake: FakeStripe) -> ThreadingHTTPServer:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            path, _, query = self.path.partition("?")
            params = dict(parse_qsl(raw or query, keep_blank_values=True))
            key = self.headers.get("Idempotency-Key")
            with lock:
                fake.requests.append(Received(method, path, params, {k.lower(): v for k, v in self.headers.items()}))
                if key and method == "POST" and key in fake.replies:
                    status, body = fake.replies[key]
                else:
                    status, body = fake.answer(method, path, params)
                    if key and method == "POST":
                        fake.replies[key] = (status, body)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", "req_fake")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def stripe_api(app, monkeypatch):
    """Tenantry pointed at a fake Stripe (STRIPE_API_KEY set, STRIPE_API_BASE at the fake)."""
    fake = FakeStripe()
    server = serve(fake)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setitem(app.config, "STRIPE_API_KEY", "sk_test_tenantry")
    monkeypatch.setitem(app.config, "STRIPE_API_BASE", fake.url)
    monkeypatch.setitem(app.config, "STRIPE_MAX_RETRIES", 0)
    yield fake
    server.shutdown()
    server.server_close()
