"""Flag evaluation in process, and how fast a change reaches another process.

(a) Evaluations per second of one 20-rule string flag (tenant overrides, plan entitlements, segments on
    plan/status/country/tags/created_at, sticky rollouts and a weighted-variants split last) across 10,000
    tenants, through the public path `app.flags.snapshot.holder.evaluate(key, tenant)`, against a baseline
    measured in the same run: a hand-written Python function of the same shape (the same 20 checks as an
    if/elif chain, the same murmur3 hashing). Both must agree on every tenant. Target ≥ 200,000/s.
(b) Propagation: a second process serves the flag from its own snapshot (its listener thread subscribed to
    Redis pub/sub); this process changes the flag through the service (transaction, audit, outbox) and the
    time until the other process serves the new value is measured per change. Target ≤ 1 s for every change.

    .venv/bin/python bench/flags.py [--quick] [--seconds N] [--changes N]

Uses a throwaway SQLite file and an embedded Redis, unless BENCH_DATABASE_URL / BENCH_REDIS_URL are given.
The last line is the JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.usage_ingest import start_redis  # noqa: E402

PYTHON = sys.executable
TENANTS = 10_000
TARGET_EVALS_PER_S = 200_000
TARGET_PROPAGATION_S = 1.0
KEY, PROPAGATION_KEY = "checkout-flow", "bench-switch"
PLANS = ("free", "pro", "enterprise")
COUNTRIES = ("US", "DE", "FR", "GB", "JP", "BR", "IN", "CA")
CUTOFF = "2024-01-01T00:00:00+00:00"


def subjects(count: int):
    from app.db import new_id
    from app.flags.engine import Subject

    rng = random.Random(7)
    base = datetime(2022, 1, 1, tzinfo=UTC)
    tags = ("beta", "vip", "partner", "edu", "churn-risk")
    return [Subject(new_id("ten"), rng.choice(PLANS), "suspended" if rng.random() < 0.02 else "active",
                    rng.choice(COUNTRIES), frozenset(rng.sample(tags, rng.randint(0, 2))),
                    base + timedelta(days=rng.randint(0, 1400))) for _ in range(count)]


def twenty_rules(tenants) -> list[dict]:
    """Most tenants match late, so most evaluations walk most of the rules."""
    ids = [t.id for t in tenants]
    seg = lambda value, *constraints: {"type": "segment", "constraints": list(constraints), "value": value}  # noqa: E731
    c = lambda attribute, operator, value: ({"attribute": attribute, "operator": operator, "values": value}  # noqa: E731
                                            if isinstance(value, list) else
                                            {"attribute": attribute, "operator": operator, "value": value})
    return [
        {"type": "tenants", "tenant_ids": ids[0:10], "value": "override-a"},
        {"type": "tenants", "tenant_ids": ids[10:20], "value": "override-b"},
        {"type": "tenants", "tenant_ids": ids[20:30], "value": "override-c"},
        seg("suspended", c("status", "equals", "suspended")),
        {"type": "plan", "feature": "sso", "value": "sso"},
        seg("vip-de", c("tags", "equals", "vip"), c("country", "in", ["DE"])),
        seg("partner-jp", c("tags", "in", ["partner"]), c("country", "equals", "JP")),
        seg("edu-new", c("tags", "equals", "edu"), c("created_at", "after", "2025-06-01T00:00:00+00:00")),
        seg("zz", c("country", "in", ["ZZ", "YY", "XX"])),
        seg("old-free-br", c("plan", "equals", "free"), c("country", "equals", "BR"),
            c("created_at", "before", CUTOFF)),
        {"type": "rollout", "percentage": 5, "value": "early"},
        seg("not-us-churn", c("tags", "in", ["churn-risk"]), c("country", "not_in", ["US", "GB"])),
        {"type": "plan", "feature": "beta-checkout", "value": "plan-beta"},
        seg("pro-ca", c("plan", "in", ["pro"]), c("country", "equals", "CA")),
        {"type": "rollout", "percentage": 3, "value": "wave-2"},
        seg("in-new", c("country", "equals", "IN"), c("created_at", "after", "2025-09-01T00:00:00+00:00")),
        seg("gb-beta", c("country", "equals", "GB"), c("tags", "equals", "beta")),
        {"type": "rollout", "percentage": 2, "value": "wave-3"},
        seg("fr-ent", c("country", "equals", "FR"), c("plan", "not_in", ["free", "pro"])),
        {"type": "variants", "variants": [{"name": "control", "value": "control", "weight": 50},
                                          {"name": "one-page", "value": "one-page", "weight": 30},
                                          {"name": "express", "value": "express", "weight": 20}]},
    ]


def baseline_function(tenants):
    """The same 20 checks written by hand: what a flag costs when hard-coded."""
    import mmh3

    o1, o2, o3 = (frozenset(t.id for t in tenants[a:a + 10]) for a in (0, 10, 20))
    sso = frozenset({"enterprise"})
    after_edu = datetime(2025, 6, 1, tzinfo=UTC)
    cutoff = datetime.fromisoformat(CUTOFF)
    after_in = datetime(2025, 9, 1, tzinfo=UTC)

    def evaluate(t):
        tid = t.id
        if tid in o1:
            return "override-a"
        if tid in o2:
            return "override-b"
        if tid in o3:
            return "override-c"
        if t.status == "suspended":
            return "suspended"
        if t.plan in sso:
            return "sso"
        if "vip" in t.tags and t.country == "DE":
            return "vip-de"
        if "partner" in t.tags and t.country == "JP":
            return "partner-jp"
        if "edu" in t.tags and t.created_at is not None and t.created_at > after_edu:
            return "edu-new"
        if t.country in ("ZZ", "YY", "XX"):
            return "zz"
        if t.plan == "free" and t.country == "BR" and t.created_at is not None and t.created_at < cutoff:
            return "old-free-br"
        if mmh3.hash(f"{KEY}:{tid}", 0, signed=False) % 100 < 5:
            return "early"
        if "churn-risk" in t.tags and t.country not in ("US", "GB"):
            return "not-us-churn"
        if mmh3.hash(f"{KEY}:{tid}", 0, signed=False) % 100 < 3:
            return "wave-2"
        if t.plan == "pro" and t.country == "CA":
            return "pro-ca"
        if t.country == "IN" and t.created_at is not None and t.created_at > after_in:
            return "in-new"
        if t.country == "GB" and "beta" in t.tags:
            return "gb-beta"
        if mmh3.hash(f"{KEY}:{tid}", 0, signed=False) % 100 < 2:
            return "wave-3"
        if t.country == "FR" and t.plan not in ("free", "pro"):
            return "fr-ent"
        b = mmh3.hash(f"{KEY}:{tid}", 86028157, signed=False) % 100
        return "control" if b < 50 else "one-page" if b < 80 else "express"

    return evaluate


def rate(function, tenants, seconds: float) -> float:
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for tenant in tenants:
            function(tenant)
        done += len(tenants)
    return done / (time.perf_counter() - started)


def _app():
    from app import create_app

    return create_app()


def child() -> None:
    """The other process: serve the propagation flag from this process's snapshot; for each line 'wait V'
    on stdin, evaluate until the value is V and print the wall-clock time it was first served."""
    from app.flags.engine import Subject
    from app.flags.snapshot import holder

    app = _app()
    subject = Subject("ten_01jd0000000000000000000000", "pro")
    with app.app_context():
        holder.evaluate(PROPAGATION_KEY, subject)  # builds the snapshot, starts the listener
        print("ready", flush=True)
        for line in sys.stdin:
            wanted = line.split()[1] == "true"
            print("waiting", flush=True)
            deadline = time.time() + 30
            while holder.evaluate(PROPAGATION_KEY, subject).value is not wanted and time.time() < deadline:
                time.sleep(0.0002)
            print(f"{time.time():.6f}", flush=True)  # at worst 30 s: the bench reports it, never hangs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 s per side and 5 changes")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--changes", type=int, default=None)
    options = parser.parse_args()
    seconds = options.seconds or (1.0 if options.quick else 5.0)
    changes = options.changes or (5 if options.quick else 20)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="tenantry-bench-flags-"))
    processes: list[subprocess.Popen] = []
    try:
        os.environ.update(COOKIE_SECURE="false", LOG_LEVEL="WARNING")
        os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{work / 'bench.db'}"
        os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL") or start_redis(work, processes)
        app = _app()
        from flask_migrate import upgrade

        from app.flags import service
        from app.flags.snapshot import holder
        from app.plans import service as plans_service
        from app.security import Actor

        staff = Actor(type="staff", id=None, display="bench@tenantry")
        with app.app_context():
            upgrade()
            plans_service.ensure_default_plans(Actor.system("bench"))
            from app.flags.queries import find_flag

            for key in (KEY, PROPAGATION_KEY):
                if find_flag(key) is not None:  # a database kept from an earlier run
                    service.archive_flag(staff, key)
                    service.delete_flag(staff, key)
            tenants = subjects(TENANTS)
            service.create_flag(staff, {"key": KEY, "type": "string", "default_value": "control", "enabled": True,
                                        "rules": twenty_rules(tenants)})
            service.create_flag(staff, {"key": PROPAGATION_KEY, "enabled": False,
                                        "rules": [{"type": "rollout", "percentage": 100, "value": True}]})
            holder.current()
            baseline = baseline_function(tenants)
            engine = lambda t: holder.evaluate(KEY, t)  # noqa: E731
            mismatches = sum(engine(t).value != baseline(t) for t in tenants)
            rate(engine, tenants, 0.2)
            rate(baseline, tenants, 0.2)  # warm both
            engine_rate = rate(engine, tenants, seconds)
            baseline_rate = rate(baseline, tenants, seconds)
            table = {t.id: "x" for t in tenants}
            dict_rate = rate(lambda t: table[t.id], tenants, min(seconds, 1.0))

            env = dict(os.environ, PYTHONPATH=str(ROOT))
            other = subprocess.Popen([PYTHON, "-c", "from bench.flags import child; child()"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
            processes.append(other)
            assert other.stdout.readline().strip() == "ready"
            time.sleep(0.5)  # the listener subscribes
            latencies = []
            for n in range(changes):
                enable = n % 2 == 0
                other.stdin.write(f"wait {'true' if enable else 'false'}\n")
                other.stdin.flush()
                assert other.stdout.readline().strip() == "waiting"
                time.sleep(0.05)
                changed_at = time.time()
                service.set_enabled(staff, PROPAGATION_KEY, enable)
                served_at = float(other.stdout.readline())
                latencies.append(served_at - changed_at)
            holder.reset()
    finally:
        for process in reversed(processes):
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    ratio = engine_rate / baseline_rate
    worst, median = max(latencies), statistics.median(latencies)
    evals_met, propagation_met = engine_rate >= TARGET_EVALS_PER_S, worst <= TARGET_PROPAGATION_S
    print(f"20-rule flag over {TENANTS:,} tenants: {engine_rate:,.0f} evaluations/s "
          f"(target ≥ {TARGET_EVALS_PER_S:,}: {'met' if evals_met else 'NOT met'}); disagreements: {mismatches}")
    print(f"baseline (the same 20 checks hand-written): {baseline_rate:,.0f}/s; ratio {ratio:.2f}; "
          f"a bare dict lookup: {dict_rate:,.0f}/s")
    print(f"change → served by another process ({changes} changes): median {median * 1000:.1f} ms, "
          f"worst {worst * 1000:.1f} ms (target ≤ {TARGET_PROPAGATION_S:.0f} s: "
          f"{'met' if propagation_met else 'NOT met'})")
    print(json.dumps({
        "bench": "flags", "ratio": round(ratio, 3), "evaluations_per_s": round(engine_rate),
        "baseline_per_s": round(baseline_rate), "dict_lookup_per_s": round(dict_rate), "rules": 20,
        "tenants": TENANTS, "disagreements": mismatches, "target_evaluations_per_s": TARGET_EVALS_PER_S,
        "evaluations_target_met": evals_met, "propagation_median_ms": round(median * 1000, 1),
        "propagation_worst_ms": round(worst * 1000, 1), "propagation_changes": changes,
        "target_propagation_ms": TARGET_PROPAGATION_S * 1000, "propagation_target_met": propagation_met,
        "target_met": evals_met and propagation_met, "seconds_per_side": seconds,
        "duration_s": round(time.time() - started, 1),
    }))


if __name__ == "__main__":
    main()
