"""The tenant event-types page: everyone reads the catalogue and the tenant's own types; webhooks:write adds
one (errors per field, the form re-rendered as typed), deprecates, undeprecates and deletes it; the
webhooks page links to it; another tenant's names are 404."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.extensions import db
from app.webhooks import event_types
from app.webhooks.outbound_models import WebhookTenantEventType
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import owner

webhook_env = helpers.webhook_env  # fixture
BASE = "/t/tenant-a/webhooks/event-types"


@pytest.fixture
def world(webhook_env, tenant_world):
    return tenant_world


def _own(world, name="order.shipped", tenant="a", **fields):
    t = world[tenant]["tenant"]
    return event_types.create(owner(t), t.id, {"name": name, **fields})


def _row(name: str) -> str:
    return f'id="event-type-{name.replace(".", "-")}"'


def test_the_webhooks_page_links_here_and_viewers_read_only(world, as_role):
    viewer = as_role("viewer")
    assert 'href="/t/tenant-a/webhooks/event-types"' in viewer.get("/t/tenant-a/webhooks").get_data(as_text=True)
    page = viewer.get(BASE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<h1>Event types</h1>" in html and "No event types of your own yet" in html and "Ask a member" in html
    assert _row("member.added") in html and "Example payload" in html and "alice@example.com" in html
    assert 'id="event-type-form"' not in html
    _own(world, description="An order left the warehouse.", example={"order_id": "ord_1"})
    html = viewer.get(BASE).get_data(as_text=True)
    assert _row("order.shipped") in html and "An order left the warehouse." in html and "ord_1" in html
    assert "Deprecate" not in html and "Delete" not in html
    assert viewer.form(BASE, {"name": "order.placed"}).status_code == 403
    assert viewer.form(f"{BASE}/order.shipped/deprecate").status_code == 403
    assert viewer.form(f"{BASE}/order.shipped/delete").status_code == 403
    assert not event_types.get(world["a"]["tenant"].id, "order.shipped").deprecated


def test_adding_refuses_each_bad_field_and_keeps_what_was_typed(world, as_role):
    client = as_role("member")
    html = client.get(BASE).get_data(as_text=True)
    assert 'id="event-type-form"' in html and "Add one below" in html
    refused = client.form(BASE, {"name": "Order Shipped", "description": "Sent <b>now</b>",
                                 "example": "{not json"}, htmx=True)
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "<html" not in html and 'id="event-type-form"' in html
    assert 'id="e-name"' in html and 'id="e-example"' in html and "Not valid JSON" in html
    assert 'value="Order Shipped"' in html and "Sent &lt;b&gt;now&lt;/b&gt;" in html and "{not json</textarea>" in html

    shadow = client.form(BASE, {"name": "member.added", "example": "[1, 2]"})
    assert shadow.status_code == 422
    html = shadow.get_data(as_text=True)
    assert "<html" in html and "Tenantry&#39;s own event types" in html and "A JSON object." in html
    big = client.form(BASE, {"name": "big.one", "example": json.dumps({"x": "y" * 17_000})})
    assert big.status_code == 422 and "At most 16 KB." in big.get_data(as_text=True)
    assert db.session.scalar(select(WebhookTenantEventType)) is None

    added = client.form(BASE, {"name": "order.shipped", "description": "Sent.", "example": '{"order_id": "ord_1"}'})
    assert added.status_code == 303 and added.headers["Location"].endswith(BASE)
    html = client.get(BASE).get_data(as_text=True)
    assert "order.shipped was added" in html and _row("order.shipped") in html
    assert event_types.get(world["a"]["tenant"].id, "order.shipped").example == {"order_id": "ord_1"}

    twice = client.form(BASE, {"name": "order.shipped"}, htmx=True)
    assert twice.status_code == 409 and 'id="e-name"' in twice.get_data(as_text=True)
    assert "already have an event type named order.shipped" in twice.get_data(as_text=True)
    via_htmx = client.form(BASE, {"name": "order.placed"}, htmx=True)
    assert via_htmx.status_code == 204 and BASE in via_htmx.headers["HX-Location"]


def test_deprecate_undeprecate_and_delete(world, as_role):
    _own(world)
    client = as_role("admin")
    html = client.get(BASE).get_data(as_text=True)
    assert 'data-confirm="Delete order.shipped?' in html and 'data-confirm="Deprecate order.shipped?' in html
    assert client.form(f"{BASE}/order.shipped/deprecate").status_code == 303
    tenant_id = world["a"]["tenant"].id
    assert event_types.get(tenant_id, "order.shipped").deprecated
    html = client.get(BASE).get_data(as_text=True)
    assert "order.shipped is deprecated" in html and "badge-warning" in html and "Undeprecate" in html
    assert client.form(f"{BASE}/order.shipped/undeprecate").status_code == 303
    db.session.expire_all()
    assert not event_types.get(tenant_id, "order.shipped").deprecated
    assert client.form(f"{BASE}/order.shipped/delete").status_code == 303
    assert "order.shipped" not in event_types.known_types(tenant_id)
    assert "order.shipped was deleted" in client.get(BASE).get_data(as_text=True)
    assert client.form(f"{BASE}/order.shipped/delete").status_code == 404
    assert client.form(f"{BASE}/member.added/deprecate").status_code == 404  # the catalogue's stay as they are
    actions = list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant_id,
                                                                      AuditEvent.action.like("webhook_event_type.%"))
                                      .order_by(AuditEvent.seq)))
    assert actions == ["webhook_event_type.created", "webhook_event_type.updated", "webhook_event_type.updated",
                       "webhook_event_type.deleted"]
    record = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "webhook_event_type.deleted"))
    assert record.actor_type == "user"


def test_another_tenants_types_are_invisible_and_404(world, as_role):
    _own(world, name="secret.thing", tenant="b")
    client = as_role("owner")
    assert "secret.thing" not in client.get(BASE).get_data(as_text=True)
    for action in ("deprecate", "undeprecate", "delete"):
        assert client.form(f"{BASE}/secret.thing/{action}").status_code == 404
    assert client.get("/t/tenant-b/webhooks/event-types").status_code == 404
    assert not event_types.get(world["b"]["tenant"].id, "secret.thing").deprecated
