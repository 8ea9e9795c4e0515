"""Repeat offenders are blocked for escalating periods; staff see refusals and blocks and lift them."""

from __future__ import annotations

import time

from app.audit.models import AuditEvent
from app.auth.keycache import epoch_key
from app.extensions import db
from app.plans import service as plans_service
from app.plans.queries import find_plan
from app.ratelimit import blocks
from app.ratelimit.gcra import Subject
from app.ratelimit.models import RateLimitBlock, RateLimitViolation
from app.security import Actor


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_gate_keys_are_the_caches_keys():
    subject = Subject("ten_x", "key_y")
    assert subject.keys()[0] == epoch_key("ten_x")


def _offender(make):
    plans_service.ensure_default_plans(Actor.system("tests"))
    plans_service.update_plan(Actor.system("tests"), find_plan("free").id, {"rate_limit_per_second": 1,
                                                                           "rate_limit_per_minute": 1000})
    tenant = make.tenant(plan="free")
    key, token = make.api_key(tenant, scopes=["tenant:read"])
    return tenant, key, token


def test_a_key_refused_too_often_is_blocked_and_the_block_is_audited(app, ctx, make, client, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_BLOCK_AFTER", 5)
    tenant, key, token = _offender(make)
    statuses = [client.get("/api/v1/tenant", headers=bearer(token)).status_code for _ in range(7)]
    assert statuses[0] == 200 and statuses[1:6] == [429] * 5
    blocked = client.get("/api/v1/tenant", headers=bearer(token))
    assert blocked.status_code == 429
    assert blocked.get_json()["type"].endswith("/rate-limit-exceeded/blocked")
    assert 50 <= int(blocked.headers["Retry-After"]) <= 60
    row = db.session.query(RateLimitBlock).one()
    assert (row.subject_id, row.level, row.tenant_id) == (key.id, 1, tenant.id)
    event = db.session.query(AuditEvent).filter_by(action="ratelimit.blocked").one()
    assert event.severity == "warning" and event.targets[0]["id"] == key.id


def test_staff_see_refusals_and_blocks_and_lift_a_block(app, ctx, make, client, staff_client, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_BLOCK_AFTER", 3)
    tenant, key, token = _offender(make)
    for _ in range(5):
        client.get("/api/v1/tenant", headers=bearer(token))
    assert blocks.flush_violations() == 2  # one row for the key and one for its client IP, this minute
    assert blocks.flush_violations() == 0  # taken once
    rows = {(v.subject_type, v.subject_id): v.count for v in db.session.query(RateLimitViolation)}
    assert rows.keys() == {("key", key.id), ("ip", "127.0.0.1")}
    assert rows[("key", key.id)] == rows[("ip", "127.0.0.1")] >= 3
    page = staff_client.get("/admin/ratelimits/").get_data(as_text=True)
    assert key.id in page and tenant.name in page and "Lift" in page
    block = db.session.query(RateLimitBlock).one()
    response = staff_client.form(f"/admin/ratelimits/blocks/{block.id}/lift")
    assert response.status_code == 303
    time.sleep(1.05)  # the plan allows one request a second
    assert client.get("/api/v1/tenant", headers=bearer(token)).status_code == 200  # the block is gone
    db.session.expire_all()
    assert db.session.get(RateLimitBlock, block.id).lifted_at is not None
    lifted = db.session.query(AuditEvent).filter_by(action="ratelimit.block_lifted").one()
    assert lifted.actor_type == "staff"
    again = staff_client.form(f"/admin/ratelimits/blocks/{block.id}/lift")
    assert again.status_code == 303  # lifting twice says so, changes nothing


def test_blocks_escalate(app, ctx, make, client, monkeypatch):
    from app.queue import get_redis

    monkeypatch.setitem(app.config, "RATELIMIT_BLOCK_AFTER", 2)
    tenant, key, token = _offender(make)
    levels = []
    for _ in range(2):
        for _ in range(4):
            client.get("/api/v1/tenant", headers=bearer(token))
        get_redis().delete(Subject(tenant.id, key.id).block_key)  # the block ran out
        get_redis().delete(f"rl:{{{tenant.id}}}:violations")  # a new minute
    levels = [b.level for b in db.session.query(RateLimitBlock).order_by(RateLimitBlock.id)]
    assert levels == [1, 2]
    ttl = [b.expires_at - b.started_at for b in db.session.query(RateLimitBlock).order_by(RateLimitBlock.id)]
    assert ttl[0].total_seconds() == 60 and ttl[1].total_seconds() == 600
