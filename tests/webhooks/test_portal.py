"""Tenant webhook pages: who may see and change endpoints, the form's errors, the secret shown once,
rotate/disable/enable, a test event and a resend reaching a real receiver, and another tenant's ids (404)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.webhooks import outbound
from app.webhooks.outbound_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import owner, run_jobs

receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures
BASE = "/t/tenant-a/webhooks"
SECRET_RE = re.compile(r'id="new-secret">(whsec_[^<]+)<')


@pytest.fixture
def world(webhook_env, tenant_world):
    return tenant_world


def _endpoint(world, receiver, tenant="a") -> WebhookEndpoint:
    t = world[tenant]["tenant"]
    endpoint, _ = outbound.create_endpoint(owner(t), t.id, {"url": receiver.url})
    return endpoint


def _fresh(endpoint_id: str) -> WebhookEndpoint:
    return db.session.get(WebhookEndpoint, endpoint_id, populate_existing=True)


def test_viewers_read_members_write(world, as_role, receiver):
    viewer = as_role("viewer")
    page = viewer.get(BASE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "No webhook endpoints yet" in html and "Ask a member" in html and ">Webhooks</a>" in html
    assert viewer.get(f"{BASE}/new").status_code == 403
    assert viewer.form(BASE, {"url": receiver.url}).status_code == 403
    endpoint = _endpoint(world, receiver)
    assert viewer.get(f"{BASE}/{endpoint.id}").status_code == 200
    assert "Rotate secret" not in viewer.get(f"{BASE}/{endpoint.id}").get_data(as_text=True)
    assert viewer.form(f"{BASE}/{endpoint.id}/disable").status_code == 403
    assert _fresh(endpoint.id).status == "enabled"
    member = as_role("member")
    assert "Add your first endpoint" not in member.get(BASE).get_data(as_text=True)
    assert "Rotate secret" in member.get(f"{BASE}/{endpoint.id}").get_data(as_text=True)


def test_create_refuses_bad_urls_per_field_then_shows_the_secret_once(world, as_role, receiver, monkeypatch,
                                                                      webhook_env):
    client = as_role("member")
    assert "Add your first endpoint" in client.get(BASE).get_data(as_text=True)
    monkeypatch.setitem(webhook_env.config, "WEBHOOKS_ALLOW_HTTP", False)
    refused = client.form(BASE, {"url": "http://example.com/hook"}, htmx=True)
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert 'id="e-url"' in html and 'id="endpoint-form"' in html and "<html" not in html
    monkeypatch.setitem(webhook_env.config, "WEBHOOKS_ALLOW_HTTP", True)
    private = client.form(BASE, {"url": "http://10.0.0.5/hook", "rate_limit": "many"})
    assert private.status_code == 422
    assert 'id="e-url"' in private.get_data(as_text=True) or 'id="e-rate_limit"' in private.get_data(as_text=True)
    private = client.form(BASE, {"url": "http://10.0.0.5/hook"})
    assert private.status_code == 422 and 'id="e-url"' in private.get_data(as_text=True)
    assert db.session.scalar(select(WebhookEndpoint)) is None

    created = client.form(BASE, {"url": receiver.url, "description": "orders", "event_types": ["member.added"],
                                 "rate_limit": "5"})
    assert created.status_code == 201
    secret = SECRET_RE.search(created.get_data(as_text=True)).group(1)
    endpoint = db.session.scalar(select(WebhookEndpoint))
    assert endpoint.event_types == ["member.added"] and endpoint.rate_limit == 5
    assert outbound.signing_secrets(endpoint) == [secret]
    listing = client.get(BASE).get_data(as_text=True)
    assert receiver.url in listing and secret not in listing
    assert secret not in client.get(f"{BASE}/{endpoint.id}").get_data(as_text=True)


def test_edit_rotate_disable_enable(world, as_role, receiver):
    client = as_role("admin")
    endpoint = _endpoint(world, receiver)
    url = f"{BASE}/{endpoint.id}"
    assert client.get(f"{url}/edit").status_code == 200
    bad = client.form(f"{url}/edit", {"url": receiver.url, "rate_limit": "0"})
    assert bad.status_code == 422 and 'id="e-rate_limit"' in bad.get_data(as_text=True)
    saved = client.form(f"{url}/edit", {"url": receiver.url, "description": "billing"})
    assert saved.status_code == 303 and _fresh(endpoint.id).description == "billing"

    old = outbound.signing_secrets(_fresh(endpoint.id))
    rotated = client.form(f"{url}/rotate")
    assert rotated.status_code == 200
    new_secret = SECRET_RE.search(rotated.get_data(as_text=True)).group(1)
    assert outbound.signing_secrets(_fresh(endpoint.id)) == [new_secret, old[0]]

    assert client.form(f"{url}/disable").status_code == 303
    endpoint = _fresh(endpoint.id)
    assert endpoint.status == "disabled" and "Disabled by" in endpoint.disabled_reason
    assert endpoint.disabled_reason in client.get(url).get_data(as_text=True)
    assert client.form(f"{url}/enable").status_code == 303
    assert _fresh(endpoint.id).status == "enabled"


def test_a_test_event_reaches_the_receiver_and_its_attempt_is_shown(world, as_role, receiver):
    client = as_role("member")
    endpoint = _endpoint(world, receiver)
    receiver.answer(200, body=b'{"thanks": "received"}')
    assert client.form(f"{BASE}/{endpoint.id}/test").status_code == 303
    run_jobs()
    [received] = receiver.requests
    assert b'"webhook.test"' in received.body
    html = client.get(f"{BASE}/{endpoint.id}").get_data(as_text=True)
    assert "webhook.test" in html and "HTTP 200" in html and "received" in html and received.headers[
        "webhook-id"] in html


def test_resend_and_recover_a_dead_delivery(world, as_role, receiver, monkeypatch, webhook_env):
    monkeypatch.setitem(webhook_env.config, "WEBHOOK_RETRY_SCHEDULE", [])
    client = as_role("member")
    tenant = world["a"]["tenant"]
    endpoint = _endpoint(world, receiver)
    receiver.answer(500, body=b"boom", times=2)
    message, _ = outbound.publish(tenant.id, "member.added", {"n": 1})
    run_jobs()
    detail = client.get(f"{BASE}/{endpoint.id}?status=dead").get_data(as_text=True)
    assert "HTTP 500" in detail and "boom" in detail and "Resend" in detail
    assert client.form(f"{BASE}/{endpoint.id}/messages/{message.id}/resend").status_code == 303
    run_jobs()  # fails again: dead again
    assert [r.headers["webhook-id"] for r in receiver.requests] == [message.id, message.id]
    assert client.form(f"{BASE}/{endpoint.id}/recover", {"since": "2001-01-01T00:00"}).status_code == 422
    assert client.form(f"{BASE}/{endpoint.id}/recover", {"since": ""}).status_code == 303
    queued = client.get(f"{BASE}/{endpoint.id}").get_data(as_text=True)
    assert 'id="recovery" data-status="queued"' in queued and "every 1s" in queued  # polls while it runs
    run_jobs()
    assert len(receiver.requests) == 3
    from app.webhooks.outbound_models import WebhookRecovery

    recovery_id = db.session.scalar(select(WebhookRecovery.id))
    panel = client.get(f"{BASE}/{endpoint.id}/recoveries/{recovery_id}", headers={"HX-Request": "true"})
    text = panel.get_data(as_text=True)
    assert panel.status_code == 200 and 'data-status="succeeded"' in text and "every 1s" not in text
    assert ">1</strong> of 1 queued again" in text
    assert db.session.scalar(select(WebhookDelivery).execution_options(populate_existing=True)).status == \
        "succeeded"
    assert len(db.session.scalars(select(WebhookAttempt)).all()) == 3


def test_deliveries_are_paged(world, as_role, receiver):
    client = as_role("viewer")
    tenant = world["a"]["tenant"]
    endpoint = _endpoint(world, receiver)
    for n in range(25):
        outbound.publish(tenant.id, "member.added", {"n": n})
    first = client.get(f"{BASE}/{endpoint.id}").get_data(as_text=True)
    assert first.count('<tr id="delivery-') == 20 and "Page 1 of 2" in first
    second = client.get(f"{BASE}/{endpoint.id}?page=2").get_data(as_text=True)
    assert second.count('<tr id="delivery-') == 5


def test_another_tenants_endpoint_and_messages_are_404(world, as_role, receiver):
    b_endpoint = _endpoint(world, receiver, tenant="b")
    b_message, _ = outbound.publish(world["b"]["tenant"].id, "member.added", {})
    client = as_role("owner")
    assert client.get(f"{BASE}/{b_endpoint.id}").status_code == 404
    assert client.get(f"{BASE}/{b_endpoint.id}/edit").status_code == 404
    for action in ("disable", "rotate", "test", "recover", "purge", f"messages/{b_message.id}/resend"):
        assert client.form(f"{BASE}/{b_endpoint.id}/{action}").status_code == 404, action
    assert client.get(f"/t/tenant-b/webhooks/{b_endpoint.id}").status_code == 404
    assert _fresh(b_endpoint.id).status == "enabled"


def test_dead_letters_are_purged_after_confirmation_and_only_by_writers(world, as_role, receiver, monkeypatch,
                                                                        webhook_env):
    monkeypatch.setitem(webhook_env.config, "WEBHOOK_RETRY_SCHEDULE", [])
    tenant = world["a"]["tenant"]
    endpoint = _endpoint(world, receiver)
    receiver.answer(500, times=2)
    for n in range(2):
        outbound.publish(tenant.id, "member.added", {"n": n})
    run_jobs()
    viewer = as_role("viewer")
    assert "Purge dead letters" not in viewer.get(f"{BASE}/{endpoint.id}").get_data(as_text=True)
    assert viewer.form(f"{BASE}/{endpoint.id}/purge").status_code == 403
    client = as_role("member")
    page = client.get(f"{BASE}/{endpoint.id}").get_data(as_text=True)
    assert "2 dead deliveries" in page and 'data-confirm="Discard the 2 dead deliveries' in page
    assert client.form(f"{BASE}/{endpoint.id}/purge").status_code == 303
    after = client.get(f"{BASE}/{endpoint.id}").get_data(as_text=True)
    assert "Purge dead letters" not in after and after.count('<tr id="delivery-') == 0


def test_the_webhooks_page_charts_the_tenants_own_attempts(world, as_role, receiver):
    client = as_role("viewer")
    empty = client.get(BASE).get_data(as_text=True)
    assert 'id="webhook-chart"' not in empty
    endpoint = _endpoint(world, receiver)
    assert "No delivery attempts in the last 48 hours" in client.get(BASE).get_data(as_text=True)
    outbound.publish(world["a"]["tenant"].id, "member.added", {"n": 1})
    b_endpoint = _endpoint(world, receiver, tenant="b")
    outbound.publish(world["b"]["tenant"].id, "member.added", {"n": 2})
    outbound.publish(world["b"]["tenant"].id, "member.added", {"n": 3})
    run_jobs()
    import html
    import json
    import re

    page = client.get(BASE).get_data(as_text=True)
    figure = json.loads(html.unescape(re.search(r"id=\"webhook-chart\" data-figure='([^']*)'", page).group(1)))
    succeeded = next(trace for trace in figure["data"] if trace["name"] == "succeeded")
    assert sum(succeeded["y"]) == 1  # tenant A's one attempt, not B's two
    assert endpoint.id and b_endpoint.id
