"""Staff's overrides and exemptions reach the request gate at once; window strategies keep their
window semantics; refusals are counted per client IP as well as per key."""

from __future__ import annotations

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.extensions import db
from app.plans import service as plans_service
from app.plans.queries import find_plan
from app.queue import get_redis
from app.ratelimit import policies
from app.ratelimit.gcra import GCRA, Bucket, Plan, Subject
from app.ratelimit.models import RateLimitExemption, RateLimitOverride
from app.security import Actor
from app.usage import rollup
from app.usage.models import UsageDaily


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _tenant_on_one_per_second(make, name="Tight"):
    plans_service.ensure_default_plans(Actor.system("tests"))
    plans_service.update_plan(Actor.system("tests"), find_plan("free").id, {"rate_limit_per_second": 1,
                                                                           "rate_limit_per_minute": 1000})
    tenant = make.tenant(plan="free", name=name)
    key, token = make.api_key(tenant, scopes=["tenant:read"])
    return tenant, key, token


def _statuses(client, token, n):
    return [client.get("/api/v1/tenant", headers=bearer(token)).status_code for _ in range(n)]


def test_staff_raise_a_tenants_limit_and_it_applies_on_the_next_request(ctx, make, client, staff_client):
    tenant, _key, token = _tenant_on_one_per_second(make)
    assert _statuses(client, token, 2) == [200, 429]

    response = staff_client.form("/admin/ratelimits/overrides", {"tenant": tenant.slug, "per_second": "50",
                                                                 "minute_strategy": "gcra", "reason": "launch day"})
    assert response.status_code == 303
    assert _statuses(client, token, 10) == [200] * 10
    ok = client.get("/api/v1/tenant", headers=bearer(token))
    assert '"tenant-second";q=50;w=1' in ok.headers["RateLimit-Policy"]
    event = db.session.query(AuditEvent).filter_by(action="ratelimit.override_set").one()
    assert event.tenant_id == tenant.id and event.changes["per_second"] == [None, 50]
    assert "launch day" in staff_client.get("/admin/ratelimits/").get_data(as_text=True)

    override = db.session.query(RateLimitOverride).one()
    removed = staff_client.form(f"/admin/ratelimits/overrides/{override.id}/remove")
    assert removed.status_code == 303
    assert _statuses(client, token, 3)[-1] == 429  # the plan's one a second again
    assert db.session.query(AuditEvent).filter_by(action="ratelimit.override_removed").count() == 1


def test_an_override_with_nothing_sensible_is_refused_with_reasons(ctx, make, staff_client):
    tenant = make.tenant()
    page = staff_client.form("/admin/ratelimits/overrides", {"tenant": tenant.slug, "per_second": "-3",
                                                             "per_day": "many", "reason": ""})
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert "Between 1 and" in html and "Enter a whole number" in html and "Say why" in html
    unknown = staff_client.form("/admin/ratelimits/overrides", {"tenant": "no-such", "per_second": "5",
                                                                "reason": "x"})
    assert unknown.status_code == 422 and "No tenant has this id or slug" in unknown.get_data(as_text=True)
    assert db.session.query(RateLimitOverride).count() == 0


def test_a_key_override_with_a_daily_fixed_window_cap(ctx, make, client):
    plans_service.ensure_default_plans(Actor.system("tests"))
    tenant = make.tenant(plan="enterprise")
    key, token = make.api_key(tenant, scopes=["tenant:read"])
    _other_key, other_token = make.api_key(tenant, scopes=["tenant:read"])
    policies.set_override(Actor.system("tests"), tenant.id, {"api_key_id": key.id, "per_day": "3",
                                                             "reason": "trial integration"})
    refused = [r for r in (client.get("/api/v1/tenant", headers=bearer(token)) for _ in range(4))
               if r.status_code == 429]
    assert len(refused) == 1
    body = refused[0].get_json()
    assert body["type"].endswith("/rate-limit-exceeded/key-day")
    assert 0 < int(refused[0].headers["Retry-After"]) <= 86400  # until 00:00 UTC
    assert _statuses(client, other_token, 4) == [200] * 4  # the tenant's other key is not capped


def test_window_strategies_keep_window_semantics(ctx):
    gate = GCRA(get_redis())
    subject = Subject("ten_w")
    fixed = Bucket("fixed", "rl:{ten_w}:fixed", 3, 60, "fixed-window")
    sliding = Bucket("sliding", "rl:{ten_w}:sliding", 3, 60, "sliding-window")
    smooth = Bucket("gcra", "rl:{ten_w}:gcra", 3, 60)
    for bucket in (fixed, sliding, smooth):
        outcomes = [gate.run(Plan.build([bucket], subject=subject), "").decision for _ in range(4)]
        assert [d.allowed for d in outcomes] == [True, True, True, False], bucket.strategy
        assert [d.states[0].remaining for d in outcomes[:3]] == [2, 1, 0], bucket.strategy
        refused = outcomes[3]
        # A fixed window frees up when the minute turns; GCRA and the sliding window within it.
        assert 0 < refused.retry_after <= 60, bucket.strategy
        assert refused.violated.policy == bucket.policy


def test_exempt_ip_key_and_tenant_are_never_limited_but_still_metered(ctx, make, client, staff_client):
    tenant, key, token = _tenant_on_one_per_second(make, name="Monitor Co")
    answered = []
    for kind, value in (("ip", "127.0.0.0/8"), ("key", key.id), ("tenant", tenant.slug)):
        response = staff_client.form("/admin/ratelimits/exemptions",
                                     {"kind": kind, "value": value, "exemption_reason": "uptime monitor"})
        assert response.status_code == 303, kind
        answered += _statuses(client, token, 5)
        assert answered[-5:] == [200] * 5, kind
        exempt = client.get("/api/v1/tenant", headers=bearer(token))
        answered.append(exempt.status_code)
        assert "RateLimit" not in exempt.headers
        exemption = db.session.query(RateLimitExemption).one()
        assert staff_client.form(f"/admin/ratelimits/exemptions/{exemption.id}/remove").status_code == 303
        answered += _statuses(client, token, 3)
        assert answered[-1] == 429, kind  # limited again at once
    assert db.session.query(AuditEvent).filter_by(action="ratelimit.exemption_added").count() == 3
    assert db.session.query(AuditEvent).filter_by(action="ratelimit.exemption_removed").count() == 3
    rollup.rollup_all()
    billed = db.session.scalar(select(func.sum(UsageDaily.value)).where(UsageDaily.tenant_id == tenant.id,
                                                                        UsageDaily.metric == "api_calls"))
    assert billed == answered.count(200)  # exempt calls are metered like any other


def test_exemption_validation(ctx, make, staff_client):
    bad = staff_client.form("/admin/ratelimits/exemptions", {"kind": "ip", "value": "300.1.1.1",
                                                              "exemption_reason": ""})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "Say why" in html
    bad_ip = staff_client.form("/admin/ratelimits/exemptions", {"kind": "ip", "value": "300.1.1.1",
                                                                 "exemption_reason": "x"})
    assert "Enter an IP address or a network" in bad_ip.get_data(as_text=True)
    staff_client.form("/admin/ratelimits/exemptions", {"kind": "ip", "value": "10.0.0.1/8", "exemption_reason": "x"})
    again = staff_client.form("/admin/ratelimits/exemptions", {"kind": "ip", "value": "10.0.0.0/8",
                                                               "exemption_reason": "x"})
    assert again.status_code == 409 and "already exempt" in again.get_data(as_text=True)
    assert [e.value for e in db.session.query(RateLimitExemption)] == ["10.0.0.0/8"]
