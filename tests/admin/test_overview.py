"""The staff overview's figures: API calls this month and today, the busiest tenants, tenants near their
quota, usage jumps (today above 3x the 14-day median, with a floor), webhook success and dead letters with
a real receiver, past-due invoices, queues and workers; the snapshot is kept in Redis and refreshed on
demand, each figure links to its page."""

from __future__ import annotations

import json
from datetime import timedelta

from app import clock
from app.console import overview
from app.extensions import db
from app.queue import get_redis
from app.tenancy import service as tenancy_service
from app.usage.models import UsageDaily
from tests.admin.helpers import text
from tests.webhooks import outbound_helpers as helpers

receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures


def _usage(tenant, days_ago: int, value: int) -> None:
    db.session.add(UsageDaily(tenant_id=tenant.id, day=clock.now().date() - timedelta(days=days_ago),
                              metric="api_calls", value=value))


def test_usage_figures_top_near_quota_and_jumps(ctx, make):
    today = clock.now().date()
    steady = make.tenant(slug="steady", plan="pro")
    jumpy = make.tenant(slug="jumpy", plan="pro")
    small = make.tenant(slug="small-jump", plan="pro")
    free = make.tenant(slug="nearly-out", plan="free")  # 1,000 calls included
    gone = make.tenant(slug="gone", plan="pro")
    for days_ago in range(1, 15):
        _usage(steady, days_ago, 1000)
        _usage(jumpy, days_ago, 100)
    _usage(steady, 0, 2500)  # 2.5x: not a jump
    _usage(jumpy, 0, 500)  # 5x the median: a jump
    _usage(small, 0, 50)  # above 3 x 0, but under the 100-call floor
    _usage(free, 0, 850)
    _usage(gone, 0, 99_999)
    tenancy_service.set_status(make.system, gone.id, "closed", "left")
    db.session.commit()

    snap = overview.compute()
    earlier = sum(1 for days_ago in range(1, 15) if (today - timedelta(days=days_ago)).month == today.month)
    expected_month = 2500 + 1000 * earlier + 500 + 100 * earlier + 50 + 850
    assert snap["calls_today"] == 2500 + 500 + 50 + 850
    assert snap["calls_month"] == expected_month
    assert [row["slug"] for row in snap["top_usage"]] == ["steady", "nearly-out", "jumpy", "small-jump"] \
        if earlier == 0 else [row["slug"] for row in snap["top_usage"]][:2] == ["steady", "jumpy"]
    assert "gone" not in [row["slug"] for row in snap["top_usage"]]
    assert [(r["slug"], r["percent"]) for r in snap["near_quota"]] == [("nearly-out", 85)]
    # No usage before today counts too (median 0: listed first, without a factor).
    assert [(r["slug"], r["median"], r["factor"]) for r in snap["jumps"]] == [("nearly-out", 0, None),
                                                                             ("jumpy", 100, 5.0)]
    assert snap["tenants_by_status"]["closed"] == 1 and snap["tenants_total"] == 5


def test_the_snapshot_is_kept_and_refreshed_on_demand(staff_client, make):
    make.tenant(slug="first")
    page = text(staff_client.get("/admin/"))
    assert 'data-status="active">1<' in page
    stored = json.loads(get_redis().get(overview.SNAPSHOT_KEY))
    assert stored["tenants_total"] == 1
    make.tenant(slug="second")
    assert 'data-status="active">1<' in text(staff_client.get("/admin/"))  # the snapshot, not a recount
    assert staff_client.form("/admin/overview/refresh", {}).status_code == 303
    assert 'data-status="active">2<' in text(staff_client.get("/admin/"))


def test_webhook_success_rate_dead_letters_and_failing_endpoints(staff_client, webhook_env, receiver, make):
    from app.webhooks import outbound
    from app.webhooks.outbound_models import WebhookDelivery, WebhookEndpoint

    tenant = make.tenant(slug="hooks")
    endpoint = outbound.create_endpoint(helpers.owner(tenant), tenant.id, {"url": receiver.url})[0]
    receiver.default = (500, {}, b"down")
    for n in range(3):
        outbound.publish(tenant.id, "member.added", {"n": n})
    helpers.run_jobs()
    receiver.default = (200, {}, b"ok")
    outbound.publish(tenant.id, "member.added", {"n": 9})
    helpers.run_jobs()
    failed = db.session.query(WebhookDelivery.id).filter(WebhookDelivery.status == "failed").limit(1).scalar()
    db.session.query(WebhookDelivery).filter_by(id=failed).update({"status": "dead"}, synchronize_session=False)
    db.session.query(WebhookEndpoint).filter_by(id=endpoint.id).update({"circuit_state": "open"})
    db.session.commit()

    snap = overview.refresh()
    assert (snap["attempts_24h"], snap["succeeded_24h"], snap["success_rate_24h"]) == (4, 1, 25.0)
    assert snap["dead_letters"] == 1 and snap["failing_endpoints_count"] == 1
    page = text(staff_client.get("/admin/"))
    assert "25.0%" in page and receiver.url[:40] in page
    assert 'href="/admin/webhooks/?delivery_status=dead#outbound"' in page


def test_queues_workers_and_links(staff_client, make):
    from app.queue import get_queue

    get_queue("low").enqueue("app.console.jobs.refresh_overview")
    page = text(staff_client.get("/admin/"))
    assert 'data-queue="low"><td>low</td><td>1</td>' in page
    assert "No worker is running" in page
    for url in ("/admin/revenue", "/admin/usage/", "/admin/webhooks/", "/admin/audit/", "/admin/tenants/"):
        assert f'href="{url}' in page
    assert "No API calls this month yet" in page and "No paying tenants this month yet" in page
