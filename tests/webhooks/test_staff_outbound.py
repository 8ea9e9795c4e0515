"""Staff see outbound deliveries across tenants on /admin/webhooks: counts, queue depth, troubled
endpoints, the success-rate chart, and deliveries filtered by tenant, event type and status."""

from __future__ import annotations

import pytest

from app.webhooks import outbound
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import owner, run_jobs

receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures


@pytest.fixture
def two_tenants(make, webhook_env, receiver):
    """Tenant A's endpoint answers 200; tenant B's answers 410 Gone (and so gets disabled)."""
    a, b = make.tenant(name="Alpha Ltd"), make.tenant(name="Beta Ltd")
    ok, _ = outbound.create_endpoint(owner(a), a.id, {"url": receiver.url, "description": "alpha"})
    gone, _ = outbound.create_endpoint(owner(b), b.id, {"url": receiver.url.replace("/hook", "/gone")})
    receiver.answer(200)
    receiver.answer(410, times=1)
    outbound.publish(a.id, "member.added", {"n": 1})
    run_jobs()
    outbound.publish(b.id, "tenant.updated", {"n": 2})
    run_jobs()
    return a, b, ok, gone


def test_staff_see_deliveries_counts_and_troubled_endpoints(staff_client, two_tenants):
    _a, _b, ok, gone = two_tenants
    page = staff_client.get("/admin/webhooks/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="outbound-chart"' in html  # attempts in the last 48 hours: the chart is drawn
    assert "Alpha Ltd" in html and "Beta Ltd" in html and "member.added" in html
    troubled = html.split('id="outbound-troubled"')[1].split("</table>")[0]
    assert gone.id in troubled and ok.id not in troubled and "410" in troubled  # disabled by the 410, with why
    stats = html.split('id="outbound-stats"')[1].split("</dl>")[0]
    assert 'data-status="succeeded">1<' in stats


def test_filters_narrow_the_deliveries_in_place(staff_client, two_tenants):
    a = two_tenants[0]
    only_a = staff_client.htmx_get(f"/admin/webhooks/?section=outbound&tenant={a.slug}").get_data(as_text=True)
    assert only_a.lstrip().startswith('<div id="outbound-deliveries">') and "<html" not in only_a
    assert "Alpha Ltd" in only_a and "Beta Ltd" not in only_a
    by_type = staff_client.htmx_get("/admin/webhooks/?section=outbound&event_type=tenant.updated")
    by_type = by_type.get_data(as_text=True)
    assert "Beta Ltd" in by_type and "Alpha Ltd" not in by_type
    succeeded = staff_client.htmx_get("/admin/webhooks/?section=outbound&delivery_status=succeeded")
    assert "Alpha Ltd" in succeeded.get_data(as_text=True) and "Beta Ltd" not in succeeded.get_data(as_text=True)
    bad = staff_client.htmx_get("/admin/webhooks/?section=outbound&tenant=nobody&delivery_status=weird")
    assert bad.status_code == 422
    assert "No tenant has the slug or id" in bad.get_data(as_text=True)
    assert "Status is one of" in bad.get_data(as_text=True)


def test_an_empty_page_says_so(staff_client, webhook_env):
    html = staff_client.get("/admin/webhooks/").get_data(as_text=True)
    assert "No deliveries yet" in html and "Every endpoint is healthy" in html
    assert "No delivery attempts in the last 48 hours" in html
