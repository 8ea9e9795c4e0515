"""Every API call goes to the request log's Redis stream in the meter's flush, and the drain moves
each entry into the database exactly once: run twice, after a run that died before or after its
insert, with duplicate entries, and with entries it must drop."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app import clock
from app.cron import JOBS
from app.extensions import db
from app.queue import get_redis
from app.requestlog import drain, jobs, stream
from app.requestlog.models import RequestLogEntry
from tests.requestlog.helpers import bearer


def _rows(tenant_id: str | None = None) -> list[RequestLogEntry]:
    db.session.expire_all()
    stmt = select(RequestLogEntry).order_by(RequestLogEntry.at, RequestLogEntry.id)
    if tenant_id:
        stmt = stmt.where(RequestLogEntry.tenant_id == tenant_id)
    return list(db.session.scalars(stmt))


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(RequestLogEntry))


def _pending() -> int:
    return get_redis().xpending(stream.STREAM_KEY, drain.GROUP)["pending"]


def _calls(client, world) -> list[str]:
    """Three answered calls of tenant A (200, 422, 403) and one of B; their request ids."""
    a, b = world["a"], world["b"]
    from tests.factories import Factories

    _, narrow = Factories().api_key(a["tenant"], scopes=["tenant:read"])
    responses = [
        client.get("/api/v1/tenant", headers=bearer(a["token"])),
        client.get("/api/v1/members?limit=nonsense", headers=bearer(a["token"])),
        client.get("/api/v1/members", headers=bearer(narrow)),
        client.get("/api/v1/tenant", headers=bearer(b["token"])),
    ]
    assert [r.status_code for r in responses] == [200, 422, 403, 200]
    return [r.headers["X-Request-ID"] for r in responses]


def test_every_api_call_is_appended_to_the_stream_as_it_is_answered(ctx, client, tenant_world):
    request_ids = _calls(client, tenant_world)
    entries = get_redis().xrange(stream.STREAM_KEY)
    assert len(entries) == 4
    parsed = [stream.parse(fields) for _, fields in entries]
    assert [p["request_id"] for p in parsed] == request_ids
    first, invalid, forbidden, other = parsed
    a = tenant_world["a"]
    assert (first["tenant_id"], first["api_key_id"], first["method"], first["route"], first["status"]) == (
        a["tenant"].id, a["key"].id, "GET", "/api/v1/tenant", 200)
    assert (invalid["route"], invalid["path"], invalid["status"]) == ("/api/v1/members", "/api/v1/members", 422)
    assert forbidden["status"] == 403 and forbidden["api_key_id"] != a["key"].id
    assert other["tenant_id"] == tenant_world["b"]["tenant"].id
    assert first["ip"] == "127.0.0.1" and first["duration_ms"] >= 0
    assert abs(first["at"] - clock.now()) < timedelta(minutes=1)


def test_calls_without_a_valid_key_are_not_logged(ctx, client, tenant_world):
    assert client.get("/api/v1/tenant").status_code == 401
    assert client.get("/api/v1/tenant", headers=bearer("tnt_live_nonsense")).status_code == 401
    assert get_redis().xlen(stream.STREAM_KEY) == 0


def test_the_drain_moves_every_entry_once_and_empties_the_stream(ctx, client, tenant_world):
    request_ids = _calls(client, tenant_world)
    result = drain.drain()
    assert (result.read, result.stored, result.dropped) == (4, 4, 0)
    rows = _rows()
    assert sorted(r.request_id for r in rows) == sorted(request_ids)
    a_rows = _rows(tenant_world["a"]["tenant"].id)
    assert [r.status for r in a_rows] == [200, 422, 403]
    assert a_rows[0].at.tzinfo is not None and a_rows[0].api_key_id == tenant_world["a"]["key"].id
    assert get_redis().xlen(stream.STREAM_KEY) == 0 and _pending() == 0

    again = drain.drain()
    assert (again.read, again.stored) == (0, 0)
    assert _count() == 4
    client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))
    assert drain.drain().stored == 1
    assert _count() == 5


def test_a_drain_that_died_after_inserting_but_before_acknowledging_stores_nothing_twice(ctx, client,
                                                                                          tenant_world):
    request_ids = _calls(client, tenant_world)
    redis = get_redis()
    drain.ensure_group(redis)
    # A run reads the batch and commits it, then dies before XACK/XDEL.
    reply = redis.xreadgroup(drain.GROUP, "dead-worker:1", {stream.STREAM_KEY: ">"}, count=1000)
    entries = reply[0][1]
    drain.insert_rows([drain._row(stream.parse(fields)) for _, fields in entries])
    db.session.commit()
    assert _count() == 4 and _pending() == 4
    client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))  # logged meanwhile

    result = drain.drain(claim_idle_ms=0)  # the dead run's entries are idle: claimed and redelivered
    assert result.read == 5 and result.stored == 1
    assert _count() == 5 and set(request_ids) <= {r.request_id for r in _rows()}
    assert redis.xlen(stream.STREAM_KEY) == 0 and _pending() == 0
    assert drain.drain(claim_idle_ms=0).read == 0


def test_a_drain_that_died_before_inserting_loses_nothing(ctx, client, tenant_world):
    request_ids = _calls(client, tenant_world)
    redis = get_redis()
    drain.ensure_group(redis)
    redis.xreadgroup(drain.GROUP, "dead-worker:2", {stream.STREAM_KEY: ">"}, count=2)  # …and dies
    # Entries of a run that may still be working are left alone until they have been idle a while.
    result = drain.drain()
    assert (result.read, result.stored) == (2, 2)
    assert _pending() == 2
    result = drain.drain(claim_idle_ms=0)
    assert (result.read, result.stored) == (2, 2)
    assert sorted(r.request_id for r in _rows()) == sorted(request_ids)
    assert redis.xlen(stream.STREAM_KEY) == 0 and _pending() == 0


def test_an_entry_appended_twice_is_stored_once(ctx, client, tenant_world):
    client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))
    redis = get_redis()
    (_, fields), = redis.xrange(stream.STREAM_KEY)
    redis.xadd(stream.STREAM_KEY, fields)  # a meter flush retried after an ambiguous failure
    drain.drain()
    redis.xadd(stream.STREAM_KEY, fields)  # …or one that arrives after the first copy was drained
    result = drain.drain()
    assert (result.read, result.stored) == (1, 0)
    assert _count() == 1


def test_a_request_id_is_unique_per_tenant_and_time_not_globally(ctx, client, tenant_world):
    """Clients may choose X-Request-ID: reusing one logs every call, and no tenant can shadow another's."""
    for tenant in ("a", "b", "a"):
        response = client.get("/api/v1/tenant", headers={**bearer(tenant_world[tenant]["token"]),
                                                         "X-Request-ID": "client-chosen-id-1"})
        assert response.headers["X-Request-ID"] == "client-chosen-id-1"
    assert drain.drain().stored == 3
    assert len(_rows(tenant_world["a"]["tenant"].id)) == 2
    assert len(_rows(tenant_world["b"]["tenant"].id)) == 1


