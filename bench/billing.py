"""Throughput of the billing run: invoices per second at 1,000 and 10,000 tenants, linearity, idempotence,
and the revenue page's render time at 10,000 tenants against 100.

For each size, in a fresh process and a fresh database: the plan catalogue, tax rates (DE 19% exclusive,
AU 10% inclusive, US-CA 7.25%) and two coupons; then SAMPLES tenants made through the services (tenant,
billing profile, prepaid credits, subscription, the first invoice finalized and collected, dunning retries)
on a mix of Pro and Enterprise, monthly and annual, with and without a coupon, taxed, untaxed and reverse
charge, paying with credits, by bank transfer (the manual provider) or not at all; every period ends on
RENEW_AT. The other tenants are copies of those samples: every row the services wrote for a sample
(tenant, profile, subscription and its history, invoice, lines, payments, credits and their ledger, dunning,
outbox, the audit chain with its hashes recomputed) is inserted in bulk with new ids, names and invoice
numbers. Usage for the closed period goes to the rollup table (usage_daily), a day per row, so about 40% of
the Pro tenants have overage lines. That is setup; it is not timed.

Timed: billing.run.run(RENEW_AT's day) with the clock past RENEW_AT and BILLING_FINALIZE_GRACE: every
period is closed (renewal, history, the new period's invoice priced with fee, overage, coupon and tax),
then every draft is finalized (priced again, numbered) and collected (credits, then the card step;
failures enter dunning). Then the same run again, which must create and finalize nothing.

The revenue page (GET /admin/revenue, staff, through Flask's test client) is timed after its metrics are
rebuilt: the median of REVENUE_REQUESTS requests, at the largest size and at 100 tenants.

Targets: ≥ 300 invoices/s at 10,000 tenants; time(10,000) / time(1,000) ≤ 11; revenue page at 10,000
tenants ≤ 1.5 × its time at 100.

    .venv/bin/python bench/billing.py [--quick] [--sizes 1000,10000] [--profile]

--quick runs 100 and 1,000 tenants; --profile prints the billing run's top functions (cProfile) for the
largest size (by cumulative time; BENCH_PROFILE_SORT=tottime sorts by own time). Besides wall time the
bench reports the measuring process's CPU time (with SQLite that is all of the work; with PostgreSQL the
server's share is not in it), whose ratio holds up better when other work loads the machine; the JSON also
carries the load average at the end.

Uses a throwaway SQLite file per size and an embedded Redis, unless BENCH_DATABASE_URL / BENCH_REDIS_URL are
given: BENCH_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/billing_bench) must be a database of its
own, as its public schema is dropped and migrated again for each size. The last line is the JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
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
RENEW_AT = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)  # where every subscription's current period ends
MONTHLY_START = datetime(2030, 2, 1, 9, 0, tzinfo=UTC)
ANNUAL_START = datetime(2029, 3, 1, 9, 0, tzinfo=UTC)
SAMPLES = 48
CLONE_CHUNK = 500
REVENUE_REQUESTS = 25
REVENUE_BASE = 100
TARGET_PER_S = 300
TARGET_RATIO = 11.0
TARGET_REVENUE_RATIO = 1.5
STAFF = ("bench-staff@tenantry.example.com", "bench-staff-password-1")
ID_RE = re.compile(r"^[a-z]{1,4}_[0-9a-z]{26}$")
SKIP_TABLES = {"revenue_top_tenants", "usage_rollup_batches", "usage_daily", "usage_hourly", "request_log"}


# --- setup (in the measuring process) ----------------------------------------------------------------


def _reset_database() -> None:
    """A fresh schema: drop PostgreSQL's public schema (SQLite files are new anyway), then migrate."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app.extensions import db

    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade()


def _catalogue():
    """Plans, tax rates and coupons, made through the services before any tenant."""
    from app.billing import coupons, tax
    from app.plans import service as plans
    from app.security import Actor

    system = Actor.system("bench")
    plans.ensure_default_plans(system)
    for country, region, name, percentage, inclusive in (("DE", "", "VAT", "19", False), ("AU", "", "GST", "10", True),
                                                         ("US", "CA", "Sales tax", "7.25", False)):
        tax.create_tax_rate(system, {"country": country, "region": region, "name": name, "percentage": percentage,
                                     "inclusive": inclusive})
    coupons.create_coupon(system, {"name": "Launch 20%", "code": "LAUNCH20", "percent_off": "20",
                                   "duration": "repeating", "duration_periods": 6})
    coupons.create_coupon(system, {"name": "Partner $10", "code": "PARTNER10", "amount_off": 1000, "currency": "USD",
                                   "duration": "forever"})


