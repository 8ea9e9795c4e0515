"""The webhooks API end to end: an API client registers an endpoint, publishes events, and sees each
delivery attempt; signatures verify with the independent `standardwebhooks` package."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from app.plans import service as plans_service
from app.plans.queries import find_plan
from app.security import Actor
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import run_jobs

receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures
WRITE = ["webhooks:read", "webhooks:write", "events:write"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(make, webhook_env):
    plans_service.ensure_default_plans(Actor.system("tests"))
    tenant = make.tenant(plan="pro")
    _, token = make.api_key(tenant, scopes=WRITE)
    return tenant, bearer(token)


def _endpoint(client, headers, url, **fields):
    response = client.post("/api/v1/webhooks/endpoints", json={"url": url, **fields}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _verify(secret: str, received) -> dict:
    return Webhook(secret).verify(received.body, received.headers)


def test_register_publish_and_follow_the_attempts(client, api, receiver):
    _tenant, headers = api
    created = _endpoint(client, headers, receiver.url, description="orders service",
                        event_types=["member.added"])
    assert created["secret"].startswith("whsec_") and created["status"] == "enabled"
    listed = client.get("/api/v1/webhooks/endpoints", headers=headers).get_json()
    assert [e["id"] for e in listed["data"]] == [created["id"]] and "secret" not in listed["data"][0]

    published = client.post("/api/v1/events", headers=headers, json={"events": [
        {"type": "member.added", "payload": {"email": "ada@example.com"}, "idempotency_key": "m-1"},
        {"type": "tenant.updated", "payload": {"name": "New"}},  # not subscribed: nothing sent
    ]})
    assert published.status_code == 202 and published.get_json()["created"] == 2
    message_id = published.get_json()["data"][0]["id"]
    run_jobs()
    assert len(receiver.requests) == 1
    received = receiver.requests[0]
    assert received.headers["webhook-id"] == message_id
    body = _verify(created["secret"], received)
    assert body["type"] == "member.added" and body["data"] == {"email": "ada@example.com"}

    again = client.post("/api/v1/events", headers=headers, json={"events": [
        {"type": "member.added", "payload": {"email": "ada@example.com"}, "idempotency_key": "m-1"}]})
    assert again.get_json()["created"] == 0 and again.get_json()["data"][0]["id"] == message_id

    events = client.get("/api/v1/events?type=member.added", headers=headers).get_json()
    assert [e["id"] for e in events["data"]] == [message_id]
    attempts = client.get(f"/api/v1/events/{message_id}/attempts", headers=headers).get_json()["data"]
    assert [(a["status"], a["http_status"], a["endpoint_id"]) for a in attempts] == [("succeeded", 200,
                                                                                      created["id"])]
    twice = client.post("/api/v1/events", headers=headers, json={"events": [
        {"type": "member.added", "payload": {"n": 2}, "idempotency_key": "m-2"},
        {"type": "member.added", "payload": {"n": 2}, "idempotency_key": "m-2"}]}).get_json()
    assert twice["created"] == 1 and twice["data"][0]["id"] == twice["data"][1]["id"]  # one message per key


def test_bad_input_is_refused_with_reasons_and_nothing_is_published(client, api, receiver):
    _tenant, headers = api
    blocked = client.post("/api/v1/webhooks/endpoints", json={"url": "http://169.254.169.254/latest"},
                          headers=headers)
    assert blocked.status_code == 422
    assert any(e["field"] == "url" for e in blocked.get_json()["errors"])
    _endpoint(client, headers, receiver.url)
    batch = client.post("/api/v1/events", headers=headers, json={"events": [
        {"type": "member.added", "payload": {}}, {"type": "no.such_type", "payload": {}}]})
    assert batch.status_code == 422
    assert [e["field"] for e in batch.get_json()["errors"]] == ["events[1].event_type"]
    assert client.get("/api/v1/events", headers=headers).get_json()["data"] == []
    too_many = client.post("/api/v1/events", headers=headers,
                           json={"events": [{"type": "member.added", "payload": {}}] * 101})
    assert too_many.status_code == 422
    # a NUL character cannot be stored (PostgreSQL refuses it): a 422 naming the field, never a 500
    nul = client.post("/api/v1/events", headers=headers,
                      json={"events": [{"type": "member.added", "payload": {"note": "a\u0000b"}}]})
    assert nul.status_code == 422 and [e["field"] for e in nul.get_json()["errors"]] == ["events[0].payload"]
    nul_key = client.post("/api/v1/events", headers=headers,
                          json={"events": [{"type": "member.added", "payload": {"a\u0000": 1}}]})
    assert nul_key.status_code == 422
    described = client.post("/api/v1/webhooks/endpoints", headers=headers,
                            json={"url": receiver.url, "description": "orders\u0000"})
    assert described.status_code == 422 and any(e["field"] == "description" for e in described.get_json()["errors"])
    assert client.get("/api/v1/events", headers=headers).get_json()["data"] == []


def test_rotation_signs_with_both_secrets_for_a_day(client, api, receiver):
    _tenant, headers = api
    created = _endpoint(client, headers, receiver.url)
    rotated = client.post(f"/api/v1/webhooks/endpoints/{created['id']}/rotate-secret", headers=headers)
    assert rotated.status_code == 200
    new = rotated.get_json()["secret"]
    assert new != created["secret"] and rotated.get_json()["previous_valid_until"]
    client.post("/api/v1/events", headers=headers, json={"events": [{"type": "member.added", "payload": {"n": 1}}]})
    run_jobs()
    received = receiver.requests[-1]
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    assert _verify(new, received)["data"] == _verify(created["secret"], received)["data"] == {"n": 1}


def test_a_disabled_endpoint_receives_nothing_until_enabled(client, api, receiver):
    _tenant, headers = api
    created = _endpoint(client, headers, receiver.url)
    off = client.patch(f"/api/v1/webhooks/endpoints/{created['id']}", json={"status": "disabled"}, headers=headers)
    assert off.status_code == 200 and off.get_json()["status"] == "disabled"
    client.post("/api/v1/events", headers=headers, json={"events": [{"type": "member.added", "payload": {}}]})
    run_jobs()
    assert receiver.requests == []
    on = client.patch(f"/api/v1/webhooks/endpoints/{created['id']}",
                      json={"status": "enabled", "description": "back"}, headers=headers)
    assert on.get_json()["status"] == "enabled" and on.get_json()["description"] == "back"


def test_the_plan_caps_endpoints(client, api, receiver):
    _tenant, headers = api
    plans_service.update_plan(Actor.system("tests"), find_plan("pro").id, {"max_webhook_endpoints": 1})
    _endpoint(client, headers, receiver.url)
    second = client.post("/api/v1/webhooks/endpoints", json={"url": receiver.url}, headers=headers)
    assert second.status_code == 409 and "allows 1 webhook endpoint" in second.get_json()["detail"]


def test_tenants_and_scopes_are_kept_apart(client, api, make, receiver):
    _tenant, headers = api
    created = _endpoint(client, headers, receiver.url)
    published = client.post("/api/v1/events", headers=headers,
                            json={"events": [{"type": "member.added", "payload": {}}]}).get_json()
    other = make.tenant(plan="pro")
    _, other_token = make.api_key(other, scopes=WRITE)
    assert client.get(f"/api/v1/webhooks/endpoints/{created['id']}", headers=bearer(other_token)).status_code == 404
    message_id = published["data"][0]["id"]
    assert client.get(f"/api/v1/events/{message_id}/attempts", headers=bearer(other_token)).status_code == 404
    assert client.get("/api/v1/events", headers=bearer(other_token)).get_json()["data"] == []
    _, reader = make.api_key(other, scopes=["webhooks:read"])
    refused = client.post("/api/v1/webhooks/endpoints", json={"url": receiver.url}, headers=bearer(reader))
    assert refused.status_code == 403 and refused.get_json()["missing_scope"] == "webhooks:write"
    types = client.get("/api/v1/event-types", headers=bearer(reader)).get_json()["data"]
    assert {"member.added", "usage.threshold_reached"} <= {t["name"] for t in types}


def test_deleting_an_endpoint_removes_it_with_its_deliveries(client, api, make, receiver):
    from app.audit.models import AuditEvent
    from app.extensions import db
    from app.webhooks.outbound_models import WebhookDelivery

    _tenant, headers = api
    keep = _endpoint(client, headers, receiver.url, description="keep")
    gone = _endpoint(client, headers, receiver.url, description="gone")
    client.post("/api/v1/events", headers=headers, json={"events": [{"type": "member.added", "payload": {}}]})
    run_jobs()
    other = make.tenant(plan="pro")
    _, other_token = make.api_key(other, scopes=WRITE)
    assert client.delete(f"/api/v1/webhooks/endpoints/{gone['id']}", headers=bearer(other_token)).status_code == 404
    assert client.delete(f"/api/v1/webhooks/endpoints/{gone['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/webhooks/endpoints/{gone['id']}", headers=headers).status_code == 404
    assert {d.endpoint_id for d in db.session.query(WebhookDelivery)} == {keep["id"]}
    assert db.session.query(AuditEvent).filter_by(action="webhook_endpoint.deleted").count() == 1
    assert client.delete(f"/api/v1/webhooks/endpoints/{gone['id']}", headers=headers).status_code == 404