def test_entries_it_cannot_store_are_dropped_and_acknowledged(ctx, client, tenant_world):
    client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))
    redis = get_redis()
    (_, fields), = redis.xrange(stream.STREAM_KEY)
    gone = {**fields, b"t": b"ten_01jzzzzzzzzzzzzzzzzzzzzz", b"id": b"gone-tenant-1"}
    redis.xadd(stream.STREAM_KEY, gone)  # a tenant that no longer exists
    old = int((clock.now() - timedelta(days=8)).timestamp() * 1000)
    redis.xadd(stream.STREAM_KEY, {**fields, b"at": str(old).encode(), b"id": b"too-old-1"})  # past retention
    redis.xadd(stream.STREAM_KEY, {b"junk": b"1"})  # unreadable
    result = drain.drain()
    assert (result.read, result.stored, result.dropped) == (4, 1, 3)
    assert [r.request_id for r in _rows()] == [fields[b"id"].decode()]
    assert redis.xlen(stream.STREAM_KEY) == 0 and _pending() == 0


def test_finished_consumers_are_forgotten(ctx, client, tenant_world, monkeypatch):
    client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))
    redis = get_redis()
    drain.drain(consumer="old-run:1")
    drain.ensure_group(redis)
    redis.xreadgroup(drain.GROUP, "busy-run:2", {stream.STREAM_KEY: ">"}, count=10)  # nothing left to read
    client.get("/api/v1/tenant", headers=bearer(tenant_world["a"]["token"]))
    redis.xreadgroup(drain.GROUP, "dying-run:3", {stream.STREAM_KEY: ">"}, count=10)  # holds one entry
    monkeypatch.setattr(drain, "CONSUMER_IDLE_MS", -1)
    drain.drain(consumer="new-run:4", claim_idle_ms=60_000)
    names = {c["name"].decode() if isinstance(c["name"], bytes) else c["name"]
             for c in redis.xinfo_consumers(stream.STREAM_KEY, drain.GROUP)}
    assert names == {"dying-run:3", "new-run:4"}  # the one with a pending entry stays until claimed


def test_the_job_drains_and_is_scheduled(ctx, client, tenant_world):
    _calls(client, tenant_world)
    assert jobs.drain_request_log() == {"read": 4, "stored": 4, "dropped": 0}
    scheduled = {job.func: job for job in JOBS}
    assert scheduled[jobs.drain_request_log].interval <= 60
    assert scheduled[jobs.prune_request_log].interval <= 86400 or scheduled[jobs.prune_request_log].cron