def _archetype(index: int) -> dict:
    """The deterministic mix of the sample tenants."""
    rng = random.Random(index * 7919)
    plan = "enterprise" if index % 10 in (3, 7, 9) else "pro"
    interval = "annual" if index % 4 == 1 else "monthly"
    coupon = "LAUNCH20" if index % 7 == 2 else "PARTNER10" if index % 11 == 5 else None
    taxed = ["DE", "DE", "AU", "US-CA", "FR-reverse", "US", "US", "GB"][index % 8]
    pays = ["credits", "bank", "bank", "credits", "partial", "bank", "none", "credits"][(index * 3) % 8]
    over = plan == "pro" and index % 5 in (0, 2)
    return {"plan": plan, "interval": interval, "coupon": coupon, "taxed": taxed, "pays": pays, "over": over,
            "daily": rng.randint(4_000, 9_000) * (12 if interval == "annual" else 1) if over
            else rng.randint(300, 3_000), "name": f"Bench sample {index:03d}", "slug": f"bench-s{index:03d}"}


def _make_sample(spec: dict) -> str:
    """One tenant through the services, subscribed at its period start; returns its id."""
    from app import clock
    from app.billing import subscriptions, tax, wallets
    from app.billing.common import plan_price
    from app.extensions import db
    from app.plans import queries as plan_queries
    from app.security import Actor
    from app.tenancy import service as tenancy

    system, staff = Actor.system("bench"), Actor(type="staff", id=None, display="bench staff")
    start = ANNUAL_START if spec["interval"] == "annual" else MONTHLY_START
    plan = plan_queries.find_plan(spec["plan"])
    country = spec["taxed"].split("-")[0]
    with clock.travel(start - timedelta(hours=2)):
        tenant, _ = tenancy.create_tenant(system, {"name": spec["name"], "slug": spec["slug"], "country": country,
                                                   "plan_id": plan.id,
                                                   "billing_email": f"billing@{spec['slug']}.example.com"})
        if spec["taxed"] in ("DE", "AU", "US-CA", "FR-reverse", "GB"):
            tax.set_profile(staff, tenant.id, {
                "country": country, "region": "CA" if spec["taxed"] == "US-CA" else "",
                "tax_id": "FR40303265045" if spec["taxed"] == "FR-reverse" else "",
                "tax_exempt": "reverse" if spec["taxed"] == "FR-reverse" else "none"})
        if spec["pays"] in ("bank", "partial"):
            if tax.get_profile(tenant.id) is None:
                tax.set_profile(staff, tenant.id, {"country": country})
            tax.get_profile(tenant.id).default_payment_method = "bank_transfer"  # recorded by staff
            db.session.commit()
        price = plan_price(plan, spec["interval"])
        if spec["pays"] == "credits":  # enough for this period and the next, overage included
            wallets.add(staff, tenant.id, "granted", {"amount": 3 * price + 500_000, "currency": plan.currency,
                                                       "note": "Prepaid"})
    with clock.travel(start):
        subscriptions.create(system, tenant.id, spec["plan"], spec["interval"], coupon=spec["coupon"], trial=False)
    if spec["pays"] == "partial":
        with clock.travel(start + timedelta(days=10)):
            wallets.add(staff, tenant.id, "granted", {"amount": price // 2, "currency": plan.currency,
                                                       "note": "Goodwill"})
    return tenant.id


def _settle_samples() -> None:
    """Finalize and collect the samples' first invoices, then run their dunning retries."""
    from flask import current_app

    from app import clock
    from app.billing import collection, run

    grace = current_app.config["BILLING_FINALIZE_GRACE"]
    for start in (ANNUAL_START, MONTHLY_START):
        with clock.travel(start + grace + timedelta(minutes=1)):
            run.finalize_due()
        for day in (1, 3, 5, 7):
            with clock.travel(start + timedelta(days=day, hours=1)):
                collection.retry_due()


