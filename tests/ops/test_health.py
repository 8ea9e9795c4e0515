"""/readyz: the full report in application/health+json for staff or the health token, the status alone for
anyone else, thresholds from config, and 503 only on fail."""

from __future__ import annotations

import pytest

from tests.ops.helpers import age_oldest, alive, beat


@pytest.fixture
def healthy(ctx):
    worker = alive()
    yield worker
    worker.register_death()


def _checks(body: dict) -> dict:
    return body["checks"]


def test_anonymous_callers_get_the_status_only(client, healthy):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.mimetype == "application/health+json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {"status": "pass"}


def test_staff_see_every_check(staff_client, healthy):
    body = staff_client.get("/readyz").get_json()
    assert body["status"] == "pass"
    checks = _checks(body)
    assert set(checks) == {"database:responseTime", "redis:responseTime", "rq:queueDepth", "rq:oldestJobAge",
                           "rq:workers", "scheduler:heartbeat", "disk:freeSpace"}
    assert checks["database:responseTime"][0]["observedUnit"] == "ms"
    assert {c["componentId"] for c in checks["rq:queueDepth"]} == {"webhooks", "billing", "default", "low"}
    assert checks["rq:workers"][0]["observedValue"] == 1
    assert checks["scheduler:heartbeat"][0]["observedValue"] < 5
    assert 0 < checks["disk:freeSpace"][0]["observedValue"] <= 100
    assert all(entry["status"] == "pass" and entry["time"] for entries in checks.values() for entry in entries)


def test_the_health_token_opens_the_details_and_a_wrong_one_does_not(app, client, healthy, monkeypatch):
    monkeypatch.setitem(app.config, "HEALTH_TOKEN", "s3cret-health-token")
    good = client.get("/readyz", headers={"Authorization": "Bearer s3cret-health-token"}).get_json()
    assert "checks" in good
    bad = client.get("/readyz", headers={"Authorization": "Bearer s3cret-health-tokeN"}).get_json()
    assert bad == {"status": "pass"}
    monkeypatch.setitem(app.config, "HEALTH_TOKEN", None)
    assert client.get("/readyz", headers={"Authorization": "Bearer "}).get_json() == {"status": "pass"}


def test_no_worker_fails_with_503(client, staff_client, ctx):
    beat(__import__("time").time())
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json() == {"status": "fail"}
    body = staff_client.get("/readyz").get_json()
    assert body["checks"]["rq:workers"][0]["status"] == "fail"
    assert "No RQ worker" in body["checks"]["rq:workers"][0]["output"]


def test_an_old_job_warns_then_fails(staff_client, healthy):
    age_oldest("billing", 120)
    response = staff_client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "warn"
    [billing] = [c for c in body["checks"]["rq:oldestJobAge"] if c["componentId"] == "billing"]
    assert billing["status"] == "warn" and 119 <= billing["observedValue"] < 200
    [depth] = [c for c in body["checks"]["rq:queueDepth"] if c["componentId"] == "billing"]
    assert depth["observedValue"] == 1
    age_oldest("low", 400)
    response = staff_client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["status"] == "fail"


def test_a_stale_scheduler_heartbeat_fails(staff_client, healthy):
    import time

    beat(time.time() - 200)
    body = staff_client.get("/readyz").get_json()
    assert body["status"] == "fail"
    assert body["checks"]["scheduler:heartbeat"][0]["status"] == "fail"


def test_disk_thresholds_come_from_config(app, staff_client, healthy, monkeypatch):
    monkeypatch.setitem(app.config, "HEALTH_DISK_WARN_PERCENT", 100.1)
    body = staff_client.get("/readyz").get_json()
    assert body["status"] == "warn" and body["checks"]["disk:freeSpace"][0]["status"] == "warn"
    monkeypatch.setitem(app.config, "HEALTH_DISK_FAIL_PERCENT", 100.1)
    assert staff_client.get("/readyz").status_code == 503


def test_redis_down_fails_the_redis_checks(app, staff_client, healthy, monkeypatch):
    from app.queue import _clients

    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")
    try:
        response = staff_client.get("/readyz")
    finally:
        _clients.pop("redis://127.0.0.1:1/0", None)
    body = response.get_json()
    assert response.status_code == 503
    assert body["checks"]["redis:responseTime"][0]["status"] == "fail"
    assert body["checks"]["rq:workers"][0]["output"].startswith("Redis")
    assert body["checks"]["database:responseTime"][0]["status"] == "pass"


def test_livez_checks_nothing(client):
    assert client.get("/livez").get_json() == {"status": "pass"}
