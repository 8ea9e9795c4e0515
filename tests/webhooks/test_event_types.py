"""Tenant-defined event types: the service and the API (`/api/v1/event-types`). A tenant defines a type,
publishes events of it to its subscribed endpoints, deprecates it (still publishable) and deletes it (no
longer publishable); names never shadow Tenantry's catalogue; another tenant never sees or changes it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.plans import service as plans_service
from app.security import Actor
from app.webhooks import event_types, outbound
from app.webhooks.outbound_models import WebhookTenantEventType
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import owner, run_jobs

receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures
WRITE = ["webhooks:read", "webhooks:write", "events:write"]
URL = "/api/v1/event-types"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(make, webhook_env):
    plans_service.ensure_default_plans(Actor.system("tests"))
    tenant = make.tenant(plan="pro")
    _, token = make.api_key(tenant, scopes=WRITE)
    return tenant, bearer(token)


@pytest.fixture
def other(make, webhook_env):
    tenant = make.tenant(plan="pro")
    _, token = make.api_key(tenant, scopes=WRITE)
    return tenant, bearer(token)


def _fields(response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.get_json().get("errors", [])}


def _create(client, headers, **fields):
    response = client.post(URL, json={"name": "order.shipped", **fields}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# --- the service ------------------------------------------------------------------------------------


def test_the_service_creates_lists_updates_and_deletes_with_audit(api):
    tenant, _ = api
    actor = owner(tenant)
    created = event_types.create(actor, tenant.id, {"name": "order.shipped", "description": " Sent. ",
                                                    "example": {"order_id": "ord_1"}})
    assert (created.name, created.description, created.example, created.deprecated) == \
        ("order.shipped", "Sent.", {"order_id": "ord_1"}, False)
    assert "order.shipped" in event_types.known_types(tenant.id)
    assert "order.shipped" not in event_types.known_types(None)
    listed = event_types.listing(tenant.id)
    assert [t.source for t in listed][-1] == "tenant" and {t.source for t in listed} == {"platform", "tenant"}
    assert [t.name for t in event_types.listing(tenant.id) if t.source == "tenant"] == ["order.shipped"]

    event_types.update(actor, tenant.id, "order.shipped", {"deprecated": True, "name": "ignored.name"})
    assert event_types.get(tenant.id, "order.shipped").deprecated
    assert "order.shipped" in event_types.known_types(tenant.id)  # deprecated: still publishable
    assert "order.shipped" not in {t.name for t in event_types.listing(tenant.id, include_deprecated=False)}

    event_types.delete(actor, tenant.id, "order.shipped")
    assert "order.shipped" not in event_types.known_types(tenant.id)
    actions = [e.action for e in db.session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant.id)
                                                    .order_by(AuditEvent.seq))]
    assert [a for a in actions if a.startswith("webhook_event_type.")] == [
        "webhook_event_type.created", "webhook_event_type.updated", "webhook_event_type.deleted"]
    created_event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "webhook_event_type.created"))
    assert created_event.targets[0]["id"].startswith("etp_") and created_event.changes["name"] == [None,
                                                                                                    "order.shipped"]


def test_the_service_refuses_bad_names_shadows_duplicates_and_large_examples(api):
    tenant, _ = api
    actor = owner(tenant)
    for bad in ("", "single", "Order.Shipped", "order..shipped", ".order", "order.shipped.", "order-x.shipped",
                "order.sh ipped", "o\x00.x", "a." + "b" * 120):
        with pytest.raises(Invalid) as refused:
            event_types.create(actor, tenant.id, {"name": bad})
        assert set(refused.value.errors) == {"name"}, bad
    with pytest.raises(Invalid) as shadow:
        event_types.create(actor, tenant.id, {"name": "member.added"})
    assert "Tenantry's own" in shadow.value.errors["name"]
    with pytest.raises(Invalid) as big:
        event_types.create(actor, tenant.id, {"name": "big.one", "example": {"x": "y" * event_types.MAX_EXAMPLE_BYTES}})
    assert set(big.value.errors) == {"example"}
    with pytest.raises(Invalid) as nul:
        event_types.create(actor, tenant.id, {"name": "nul.one", "description": "a\x00b", "example": {"k": "\x00"}})
    assert set(nul.value.errors) == {"description", "example"}
    event_types.create(actor, tenant.id, {"name": "order.shipped"})
    with pytest.raises(Conflict) as twice:
        event_types.create(actor, tenant.id, {"name": "order.shipped"})
    assert "already have" in twice.value.errors["name"]
    with pytest.raises(NotFound):
        event_types.get(tenant.id, "member.added")  # the catalogue's cannot be changed
    with pytest.raises(NotFound):
        event_types.update(actor, tenant.id, "no\x00such.type", {"description": "x"})
    assert db.session.scalar(select(WebhookTenantEventType.name)) == "order.shipped"


# --- the API ----------------------------------------------------------------------------------------


def test_create_list_update_and_delete_through_the_api(client, api):
    tenant, headers = api
    created = _create(client, headers, description="An order left the warehouse.",
                      example={"order_id": "ord_1", "carrier": "DHL"})
    assert created["object"] == "event_type" and created["source"] == "tenant" and created["created_at"]
    assert created["example"] == {"order_id": "ord_1", "carrier": "DHL"} and created["deprecated"] is False

    listed = client.get(URL, headers=headers).get_json()
    assert listed["object"] == "list" and listed["has_more"] is False
    by_name = {t["name"]: t for t in listed["data"]}
    assert by_name["member.added"]["source"] == "platform" and by_name["order.shipped"]["source"] == "tenant"
    assert [t["source"] for t in listed["data"]] == sorted(t["source"] for t in listed["data"])  # catalogue first

    changed = client.patch(f"{URL}/order.shipped", json={"description": "Shipped.", "deprecated": True},
                           headers=headers)
    assert changed.status_code == 200
    assert changed.get_json()["description"] == "Shipped." and changed.get_json()["deprecated"] is True
    unchanged = client.patch(f"{URL}/order.shipped", json={}, headers=headers)
    assert unchanged.status_code == 200 and unchanged.get_json()["deprecated"] is True

    assert client.delete(f"{URL}/order.shipped", headers=headers).status_code == 204
    assert client.delete(f"{URL}/order.shipped", headers=headers).status_code == 404
    assert "order.shipped" not in {t["name"] for t in client.get(URL, headers=headers).get_json()["data"]}
    actions = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.id)))
    assert {"webhook_event_type.created", "webhook_event_type.updated", "webhook_event_type.deleted"} <= actions


def test_the_api_refuses_duplicates_shadows_bad_names_and_large_examples(client, api):
    _tenant, headers = api
    _create(client, headers)
    duplicate = client.post(URL, json={"name": "order.shipped"}, headers=headers)
    assert duplicate.status_code == 409 and duplicate.mimetype == "application/problem+json"
    assert "already have" in duplicate.get_json()["detail"] and "name" in _fields(duplicate)

    shadow = client.post(URL, json={"name": "member.added"}, headers=headers)
    assert shadow.status_code == 422 and shadow.mimetype == "application/problem+json"
    assert set(_fields(shadow)) == {"name"} and "Tenantry's own" in _fields(shadow)["name"]

    for bad in ("Order.Shipped", "shipped", "order-x.shipped", "a.b c"):
        refused = client.post(URL, json={"name": bad}, headers=headers)
        assert refused.status_code == 422 and set(_fields(refused)) == {"name"}, bad

    big = client.post(URL, json={"name": "big.one", "example": {"x": "y" * 17_000}}, headers=headers)
    assert big.status_code == 422 and set(_fields(big)) == {"example"} and "16 KB" in _fields(big)["example"]

    several = client.post(URL, json={"name": "x", "description": "d" * 501, "example": [1], "deprecated": "yes",
                                     "colour": "red"}, headers=headers)
    assert several.status_code == 422
    assert {"name", "description", "example", "deprecated", "colour"} <= set(_fields(several))

    bad_patch = client.patch(f"{URL}/order.shipped", json={"deprecated": 1, "name": "new.name"}, headers=headers)
    assert bad_patch.status_code == 422 and {"deprecated", "name"} <= set(_fields(bad_patch))
    for missing in ("member.added", "no.such_type", "Bad Name", "x" * 200):
        assert client.patch(f"{URL}/{missing}", json={"description": "x"}, headers=headers).status_code == 404
        assert client.delete(f"{URL}/{missing}", headers=headers).status_code == 404
    names = [t["name"] for t in client.get(URL, headers=headers).get_json()["data"] if t["source"] == "tenant"]
    assert names == ["order.shipped"]


def test_writes_need_the_write_scope_and_a_repeated_idempotency_key_replays(client, api, make):
    tenant, headers = api
    _, reader = make.api_key(tenant, scopes=["webhooks:read"])
    refused = client.post(URL, json={"name": "order.shipped"}, headers=bearer(reader))
    assert refused.status_code == 403 and refused.get_json()["missing_scope"] == "webhooks:write"
    assert client.get(URL, headers=bearer(reader)).status_code == 200
    keyed = {**headers, "Idempotency-Key": "type-1"}
    first = client.post(URL, json={"name": "order.shipped"}, headers=keyed)
    again = client.post(URL, json={"name": "order.shipped"}, headers=keyed)
    assert first.status_code == again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert client.post(URL, json={"name": "order.placed"}, headers=keyed).status_code == 409


def test_another_tenant_never_sees_or_changes_your_types(client, api, other, receiver):
    _tenant, headers = api
    other_tenant, other_headers = other
    _create(client, headers)
    assert "order.shipped" not in {t["name"] for t in client.get(URL, headers=other_headers).get_json()["data"]}
    assert client.patch(f"{URL}/order.shipped", json={"deprecated": True}, headers=other_headers).status_code == 404
    assert client.delete(f"{URL}/order.shipped", headers=other_headers).status_code == 404
    published = client.post("/api/v1/events", headers=other_headers,
                            json={"events": [{"type": "order.shipped", "payload": {}}]})
    assert published.status_code == 422
    with pytest.raises(Invalid):  # nor can its endpoints subscribe to it
        outbound.create_endpoint(owner(other_tenant), other_tenant.id,
                                 {"url": receiver.url, "event_types": ["order.shipped"]})
    # the other tenant may define the same name for itself
    assert client.post(URL, json={"name": "order.shipped"}, headers=other_headers).status_code == 201
    ours = client.get(URL, headers=headers).get_json()["data"]
    assert [t["deprecated"] for t in ours if t["name"] == "order.shipped"] == [False]


def test_events_of_your_type_reach_subscribed_endpoints_until_it_is_deleted(client, api, receiver):
    _tenant, headers = api
    unknown = client.post("/api/v1/events", headers=headers,
                          json={"events": [{"type": "order.shipped", "payload": {}}]})
    assert unknown.status_code == 422 and "events[0].event_type" in _fields(unknown)
    _create(client, headers)
    endpoint = client.post("/api/v1/webhooks/endpoints", headers=headers,
                           json={"url": receiver.url, "event_types": ["order.shipped"]})
    assert endpoint.status_code == 201, endpoint.get_json()

    def publish(n):
        return client.post("/api/v1/events", headers=headers, json={"events": [
            {"type": "order.shipped", "payload": {"n": n}}, {"type": "member.added", "payload": {}}]})

    assert publish(1).status_code == 202
    run_jobs()
    assert [r.body for r in receiver.requests if b"order.shipped" in r.body] and len(receiver.requests) == 1

    client.patch(f"{URL}/order.shipped", json={"deprecated": True}, headers=headers)
    assert publish(2).status_code == 202  # deprecated: still publishable, still delivered
    run_jobs()
    assert len(receiver.requests) == 2 and b'"n": 2' in receiver.requests[1].body.replace(b'"n":2', b'"n": 2')

    assert client.delete(f"{URL}/order.shipped", headers=headers).status_code == 204
    gone = publish(3)
    assert gone.status_code == 422 and "events[0].event_type" in _fields(gone)
    run_jobs()
    assert len(receiver.requests) == 2