def _rows_of(samples: list[str]) -> tuple[list, dict[str, dict[str, list[dict]]]]:
    """Every row the services wrote for the samples, by sample and table, in insert (FK) order."""
    from sqlalchemy import select

    from app.extensions import db

    tables = [t for t in db.metadata.sorted_tables
              if t.name == "tenants" or t.name == "audit_chains" or ("tenant_id" in t.c and t.name not in SKIP_TABLES)]
    rows: dict[str, dict[str, list[dict]]] = {sample: {} for sample in samples}
    for table in tables:
        key = table.c.id if table.name == "tenants" else table.c.chain if table.name == "audit_chains" \
            else table.c.tenant_id
        order = [table.c.seq] if table.name == "audit_events" else list(table.primary_key.columns)
        for row in db.session.execute(select(table).where(key.in_(samples)).order_by(*order)).mappings():
            rows[row[key.name]].setdefault(table.name, []).append(dict(row))
    return tables, rows


def _remap(value, mapping: dict):
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, dict):
        return {k: _remap(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_remap(v, mapping) for v in value]
    return value


def _clone(samples: list[str], total: int) -> int:
    """Copies of the samples' rows up to `total` tenants, inserted in bulk; returns how many were made."""
    from types import SimpleNamespace

    from sqlalchemy import func, insert, select, update

    from app import clock
    from app.audit.service import compute_hash
    from app.billing.invoice_models import DocumentSequence
    from app.billing.models import Coupon, Subscription
    from app.db import new_id
    from app.extensions import db

    tables, rows = _rows_of(samples)
    sequences = {row.series: row.last for row in db.session.scalars(select(DocumentSequence))}
    redeemed: dict[str, int] = {}
    coupon_of = dict(db.session.execute(select(Subscription.tenant_id, Subscription.coupon_id)).all())
    made = 0
    for chunk_start in range(len(samples), total, CLONE_CHUNK):
        batch: dict[str, list[dict]] = {t.name: [] for t in tables}
        with clock.travel(RENEW_AT - timedelta(days=1)):
            for number in range(chunk_start, min(total, chunk_start + CLONE_CHUNK)):
                sample = samples[number % len(samples)]
                mapping: dict = {}
                for table_rows in rows[sample].values():
                    for row in table_rows:
                        if isinstance(row.get("id"), str) and ID_RE.match(row["id"]):
                            mapping[row["id"]] = new_id(row["id"].split("_")[0])
                tenant = rows[sample]["tenants"][0]
                mapping[tenant["name"]], mapping[tenant["slug"]] = f"Bench {number:06d}", f"bench-{number:06d}"
                mapping[tenant["billing_email"]] = f"billing@bench-{number:06d}.example.com"
                for invoice in rows[sample].get("invoices", []):
                    if invoice["number"]:
                        series = invoice["number"].rsplit("-", 1)[0]
                        sequences[series] += 1
                        mapping[invoice["number"]] = f"{series}-{sequences[series]:06d}"
                for name, table_rows in rows[sample].items():
                    autoincrement = "id" in table_rows[0] and not isinstance(table_rows[0]["id"], str)
                    for row in table_rows:
                        copy = {k: _remap(v, mapping) for k, v in row.items() if not (autoincrement and k == "id")}
                        batch[name].append(copy)
                _rehash(batch["audit_events"], batch["audit_chains"], rows[sample], compute_hash, SimpleNamespace)
                if coupon_of.get(sample):
                    redeemed[coupon_of[sample]] = redeemed.get(coupon_of[sample], 0) + 1
                made += 1
        for table in tables:
            if batch[table.name]:
                db.session.execute(insert(table), batch[table.name])
        db.session.commit()
    for series, last in sequences.items():
        db.session.execute(update(DocumentSequence).where(DocumentSequence.series == series).values(last=last))
    for coupon_id, count in redeemed.items():
        db.session.execute(update(Coupon).where(Coupon.id == coupon_id)
                           .values(times_redeemed=Coupon.times_redeemed + count))
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == total
    return made


def _rehash(events: list[dict], chains: list[dict], sample_rows: dict, compute_hash, namespace) -> None:
    """Recompute the hash chain of the clone just appended (its rows are the last ones of each list)."""
    count = len(sample_rows.get("audit_events", []))
    if not count:
        return
    mine = events[-count:]
    previous = mine[0]["prev_hash"]
    for row in mine:
        row["prev_hash"] = previous
        event = namespace(**{k: v for k, v in row.items() if k != "metadata"}, meta=row["metadata"])
        row["hash"] = previous = compute_hash(event)
    chains[-1]["hash"], chains[-1]["seq"] = previous, mine[-1]["seq"]


def _usage(specs: dict[str, dict]) -> int:
    """Usage of the closed period in the rollup table: one row per tenant and day of its last 28 days."""
    from sqlalchemy import insert, select

    from app.extensions import db
    from app.tenancy.models import Tenant
    from app.usage.models import UsageDaily

    rng = random.Random(11)
    days = [(RENEW_AT - timedelta(days=d)).date() for d in range(28, 0, -1)]
    rows, written = [], 0
    for tenant_id, slug in db.session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.slug)):
        spec = specs[slug if slug.startswith("bench-s") else f"bench-s{int(slug.split('-')[1]) % SAMPLES:03d}"]
        rows.extend({"tenant_id": tenant_id, "day": day, "metric": "api_calls",
                     "value": int(spec["daily"] * rng.uniform(0.8, 1.2))} for day in days)
        if len(rows) >= 20_000:
            db.session.execute(insert(UsageDaily), rows)
            written, rows = written + len(rows), []
    if rows:
        db.session.execute(insert(UsageDaily), rows)
        written += len(rows)
    db.session.commit()
    return written


