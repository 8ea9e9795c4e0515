"""/metrics: HTTP requests by route template, webhook deliveries, billing runs, audit verification, and the
gauges read at scrape time (queue depths, endpoints per circuit state)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.helpers import age_oldest
from tests.webhooks import outbound_helpers

receiver, webhook_env = outbound_helpers.receiver, outbound_helpers.webhook_env  # fixtures


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    out = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_template_never_the_raw_path(client, make):
    before = scrape(client)
    for slug in ("no-such-one", "another-one"):
        client.get(f"/t/{slug}/")
    client.get("/definitely/not/a/route")
    client.get("/livez")
    after = scrape(client)
    template = {"route": "/t/<slug>/", "method": "GET", "status": "3xx"}
    assert not any("no-such-one" in str(key) for key in after)
    key = "tenantry_http_requests_total"
    assert value(after, key, **template) - value(before, key, **template) == 2
    unmatched = {"route": "unmatched", "method": "GET", "status": "4xx"}
    assert value(after, key, **unmatched) - value(before, key, **unmatched) == 1
    livez = {"route": "/livez", "method": "GET", "status": "2xx"}
    assert value(after, key, **livez) - value(before, key, **livez) == 1
    hist = "tenantry_http_request_duration_seconds_count"
    assert value(after, hist, **livez) - value(before, hist, **livez) == 1
    assert value(after, "tenantry_http_request_duration_seconds_bucket", le="10.0", **livez) >= 1


def test_queue_depths_are_read_at_scrape_time(client, ctx):
    age_oldest("billing", 30)
    age_oldest("billing", 10)
    samples = scrape(client)
    assert value(samples, "tenantry_rq_queue_depth", queue="billing") == 2
    assert value(samples, "tenantry_rq_queue_depth", queue="webhooks") == 0
    assert value(samples, "tenantry_rq_oldest_job_age_seconds", queue="billing") >= 29


@pytest.mark.usefixtures("webhook_env")
def test_endpoints_are_counted_per_circuit_state(client, make, receiver):
    from app.extensions import db
    from app.webhooks import outbound
    from tests.webhooks.outbound_helpers import owner

    tenant = make.tenant()
    for state in ("closed", "closed", "open"):
        endpoint, _ = outbound.create_endpoint(owner(tenant), tenant.id, {"url": receiver.url})
        endpoint.circuit_state = state
    db.session.commit()
    samples = scrape(client)
    assert value(samples, "tenantry_webhook_endpoints_circuit", state="closed") == 2
    assert value(samples, "tenantry_webhook_endpoints_circuit", state="open") == 1
    assert value(samples, "tenantry_webhook_endpoints_circuit", state="half_open") == 0


def test_billing_runs_and_audit_verification_are_counted(client, ctx):
    from app.billing import jobs as billing_jobs

    before = scrape(client)
    billing_jobs.billing_run()
    from app.ops import metrics

    metrics.record_billing_run(3, 1)
    after = scrape(client)
    assert value(after, "tenantry_billing_invoices_created_total") - value(
        before, "tenantry_billing_invoices_created_total") == 3
    failures = "tenantry_billing_run_failures_total"
    assert value(after, failures) - value(before, failures) == 1
    assert ("tenantry_audit_verify_failures_total", ()) in after


@pytest.mark.usefixtures("webhook_env")
def test_webhook_deliveries_are_counted_by_outcome_with_their_duration(client, make, receiver):
    from app.webhooks import outbound
    from tests.webhooks.outbound_helpers import owner, run_jobs

    tenant = make.tenant()
    outbound.create_endpoint(owner(tenant), tenant.id, {"url": receiver.url})
    before = scrape(client)
    receiver.answer(500)
    outbound.publish(tenant.id, "member.added", {"n": 1})
    outbound.publish(tenant.id, "member.added", {"n": 2})
    run_jobs()
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("tenantry_webhook_deliveries_total", outcome="succeeded") == 1
    assert delta("tenantry_webhook_deliveries_total", outcome="failed") == 1
    assert delta("tenantry_webhook_delivery_duration_seconds_count") == 2

