"""At-least-once, for real: a webhook worker process killed with SIGKILL mid-run and Redis flushed lose nothing.

500 messages are published; `python worker.py webhooks` (a real subprocess, on the test's database and
Redis) delivers them to a local receiver that takes a few milliseconds per request; it is killed -9 part
way, the Redis database is flushed (every queued job gone), and then the sweeper and a worker run once the
dead worker's leases are over: every message id reaches the receiver, with the same webhook-id (some
twice: the ones sent but not yet recorded when the worker died).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from app import clock
from app.extensions import db
from app.queue import get_redis
from app.webhooks import delivery, outbound
from app.webhooks.outbound_models import WebhookAttempt, WebhookDelivery
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import owner, run_jobs

receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures
ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 500


def _pace(receiver, seconds: float) -> None:
    """Make the receiver take `seconds` per request (so the worker is still busy when it is killed), with
    Nagle off (else each answer waits ~40 ms for a delayed ACK)."""
    base = getattr(receiver.server, "base_handler", receiver.server.RequestHandlerClass)
    receiver.server.base_handler = base

    class Paced(base):
        disable_nagle_algorithm = True

        def do_POST(self):  # noqa: N802 - the http.server name
            time.sleep(seconds)
            super().do_POST()

    receiver.server.RequestHandlerClass = Paced


def _worker(ctx, database, redis_url, log_path: Path) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=database["url"], REDIS_URL=redis_url, SECRET_KEY=ctx.config["SECRET_KEY"],
               WEBHOOKS_ALLOW_HTTP="1", WEBHOOKS_ALLOWED_SUBNETS="127.0.0.0/8", LOG_LEVEL="WARNING",
               PYTHONPATH=str(ROOT))
    if ctx.config.get("WEBHOOK_ENCRYPTION_KEYS"):
        env["WEBHOOK_ENCRYPTION_KEYS"] = ",".join(ctx.config["WEBHOOK_ENCRYPTION_KEYS"])
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "worker.py", "webhooks"], cwd=ROOT, env=env, stdout=log,  # noqa: S603
                                stderr=subprocess.STDOUT)


def test_a_worker_killed_mid_run_and_a_flushed_redis_lose_no_message(webhook_env, make, receiver, database,
                                                                     redis_url, tmp_path):
    tenant = make.tenant()
    outbound.create_endpoint(owner(tenant), tenant.id, {"url": receiver.url})
    _pace(receiver, 0.004)
    ids = [outbound.publish(tenant.id, "member.added", {"n": n})[0].id for n in range(MESSAGES)]
    db.session.remove()  # no transaction of the test stays open while the worker writes

    worker = _worker(webhook_env, database, redis_url, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 30
        while len(receiver.requests) < MESSAGES // 4 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.005)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    received_before = len(receiver.requests)
    assert received_before >= MESSAGES // 4, (tmp_path / "worker.log").read_text()[-3000:]
    assert received_before < MESSAGES, "the worker finished before it was killed: nothing was tested"

    _pace(receiver, 0)
    get_redis().flushdb()  # every job still queued is gone
    time.sleep(0.1)  # requests in flight when the worker died have landed
    with clock.travel(clock.now() + timedelta(minutes=5)):  # the dead worker's leases (75 s) are over
        assert delivery.sweep() > 0
        run_jobs()
        assert delivery.sweep() == 0
    db.session.remove()

    webhook_ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert set(webhook_ids) == set(ids)  # every message arrived; a few maybe twice, always the same id
    assert len(webhook_ids) - len(set(webhook_ids)) <= received_before
    statuses = dict(db.session.execute(select(WebhookDelivery.status, func.count())
                                       .group_by(WebhookDelivery.status)).all())
    assert statuses == {"succeeded": MESSAGES}
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) >= MESSAGES


def test_nothing_is_sent_twice_by_two_workers_racing(webhook_env, make, receiver, database, redis_url, tmp_path):
    """Two real worker processes on the same queue: each delivery is claimed by one of them only."""
    tenant = make.tenant()
    outbound.create_endpoint(owner(tenant), tenant.id, {"url": receiver.url})
    _pace(receiver, 0)
    ids = [outbound.publish(tenant.id, "member.added", {"n": n})[0].id for n in range(200)]
    db.session.remove()
    workers = [_worker(webhook_env, database, redis_url, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        deadline = time.monotonic() + 30
        while len({r.headers["webhook-id"] for r in receiver.requests}) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
    webhook_ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert sorted(webhook_ids) == sorted(ids), (tmp_path / "worker0.log").read_text()[-3000:]