def _analyze() -> None:
    from sqlalchemy import text

    from app.extensions import db

    db.session.execute(text("ANALYZE"))
    db.session.commit()


def _verify_some_chains() -> bool:
    """The copied audit chains verify like the ones the services wrote (a few of each kind)."""
    from sqlalchemy import select

    from app.audit import verification
    from app.extensions import db
    from app.tenancy.models import Tenant

    ids = list(db.session.scalars(select(Tenant.id).order_by(Tenant.slug).limit(3)))
    ids += list(db.session.scalars(select(Tenant.id).order_by(Tenant.slug.desc()).limit(3)))
    return all(verification.verify_chain(tenant_id).ok for tenant_id in ids)


# --- measuring ---------------------------------------------------------------------------------------


def _invoice_outcomes() -> dict[str, int]:
    from sqlalchemy import func, select

    from app.billing.invoice_models import Invoice, InvoiceLine
    from app.extensions import db

    renewals = select(Invoice.status, func.count()).where(Invoice.period_start == RENEW_AT).group_by(Invoice.status)
    out = {f"renewal_{status}": count for status, count in db.session.execute(renewals)}
    kinds = select(InvoiceLine.kind, func.count()).join(Invoice, Invoice.id == InvoiceLine.invoice_id).where(
        Invoice.period_start == RENEW_AT).group_by(InvoiceLine.kind)
    out.update({f"lines_{kind}": count for kind, count in db.session.execute(kinds)})
    out["invoices_total"] = db.session.scalar(select(func.count()).select_from(Invoice))
    return out


def _revenue_page(app) -> tuple[float | None, str]:
    """Median seconds of GET /admin/revenue as staff after the metrics are rebuilt, or None and why not."""
    try:
        from app.billing import metrics
    except ImportError:
        return None, "not built yet"
    if "/admin/revenue" not in {rule.rule for rule in app.url_map.iter_rules()}:
        return None, "not built yet"
    from app import clock
    from bench.staff import staff_client

    with clock.travel(RENEW_AT + timedelta(days=2)):
        metrics.rebuild_all()
        client = staff_client(app)
        times = []
        app.config["PROPAGATE_EXCEPTIONS"] = True  # a failure says why instead of answering 500
        for attempt in range(REVENUE_REQUESTS + 2):
            started = time.perf_counter()
            try:
                response = client.get("/admin/revenue")
            except Exception as exc:  # noqa: BLE001 - reported in the summary, the bench goes on
                return None, f"failed: {type(exc).__name__}: {exc}"[:300]
            took = time.perf_counter() - started
            if response.status_code != 200:
                return None, f"answered {response.status_code}"
            if attempt >= 2:  # two warm-up requests
                times.append(took)
    return statistics.median(times), "ok"


