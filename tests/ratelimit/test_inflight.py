"""Requests in flight: a tenant's concurrency limit (429) and the service's priority load shedding
(503, low priority first). Other processes' in-flight requests are entries in the real Redis sets."""

from __future__ import annotations

import uuid

from app.plans import service as plans_service
from app.plans.queries import find_plan
from app.queue import get_redis
from app.ratelimit.gcra import SERVICE_INFLIGHT_KEY, Subject
from app.security import Actor


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _others_in_flight(key: str, count: int, age_seconds: float = 0.0) -> list[str]:
    """`count` requests that other processes are serving (started `age_seconds` ago)."""
    redis = get_redis()
    now_us = int(redis.time()[0] * 1_000_000 + redis.time()[1] - age_seconds * 1_000_000)
    ids = [uuid.uuid4().hex for _ in range(count)]
    redis.zadd(key, dict.fromkeys(ids, now_us))
    return ids


def _tenant(make, concurrency: int | None):
    plans_service.ensure_default_plans(Actor.system("tests"))
    plans_service.update_plan(Actor.system("tests"), find_plan("pro").id,
                              {"max_concurrent_requests": concurrency, "rate_limit_per_second": 1000})
    tenant = make.tenant(plan="pro")
    _, token = make.api_key(tenant, scopes=["tenant:read", "usage:read", "usage:write"])
    return tenant, token


def test_a_tenant_at_its_concurrency_limit_is_refused_until_one_finishes(ctx, client, make):
    tenant, token = _tenant(make, concurrency=3)
    key = Subject(tenant.id).inflight_key
    others = _others_in_flight(key, 3)
    refused = client.get("/api/v1/tenant", headers=bearer(token))
    assert refused.status_code == 429
    assert refused.get_json()["type"].endswith("/concurrency-limit-exceeded")
    assert refused.headers["Retry-After"] == "1"
    assert "allows 3 at once" in refused.get_json()["detail"]

    get_redis().zrem(key, others[0])  # one of them finished
    assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 200
    assert get_redis().zcard(key) == 2  # the answered request left the set when its response closed

    _other, other_token = _tenant(make, concurrency=3)
    assert client.get("/api/v1/tenant", headers=bearer(other_token)).status_code == 200  # per tenant


def test_requests_of_a_crashed_process_stop_counting_after_30_seconds(ctx, client, make):
    tenant, token = _tenant(make, concurrency=2)
    _others_in_flight(Subject(tenant.id).inflight_key, 2, age_seconds=31)
    assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 200


def test_a_plan_without_a_concurrency_limit_is_not_limited(ctx, client, make):
    tenant, token = _tenant(make, concurrency=None)
    _others_in_flight(Subject(tenant.id).inflight_key, 500)
    assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 200


def test_load_shedding_turns_away_low_priority_first_and_critical_last(app, ctx, client, make, monkeypatch):
    monkeypatch.setitem(app.config, "LOAD_SHED_MAX_INFLIGHT", 10)
    _tenant_row, token = _tenant(make, concurrency=None)
    headers = bearer(token)
    event = {"events": [{"id": uuid.uuid4().hex, "metric": "nope", "value": 1}]}  # answered 422: no such metric

    def statuses():
        return (client.get("/api/v1/usage/history", headers=headers).status_code,  # low
                client.get("/api/v1/tenant", headers=headers).status_code,  # normal
                client.post("/api/v1/usage/events", json=event, headers=headers).status_code)  # critical

    assert statuses() == (200, 200, 422)
    assert get_redis().zcard(SERVICE_INFLIGHT_KEY) == 0  # every answered request left the set
    others = _others_in_flight(SERVICE_INFLIGHT_KEY, 6)  # 60% of 10
    assert statuses() == (503, 200, 422)
    shed = client.get("/api/v1/usage/history", headers=headers)
    assert shed.get_json()["type"].endswith("/overloaded") and shed.headers["Retry-After"] == "5"
    others += _others_in_flight(SERVICE_INFLIGHT_KEY, 3)  # 90%
    assert statuses() == (503, 503, 422)
    others += _others_in_flight(SERVICE_INFLIGHT_KEY, 1)  # 100%
    assert statuses() == (503, 503, 503)
    get_redis().zrem(SERVICE_INFLIGHT_KEY, *others[:5])
    assert statuses() == (200, 200, 422)


def test_finished_requests_leave_on_the_next_gate_call_without_a_round_trip_of_their_own(ctx, client, make):
    from app.usage.meter import meter

    tenant, token = _tenant(make, concurrency=2)
    key = Subject(tenant.id).inflight_key
    finished = _others_in_flight(key, 2)  # this process served them; their releases wait to ride along
    with meter._lock:
        meter._releases.extend((key, "", request_id) for request_id in finished)
    assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 200  # not refused: 2 left first
    assert get_redis().zcard(key) == 0  # both left in the gate's call; this one left as it finished
    assert meter._releases == []
