"""Every API call is counted in Redis and rolled into the usage tables exactly once, even when the
rollup runs twice or dies halfway."""

from __future__ import annotations

from sqlalchemy import func, select

from app import clock
from app.extensions import db
from app.queue import get_redis
from app.usage import rollup
from app.usage.meter import hour_label
from app.usage.models import UsageDaily, UsageHourly


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _hourly(tenant_id: str) -> dict[tuple[str, str], int]:
    rows = db.session.execute(
        select(UsageHourly.route, UsageHourly.status_class, func.sum(UsageHourly.count))
        .where(UsageHourly.tenant_id == tenant_id).group_by(UsageHourly.route, UsageHourly.status_class)
    ).all()
    return {(route, cls): int(total) for route, cls, total in rows}


def _billed(tenant_id: str) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(UsageDaily.value), 0))
                                 .where(UsageDaily.tenant_id == tenant_id, UsageDaily.metric == "api_calls")))


def _calls(client, world, ok=3, forbidden=1):
    a = world["a"]
    for _ in range(ok):
        assert client.get("/api/v1/tenant", headers=bearer(a["token"])).status_code == 200
    from tests.factories import Factories

    _, narrow = Factories().api_key(a["tenant"], scopes=["members:read"])
    for _ in range(forbidden):
        assert client.get("/api/v1/tenant", headers=bearer(narrow)).status_code == 403
    return a["tenant"].id


def test_calls_are_counted_by_route_and_status_class(ctx, client, tenant_world):
    tenant_id = _calls(client, tenant_world)
    assert rollup.rollup_all() == 1
    assert _hourly(tenant_id) == {("GET /api/v1/tenant", "2xx"): 3, ("GET /api/v1/tenant", "4xx"): 1}
    assert _billed(tenant_id) == 3  # only successful calls are billed
    assert _billed(tenant_world["b"]["tenant"].id) == 0


def test_running_the_rollup_again_counts_nothing_twice(ctx, client, tenant_world):
    tenant_id = _calls(client, tenant_world)
    rollup.rollup_all()
    assert rollup.rollup_all() == 0
    assert _billed(tenant_id) == 3
    client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))
    rollup.rollup_all()
    assert _billed(tenant_id) == 4


def test_a_rollup_that_died_after_taking_the_counters_is_completed_by_the_next(ctx, client, tenant_world):
    tenant_id = _calls(client, tenant_world)
    hour = hour_label(clock.now())
    taken = rollup.take(get_redis(), tenant_id, hour)  # …and the job dies here
    assert taken
    client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))  # counted meanwhile
    rollup.rollup_all()
    rollup.rollup_all()  # the new call sat in a fresh hash: taken now
    assert _billed(tenant_id) == 4


def test_a_rollup_that_died_after_writing_is_not_applied_twice(ctx, client, tenant_world):
    tenant_id = _calls(client, tenant_world)
    hour = hour_label(clock.now())
    redis = get_redis()
    assert rollup.apply(tenant_id, hour, rollup.take(redis, tenant_id, hour))  # written, then the job dies
    assert rollup.rollup_all() == 0  # finds the batch already applied and only clears it
    assert _billed(tenant_id) == 3
    assert not redis.exists(rollup.taking_key(tenant_id, hour))


def test_counting_fails_open_when_redis_is_down(ctx, client, tenant_world, monkeypatch, app):
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    response = client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))
    assert response.status_code == 200
