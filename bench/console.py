"""The staff overview (/admin) at 10,000 tenants with over a million usage rows, against 100 tenants.

For each size, in a fresh process and a fresh database: the plan catalogue, then SIZE tenants (spread over
the plans and statuses) inserted in bulk, DAYS days of rolled-up API calls per tenant (usage_daily: 1.2
million rows at 10,000 tenants), a revenue month with its top tenants, and a page of audit events. Then the
overview's snapshot is computed once (as the scheduler does every 5 minutes; timed and reported, not part of
the ratio) and GET /admin/ is requested as a signed-in staff member through Flask's test client: the median
of REQUESTS requests after two warm-up ones.

Target: the page at 10,000 tenants takes at most 1.5 × its time at 100.

    .venv/bin/python bench/console.py [--quick]

--quick uses 1,000 tenants (and 30 days) for the large size. Uses a throwaway SQLite file per size and an
embedded Redis, unless BENCH_DATABASE_URL / BENCH_REDIS_URL are given (BENCH_DATABASE_URL must be a database
of its own: its public schema is dropped and migrated again for each size). The last line is the JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
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

PYTHON = sys.executable
NOW = datetime(2030, 3, 20, 12, 0, tzinfo=UTC)
BASE = 100
DAYS = 120
REQUESTS = 30
TARGET_RATIO = 1.5
CHUNK = 20_000


def _reset_database() -> None:
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app.extensions import db

    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade()


def _seed(size: int, days: int) -> int:
    """Tenants, their daily API calls, a revenue month and some audit events; returns the usage rows made."""
    from sqlalchemy import insert, select

    from app.audit import service as audit_service
    from app.billing.metrics_models import RevenueMonth, RevenueTopTenant
    from app.db import new_id
    from app.extensions import db
    from app.plans import service as plans_service
    from app.plans.models import Plan
    from app.security import Actor
    from app.tenancy.models import Tenant
    from app.usage.models import UsageDaily

    system = Actor.system("bench")
    plans_service.ensure_default_plans(system)
    plan_ids = list(db.session.scalars(select(Plan.id).order_by(Plan.code)))
    statuses = ["active"] * 18 + ["suspended", "closed"]
    tenants = [{"id": new_id("ten"), "slug": f"bench-{i:05d}", "name": f"Bench tenant {i:05d}",
                "status": statuses[i % len(statuses)], "status_reason": "", "country": "US", "billing_email": "",
                "plan_id": plan_ids[i % len(plan_ids)], "created_at": NOW - timedelta(days=400),
                "updated_at": NOW - timedelta(days=400)} for i in range(size)]
    db.session.execute(insert(Tenant), tenants)
    today = NOW.date()
    rows, made = [], 0
    for index, tenant in enumerate(tenants):
        base = 50 + (index * 37) % 5000
        for day in range(days):
            value = base * (4 if day == 0 and index % 97 == 0 else 1)  # a jump today for about 1% of tenants
            rows.append({"tenant_id": tenant["id"], "day": today - timedelta(days=day), "metric": "api_calls",
                         "value": value})
        if len(rows) >= CHUNK:
            db.session.execute(insert(UsageDaily), rows)
            made, rows = made + len(rows), []
    if rows:
        db.session.execute(insert(UsageDaily), rows)
        made += len(rows)
    month = today.replace(day=1)
    db.session.add(RevenueMonth(month=month, currency="USD", mrr_start=100_000 * size, mrr_end=101_000 * size,
                                arr=12 * 101_000 * size, new_mrr=2_000 * size, churn_mrr=1_000 * size,
                                net_new_mrr=1_000 * size, overage_revenue=500 * size, aging_as_of=NOW,
                                computed_at=NOW))
    for rank, tenant in enumerate(tenants[:10], start=1):
        db.session.add(RevenueTopTenant(month=month, currency="USD", rank=rank, tenant_id=tenant["id"],
                                        mrr=1_000_000 - rank))
    for tenant in tenants[:20]:
        audit_service.record(system, "tenant.updated", tenant_id=tenant["id"],
                             changes={"name": ["before", tenant["name"]]})
    db.session.commit()
    return made


def measure() -> None:
    """One size in this process (BENCH_SIZE, BENCH_DAYS)."""
    from app import clock, create_app
    from app.console import overview
    from app.extensions import db

    size, days = int(os.environ["BENCH_SIZE"]), int(os.environ["BENCH_DAYS"])
    app = create_app()
    out: dict = {"size": size}
    with app.app_context(), clock.travel(NOW):
        started = time.perf_counter()
        _reset_database()
        out["usage_rows"] = _seed(size, days)
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as connection:
                connection.exec_driver_sql("ANALYZE")
        out["setup_s"] = round(time.perf_counter() - started, 1)
        db.session.remove()
        started = time.perf_counter()
        snap = overview.refresh()
        out["snapshot_s"] = round(time.perf_counter() - started, 3)
        out["jumps"], out["calls_today"] = snap["jumps_count"], snap["calls_today"]
        db.session.remove()
        from bench.staff import staff_client

        client = staff_client(app)
        app.config["PROPAGATE_EXCEPTIONS"] = True
        times = []
        for attempt in range(REQUESTS + 2):
            started = time.perf_counter()
            response = client.get("/admin/")
            took = time.perf_counter() - started
            if response.status_code != 200 or 'id="console-calls"' not in response.get_data(as_text=True):
                raise SystemExit(f"GET /admin/ answered {response.status_code} (not the overview)")
            if attempt >= 2:
                times.append(took)
        out["page_s"] = statistics.median(times)
    print(json.dumps(out, default=str))


def _measure(env: dict[str, str], size: int, days: int) -> dict:
    env = dict(env, BENCH_SIZE=str(size), BENCH_DAYS=str(days))
    if not os.environ.get("BENCH_DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{Path(env['BENCH_WORK']) / f'console-{size}.db'}"
    done = subprocess.run([PYTHON, "-c", "from bench.console import measure; measure()"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {size}-tenant measurement failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from bench.usage_ingest import start_redis

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 tenants and 30 days for the large size")
    options = parser.parse_args()
    large, days = (1000, 30) if options.quick else (10_000, DAYS)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="tenantry-bench-console-"))
    processes: list[subprocess.Popen] = []
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT), COOKIE_SECURE="false", LOG_LEVEL="WARNING", BENCH_WORK=str(work))
        if os.environ.get("BENCH_DATABASE_URL"):
            env["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
        env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL") or start_redis(work, processes)
        results = {}
        for size in (BASE, large):
            results[size] = result = _measure(env, size, days)
            print(f"{size:>6,} tenants, {result['usage_rows']:>9,} usage rows: page {result['page_s'] * 1000:6.1f} ms "
                  f"(median of {REQUESTS}); snapshot computed in {result['snapshot_s']:.2f} s "
                  f"({result['jumps']} usage jumps; setup {result['setup_s']} s)", flush=True)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    ratio = results[large]["page_s"] / results[BASE]["page_s"]
    print(f"page time at {large:,} / at {BASE}: {ratio:.2f} (target ≤ {TARGET_RATIO:g}): "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    print(json.dumps({
        "bench": "console", "ratio": round(ratio, 3), "target": TARGET_RATIO, "met": ratio <= TARGET_RATIO,
        "base": BASE, "large": large, "usage_rows_large": results[large]["usage_rows"],
        "page_ms_base": round(results[BASE]["page_s"] * 1000, 2),
        "page_ms_large": round(results[large]["page_s"] * 1000, 2),
        "snapshot_s_base": results[BASE]["snapshot_s"], "snapshot_s_large": results[large]["snapshot_s"],
        "load_average_1m": round(os.getloadavg()[0], 2), "seconds": round(time.time() - started, 1),
    }))


if __name__ == "__main__":
    main()