def measure() -> None:
    """One size in this process (BENCH_SIZE, BENCH_PROFILE): set up, time the run twice, time the page."""
    from app import clock, create_app
    from app.billing import run
    from app.extensions import db

    size, profile = int(os.environ["BENCH_SIZE"]), os.environ.get("BENCH_PROFILE") == "1"
    app = create_app()
    out: dict = {"size": size}
    with app.app_context():
        started = time.perf_counter()
        _reset_database()
        _catalogue()
        specs = {}
        samples = []
        for index in range(min(SAMPLES, size)):
            spec = _archetype(index)
            specs[spec["slug"]] = spec
            samples.append(_make_sample(spec))
        _settle_samples()
        out["copies"] = _clone(samples, size)
        out["usage_rows"] = _usage(specs)
        _analyze()
        out["chains_verified"] = _verify_some_chains()
        out["setup_s"] = round(time.perf_counter() - started, 1)
        db.session.remove()
        grace = app.config["BILLING_FINALIZE_GRACE"]
        with clock.travel(RENEW_AT + grace + timedelta(minutes=1)):
            profiler = None
            if profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            started, cpu = time.perf_counter(), time.process_time()
            first = run.run(RENEW_AT.date())
            out["run_s"], out["run_cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
            if profiler is not None:
                import pstats

                profiler.disable()
                order = os.environ.get("BENCH_PROFILE_SORT", "cumulative")
                pstats.Stats(profiler, stream=sys.stderr).sort_stats(order).print_stats(40)
            db.session.remove()
            out.update(_invoice_outcomes())
            started = time.perf_counter()
            second = run.run(RENEW_AT.date())
            out["rerun_s"] = time.perf_counter() - started
            db.session.remove()
        out["first"], out["second"] = first.as_dict(), second.as_dict()
        out["invoices_total_after_rerun"] = _invoice_outcomes()["invoices_total"]
        out["revenue_s"], out["revenue_note"] = _revenue_page(app)
    print(json.dumps(out, default=str))


def _measure(env: dict[str, str], size: int, profile: bool) -> dict:
    env = dict(env, BENCH_SIZE=str(size), BENCH_PROFILE="1" if profile else "0")
    if not os.environ.get("BENCH_DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{Path(env['BENCH_WORK']) / f'billing-{size}.db'}"
    done = subprocess.run([PYTHON, "-c", "from bench.billing import measure; measure()"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {size}-tenant measurement failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _line(result: dict) -> str:
    first = result["first"]
    return (f"{result['size']:>6,} tenants: run {result['run_s']:7.2f} s  {first['invoices_created']:>6,} invoices "
            f"created, {first['finalized']:>6,} finalized  {first['invoices_created'] / result['run_s']:7.1f} "
            f"invoices/s  (paid {result.get('renewal_paid', 0)}, open {result.get('renewal_open', 0)}; "
            f"overage lines {result.get('lines_overage', 0)}, discounts {result.get('lines_discount', 0)}, "
            f"tax lines {result.get('lines_tax', 0)}; failed {len(first['failed'])}; this process's CPU "
            f"{result['run_cpu_s']:.2f} s; setup {result['setup_s']} s)")


def main() -> None:
    from bench.usage_ingest import start_redis

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 tenants instead of 1,000 and 10,000")
    parser.add_argument("--sizes", default=None, help="two sizes, small and large, e.g. 1000,10000")
    parser.add_argument("--profile", action="store_true", help="cProfile the largest size's run (to stderr)")
    options = parser.parse_args()
    small, large = (int(s) for s in options.sizes.split(",")) if options.sizes else \
        (100, 1000) if options.quick else (1000, 10_000)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="tenantry-bench-billing-"))
    processes: list[subprocess.Popen] = []
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT), COOKIE_SECURE="false", LOG_LEVEL="WARNING", BENCH_WORK=str(work))
        env.pop("STRIPE_API_KEY", None)  # the manual provider: collection without network calls
        if os.environ.get("BENCH_DATABASE_URL"):
            env["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
        env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL") or start_redis(work, processes)
        results = {}
        for size in sorted({small, large, REVENUE_BASE}):
            results[size] = _measure(env, size, options.profile and size == large)
            if size in (small, large):
                print(_line(results[size]), flush=True)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    lo, hi = results[small], results[large]
    per_s = hi["first"]["invoices_created"] / hi["run_s"]
    ratio = hi["run_s"] / lo["run_s"]
    cpu_ratio = hi["run_cpu_s"] / lo["run_cpu_s"]
    print(f"time({large:,}) / time({small:,}) = {ratio:.2f} for {large / small:.0f}× the tenants "
          f"(target ≤ {TARGET_RATIO:g}): {'met' if ratio <= TARGET_RATIO else 'NOT met'}; the same in this "
          f"process's CPU time: {cpu_ratio:.2f} (other load on the machine does not count there)")
    print(f"invoices/s at {large:,} tenants: {per_s:.1f} (target ≥ {TARGET_PER_S}): "
          f"{'met' if per_s >= TARGET_PER_S else 'NOT met'}")
    reruns_ok = all(r["second"]["invoices_created"] == 0 and r["second"]["finalized"] == 0
                    and r["invoices_total_after_rerun"] == r["invoices_total"] for r in (lo, hi))
    print(f"second run over the same period: {hi['second']['invoices_created']} invoices created, "
          f"{hi['second']['finalized']} finalized in {hi['rerun_s']:.2f} s at {large:,} tenants "
          f"({lo['second']['invoices_created']} at {small:,})")
    revenue_ratio = None
    base = results[REVENUE_BASE]
    if hi["revenue_s"] is None or base["revenue_s"] is None:
        print(f"revenue page: {hi['revenue_note'] if hi['revenue_s'] is None else base['revenue_note']}")
    else:
        revenue_ratio = hi["revenue_s"] / base["revenue_s"]
        print(f"revenue page: {hi['revenue_s'] * 1000:.1f} ms at {large:,} tenants, {base['revenue_s'] * 1000:.1f} ms "
              f"at {REVENUE_BASE} → ratio {revenue_ratio:.2f} (target ≤ {TARGET_REVENUE_RATIO:g}): "
              f"{'met' if revenue_ratio <= TARGET_REVENUE_RATIO else 'NOT met'}")
    chains = all(r["chains_verified"] for r in results.values())
    assert hi["first"]["invoices_created"] == large and not hi["first"]["failed"], hi["first"]
    assert reruns_ok, "the second run created or finalized invoices"
    print(json.dumps({
        "bench": "billing", "ratio": round(ratio, 3), "invoices_per_s": round(per_s, 1),
        "small": small, "large": large, "run_s_small": round(lo["run_s"], 3), "run_s_large": round(hi["run_s"], 3),
        "invoices_per_s_small": round(lo["first"]["invoices_created"] / lo["run_s"], 1),
        "run_cpu_s_small": round(lo["run_cpu_s"], 3), "run_cpu_s_large": round(hi["run_cpu_s"], 3),
        "cpu_ratio": round(cpu_ratio, 3), "load_average_1m": round(os.getloadavg()[0], 2),
        "target_ratio": TARGET_RATIO, "ratio_met": ratio <= TARGET_RATIO, "target_invoices_per_s": TARGET_PER_S,
        "invoices_per_s_met": per_s >= TARGET_PER_S, "rerun_invoices_created": hi["second"]["invoices_created"],
        "rerun_ok": reruns_ok, "rerun_s_large": round(hi["rerun_s"], 3),
        "revenue_ms_large": None if hi["revenue_s"] is None else round(hi["revenue_s"] * 1000, 1),
        "revenue_ms_base": None if base["revenue_s"] is None else round(base["revenue_s"] * 1000, 1),
        "revenue_base_tenants": REVENUE_BASE,
        "revenue_ratio": None if revenue_ratio is None else round(revenue_ratio, 3),
        "target_revenue_ratio": TARGET_REVENUE_RATIO,
        "revenue_ratio_met": None if revenue_ratio is None else revenue_ratio <= TARGET_REVENUE_RATIO,
        "outcomes_large": {k: v for k, v in hi.items() if k.startswith(("renewal_", "lines_"))},
        "copied_audit_chains_verified": chains, "setup_s_large": hi["setup_s"],
        "database": "postgresql" if os.environ.get("BENCH_DATABASE_URL") else "sqlite",
        "duration_s": round(time.time() - started, 1),
    }))


if __name__ == "__main__":
    main()
