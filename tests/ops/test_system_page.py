"""/admin/system: the health report, queues, failed jobs (retry, delete; audited), workers, API latency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq.registry import FailedJobRegistry

from app import clock
from app.extensions import db
from app.queue import get_queue
from tests.admin.helpers import audit_events, follow, text
from tests.ops.helpers import age_oldest, alive, fail_a_job


def test_staff_only(client, as_role):
    assert client.get("/admin/system/").status_code in (302, 303)
    assert as_role("owner").get("/admin/system/").status_code == 404


def test_empty_states(staff_client):
    page = text(staff_client.get("/admin/system/"))
    assert 'id="system-health"' in page and "rq:workers" in page
    assert "No worker is running" in page
    assert "No failed jobs" in page
    assert "No API requests in the last hour" in page
    assert "Every queue is empty" in page
    assert 'href="/admin/system/"' in page  # in the staff nav


def test_queues_workers_and_failed_jobs(staff_client, ctx):
    job_id = fail_a_job("low", 7)  # first: the burst worker's clean-up forgets workers registered by hand
    worker = alive("worker-one")
    age_oldest("billing", 90)
    page = text(staff_client.get("/admin/system/"))
    worker.register_death()
    assert 'data-worker="worker-one"' in page
    assert f'data-job="{job_id}"' in page and "boom 7" in page and "tests.ops.helpers.boom" in page
    assert 'data-confirm="Delete failed job' in page
    assert 'data-queue="billing"' in page


def test_retry_puts_the_job_back_and_is_audited(staff_client, ctx):
    job_id = fail_a_job("low")
    response = staff_client.form("/admin/system/jobs", {"do": "retry", "queue": "low", "job_id": job_id})
    assert "is queued again" in text(follow(staff_client, response))
    assert job_id in get_queue("low").get_job_ids()
    assert FailedJobRegistry(queue=get_queue("low")).count == 0
    [event] = audit_events("ops.job.retried")
    assert event.targets[0]["id"] == job_id and event.meta == {"queue": "low"}


def test_delete_removes_the_job_and_is_audited(staff_client, ctx):
    job_id = fail_a_job("default")
    response = staff_client.form("/admin/system/jobs", {"do": "delete", "queue": "default", "job_id": job_id})
    assert response.status_code == 303
    assert FailedJobRegistry(queue=get_queue("default")).count == 0
    from rq.job import Job

    assert not Job.exists(job_id, connection=get_queue("default").connection)
    assert audit_events("ops.job.deleted")[0].targets[0]["id"] == job_id
    again = staff_client.form("/admin/system/jobs", {"do": "delete", "queue": "default", "job_id": job_id})
    assert again.status_code == 404
    assert staff_client.form("/admin/system/jobs", {"do": "retry", "queue": "nope", "job_id": "x"}).status_code == 404


@pytest.fixture
def request_log(make, ctx):
    from app.requestlog.models import RequestLogEntry

    tenant = make.tenant()
    now = clock.now()

    def add(route: str, durations: list[float], method: str = "GET", age: timedelta = timedelta(minutes=5)):
        for i, duration in enumerate(durations):
            db.session.add(RequestLogEntry(tenant_id=tenant.id, at=now - age, method=method, route=route,
                                           path=route, status=200, duration_ms=duration, api_key_id="key_x",
                                           request_id=f"req-{route}-{i}-{age.total_seconds()}"))
        db.session.commit()

    return add


def test_latency_percentiles_per_route_over_the_last_hour(staff_client, request_log):
    from app.ops import system

    request_log("/api/v1/usage", [float(i) for i in range(1, 101)])
    request_log("/api/v1/flags", [10.0, 20.0])
    request_log("/api/v1/usage", [9999.0] * 5, age=timedelta(hours=2))  # outside the hour
    rows = system.api_latency()
    usage, flags = rows
    assert (usage["route"], usage["count"]) == ("/api/v1/usage", 100)
    assert usage["p50"] == pytest.approx(50.5) and usage["p95"] == pytest.approx(95.05)
    assert usage["p99"] == pytest.approx(99.01)
    assert flags["p50"] == pytest.approx(15.0)
    page = text(staff_client.get("/admin/system/"))
    assert 'data-route="GET /api/v1/usage"' in page and "50.5 ms" in page
