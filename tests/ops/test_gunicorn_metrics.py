"""/metrics under gunicorn with two workers (prometheus_client multiprocess mode, as scripts/run runs it):
requests answered by either worker add up in one scrape."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a local test server
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _count(text: str, name: str, **labels) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_counts_add_up_across_gunicorn_workers(app, database, redis_url, tmp_path):
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    port = _free_port()
    url = database["url"]
    if database["template"] is not None:  # SQLite: the server gets a copy, so no other process ever holds the
        copy = tmp_path / "gunicorn.db"  # test database's file (it is copied over before every test)
        shutil.copy(database["template"], copy)
        url = f"sqlite:///{copy}"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "COOKIE_SECURE": "false",
           "SECRET_KEY": "gunicorn-metrics-test", "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
           "RATELIMIT_PAGES_PER_IP": "10000 per minute"}
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "gunicorn", "-c", "python:app.ops.gunicorn_conf", "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(base + "/livez")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        time.sleep(1)  # both workers booted
        _, before = _get(base + "/metrics")
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: _get(base + "/readyz")[0], range(60)))
            list(pool.map(lambda _: _get(base + "/nowhere")[0], range(10)))
        _, after = _get(base + "/metrics")
        answered = {"route": "/readyz", "method": "GET", "status": "5xx" if statuses[0] == 503 else "2xx"}
        assert len(set(statuses)) == 1
        total = _count(after, "tenantry_http_requests_total", **answered) - _count(
            before, "tenantry_http_requests_total", **answered)
        assert total == 60
        assert _count(after, "tenantry_http_request_duration_seconds_count", **answered) - _count(
            before, "tenantry_http_request_duration_seconds_count", **answered) == 60
        assert _count(after, "tenantry_http_requests_total", route="unmatched", status="4xx") == 10
        writers = {p.name for p in multiproc.glob("counter_*.db")}
        assert len(writers) == 2, writers  # both workers answered some of them
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
