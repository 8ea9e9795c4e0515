"""Outbound webhook throughput: Tenantry end to end against a plain HTTP client posting the same bodies.

A local receiver (a threaded HTTP/1.1 server in its own process) answers 200 and counts distinct
`webhook-id`s. Then, for the same N messages:

(a) baseline: one loop of a urllib3 connection pool (the HTTP library Tenantry uses) POSTs N bodies of
    the same shape and size, each with its own webhook-id, straight to the receiver; run three times
    (before (b), between (b) and (c), after (c)) and the median counts;
(b) Tenantry end to end: N events are published through `POST /api/v1/events` (batches of 100, the API's maximum)
    to the app under gunicorn, with one endpoint pointing at the receiver and W webhook workers
    (`python worker.py webhooks`, RQ SimpleWorkers) delivering; the clock runs from the first publish
    until the receiver has all N distinct ids. Every attempt recorded is counted at the end.

(c) the delivery engine alone: N more events are published while no webhook worker runs; then the
    workers start, and the rate is taken between the receiver's first and last request.

The ratio is (b) / (a) in messages per second; the target is ≥ 0.50. (c) / (a) is reported beside it.

    .venv/bin/python bench/webhooks.py [--quick] [--messages N] [--webhook-workers W] [--workers G]

Uses a throwaway SQLite file and an embedded Redis, unless BENCH_DATABASE_URL / BENCH_REDIS_URL are
given (on Postgres the database must be empty). The last line is the JSON summary.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_path import free_port, wait_up  # noqa: E402
from bench.usage_ingest import start_redis  # noqa: E402

PYTHON = sys.executable
BATCH = 100
TARGET_RATIO = 0.50
EVENT_TYPE = "member.added"


# --- the receiver (its own process) ------------------------------------------------------------------


def receiver(port: int) -> None:
    """Answer every POST 200 and remember its webhook-id; GET /count tells how many (distinct, total)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: set[str] = set()
    total = [0]
    times: list[float] = []  # first and last POST (wall clock)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else headers and body in two writes wait for a delayed ACK (40 ms)

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            webhook_id = self.headers.get("webhook-id") or ""
            with lock:
                seen.add(webhook_id)
                total[0] += 1
                times[1:] = [time.time()]
                if len(times) == 1:
                    times.insert(0, times[0])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self):
            with lock:
                span = times[-1] - times[0] if times else 0.0
                body = json.dumps({"distinct": len(seen), "total": total[0], "span_s": span}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_DELETE(self):  # reset between the two sides
            with lock:
                seen.clear()
                total[0] = 0
                times.clear()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    server.serve_forever()


def _receiver_call(port: int, method: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, "/count")
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return json.loads(data) if data else {}


# --- setup in the app (its own process) --------------------------------------------------------------


def _prepare() -> None:
    """Migrate, a tenant on a plan that allows the load, an endpoint at the receiver (BENCH_RECEIVER_URL),
    and print an API key that may publish events."""
    from flask_migrate import upgrade

    from app.auth import apikeys
    from app.plans import queries as plans_queries
    from app.plans import service as plans
    from app.security import ROLE_PERMISSIONS, Actor
    from app.tenancy import service as tenancy
    from app.webhooks import catalogue, outbound
    from bench.bench_app import app

    with app.app_context():
        upgrade()
        catalogue.ensure_event_types()
        system = Actor.system("bench")
        plans.ensure_default_plans(system)
        plan = plans_queries.find_plan("enterprise")
        plans.update_plan(system, plan.id, {"rate_limit_per_second": 1_000_000,
                                            "rate_limit_per_minute": 60_000_000, "max_webhook_endpoints": 100})
        tenant, _ = tenancy.create_tenant(system, {"name": "Bench", "slug": "bench", "plan_id": plan.id})
        actor = Actor(type="user", id=None, display="bench", tenant_id=tenant.id,
                      permissions=ROLE_PERMISSIONS["owner"])
        outbound.create_endpoint(actor, tenant.id, {"url": os.environ["BENCH_RECEIVER_URL"]})
        _, plaintext = apikeys.create_key(actor, tenant.id, "bench", ["events:write", "webhooks:read"])
        print(plaintext)


def _count_attempts() -> None:
    """Print the attempts recorded, by status, and the deliveries by status."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.webhooks.outbound_models import WebhookAttempt, WebhookDelivery
    from bench.bench_app import app

    with app.app_context():
        attempts = dict(db.session.execute(select(WebhookAttempt.status, func.count())
                                           .group_by(WebhookAttempt.status)).all())
        deliveries = dict(db.session.execute(select(WebhookDelivery.status, func.count())
                                             .group_by(WebhookDelivery.status)).all())
        print(json.dumps({"attempts": attempts, "deliveries": deliveries}))


def _in_app(env: dict[str, str], function: str) -> str:
    code = f"from bench.webhooks import {function}; {function}()"
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


# --- the two sides -----------------------------------------------------------------------------------


def _payload(n: int) -> dict:
    return {"email": f"user{n}@example.com", "member_id": f"usr_{n:020d}", "role": "member", "n": n}


def baseline(receiver_port: int, messages: int) -> float:
    """(a) One urllib3 pool loop POSTing N bodies like Tenantry's (envelope, Standard Webhooks headers)."""
    import urllib3

    from app.webhooks import signing

    secret = signing.generate_secret()
    pool = urllib3.HTTPConnectionPool("127.0.0.1", receiver_port, maxsize=1)
    started = time.monotonic()
    for n in range(messages):
        webhook_id = f"msg_base{n:022d}"
        body = json.dumps({"type": EVENT_TYPE, "timestamp": "2026-01-01T00:00:00Z", "data": _payload(n)},
                          separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "bench",
                   **signing.headers(webhook_id, int(time.time()), body, [secret])}
        answer = pool.urlopen("POST", "/hook", body=body, headers=headers, retries=False)
        if answer.status != 200:
            raise SystemExit(f"receiver answered {answer.status}")
    elapsed = time.monotonic() - started
    pool.close()
    return elapsed


def publish_all(app_port: int, token: str, messages: int, connections: int) -> dict[int, int]:
    """POST N events in batches of 100 through the API, from a few client threads; errors by status."""
    batches = [list(range(start, min(start + BATCH, messages))) for start in range(0, messages, BATCH)]
    errors: dict[int, int] = {}
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client(share: list[list[int]]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", app_port, timeout=60)
        for batch in share:
            body = json.dumps({"events": [{"type": EVENT_TYPE, "payload": _payload(n)} for n in batch]})
            connection.request("POST", "/api/v1/events", body=body,
                               headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                with lock:
                    errors[response.status] = errors.get(response.status, 0) + 1
        connection.close()

    threads = [threading.Thread(target=client, args=(batches[i::connections],)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def wait_for(receiver_port: int, messages: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        counts = _receiver_call(receiver_port, "GET")
        if counts["distinct"] >= messages or time.monotonic() > deadline:
            return counts
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 messages instead of 5,000")
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--webhook-workers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--connections", type=int, default=2, help="client threads publishing")
    parser.add_argument("--profile", default=None, help="write each webhook worker's cProfile stats to DIR")
    parser.add_argument("--receiver", type=int, default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.receiver:
        receiver(options.receiver)
        return
    messages = options.messages or (1000 if options.quick else 5000)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="tenantry-bench-"))
    processes: list[subprocess.Popen] = []
    try:
        receiver_port = free_port()
        processes.append(subprocess.Popen([PYTHON, __file__, "--receiver", str(receiver_port)], cwd=ROOT))
        wait_up(f"http://127.0.0.1:{receiver_port}/count")
        env = dict(os.environ, PYTHONPATH=str(ROOT), COOKIE_SECURE="false", LOG_LEVEL="WARNING",
                   WEBHOOKS_ALLOW_HTTP="1", WEBHOOKS_ALLOWED_SUBNETS="127.0.0.0/8",
                   BENCH_RECEIVER_URL=f"http://127.0.0.1:{receiver_port}/hook")
        env["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{work / 'bench.db'}"
        env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL") or start_redis(work, processes)

        # (a) the baseline: once to warm up, then before (b), between (b) and (c), and after (c); the median
        # counts (this machine's speed drifts by a third between minutes; one reading would decide the ratio)
        baseline(receiver_port, min(200, messages))
        _receiver_call(receiver_port, "DELETE")
        base_runs = [baseline(receiver_port, messages)]
        _receiver_call(receiver_port, "DELETE")  # reset before (b)

        # (b) Tenantry
        token = _in_app(env, "_prepare")
        app_port = free_port()
        first_app_process = len(processes)
        processes.append(subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "--workers", str(options.workers), "--bind", f"127.0.0.1:{app_port}",
             "--log-level", "warning", "bench.bench_app:app"], cwd=ROOT, env=env))

        def start_workers(count: int) -> None:
            for _ in range(count):
                profile = ["-m", "cProfile", "-o", f"{options.profile}/worker-{len(processes)}.prof"] \
                    if options.profile else []
                processes.append(subprocess.Popen([PYTHON, *profile, "worker.py", "webhooks"], cwd=ROOT, env=env,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def stop(group: list[subprocess.Popen]) -> None:
            for process in group:  # a worker finishes its job, then stops
                process.send_signal(signal.SIGTERM)
            for process in group:
                process.wait(timeout=30)

        start_workers(options.webhook_workers)
        wait_up(f"http://127.0.0.1:{app_port}/livez")
        time.sleep(2)  # the workers import the app and register
        t0 = time.monotonic()
        errors = publish_all(app_port, token, messages, options.connections)
        published_s = time.monotonic() - t0
        counts = wait_for(receiver_port, messages, timeout=max(120.0, messages / 20))
        tenantry_s = time.monotonic() - t0
        workers = processes[first_app_process + 1:]
        stop(workers)
        recorded = json.loads(_in_app(env, "_count_attempts"))
        _receiver_call(receiver_port, "DELETE")
        base_runs.append(baseline(receiver_port, messages))

        # (c) the delivery engine alone: N more events published while no worker runs, then the workers
        # start; the rate is taken between the receiver's first and last request
        _receiver_call(receiver_port, "DELETE")
        t1 = time.monotonic()
        publish_all(app_port, token, messages, options.connections)
        publish_alone_s = time.monotonic() - t1
        start_workers(options.webhook_workers)
        drained = wait_for(receiver_port, messages, timeout=max(120.0, messages / 20))
        stop(processes[first_app_process:])
        _receiver_call(receiver_port, "DELETE")
        base_runs.append(baseline(receiver_port, messages))
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)
    base_s = sorted(base_runs)[1]
    base_rate = messages / base_s
    rate = counts["distinct"] / tenantry_s
    ratio = rate / base_rate
    attempts = sum(recorded["attempts"].values())
    complete = counts["distinct"] >= messages
    drain_rate = (drained["distinct"] - 1) / drained["span_s"] if drained["span_s"] else 0.0
    print(f"baseline (one urllib3 pool loop): {messages} messages in {base_s:.2f} s = {base_rate:8.0f} msg/s "
          f"(median of {', '.join(f'{messages / s:.0f}' for s in base_runs)})")
    print(f"Tenantry ({options.webhook_workers} webhook workers, {options.workers} gunicorn workers): "
          f"{counts['distinct']} of {messages} distinct ids received in {tenantry_s:.2f} s = {rate:8.0f} msg/s "
          f"(published in {published_s:.2f} s; {counts['total']} requests received; publish errors "
          f"{errors or 'none'})")
    print(f"attempts recorded: {attempts} {recorded['attempts']}; deliveries {recorded['deliveries']}")
    print(f"delivery alone (published first, then the workers started): {drained['distinct']} of {messages} in "
          f"{drained['span_s']:.2f} s = {drain_rate:8.0f} msg/s, ratio to baseline {drain_rate / base_rate:.2f}")
    print(f"publishing alone (no worker running): {messages} events in {publish_alone_s:.2f} s = "
          f"{messages / publish_alone_s:8.0f} events/s")
    print(f"ratio (Tenantry / baseline): {ratio:.2f}   target ≥ {TARGET_RATIO:.2f}: "
          f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}")
    print(json.dumps({
        "bench": "webhooks", "ratio": round(ratio, 3), "target_ratio": TARGET_RATIO,
        "target_met": ratio >= TARGET_RATIO, "messages": messages, "received_distinct": counts["distinct"],
        "received_total": counts["total"], "complete": complete, "tenantry_msg_per_s": round(rate, 1),
        "baseline_msg_per_s": round(base_rate, 1), "tenantry_s": round(tenantry_s, 2),
        "publish_s": round(published_s, 2), "baseline_s": round(base_s, 2),
        "baseline_runs_msg_per_s": [round(messages / s, 1) for s in base_runs], "attempts_recorded": attempts,
        "attempts_by_status": recorded["attempts"], "deliveries_by_status": recorded["deliveries"],
        "delivery_only_msg_per_s": round(drain_rate, 1), "delivery_only_ratio": round(drain_rate / base_rate, 3),
        "delivery_only_complete": drained["distinct"] >= messages,
        "publish_alone_events_per_s": round(messages / publish_alone_s, 1), "publish_errors": errors,
        "webhook_workers": options.webhook_workers, "gunicorn_workers": options.workers,
        "duration_s": round(time.time() - started, 1),
    }))


if __name__ == "__main__":
    main()
