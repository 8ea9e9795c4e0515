"""The staff audit trail: filters, keyset pages, readable changes, and one event in full."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.extensions import db
from app.security import Actor
from tests.admin.helpers import is_fragment, text

ALICE = Actor(type="user", id="usr_01jaaaaaaaaaaaaaaaaaaaaaaa", display="alice@acme.example.com", ip="203.0.113.7")
KEY = Actor(type="api_key", id="key_01jbbbbbbbbbbbbbbbbbbbbbbb", display="Production backend")


def actions(response) -> list[str]:
    """Actions of the rows in the trail's table, newest first."""
    return re.findall(r'<tr id="row-aud_[a-z0-9]+">.*?<code>([a-z0-9_.]+)</code>', text(response), re.S)


@pytest.fixture
def trail(make):
    """Events on two tenants and the platform, on three days."""
    acme, globex = make.tenant(slug="acme"), make.tenant(slug="globex")
    with clock.travel(datetime(2030, 3, 1, 12, tzinfo=UTC)):
        audit.record(ALICE, "widget.created", tenant_id=acme.id, targets=[Target("widget", "wdg_1", "Blue")],
                     changes={"colour": [None, "blue"]})
    with clock.travel(datetime(2030, 3, 2, 23, 59, tzinfo=UTC)):
        audit.record(KEY, "widget.updated", tenant_id=acme.id, changes={"colour": ["blue", "green"],
                                                                        "sizes": [[1], [1, 2]]})
    with clock.travel(datetime(2030, 3, 2, 23, 59, 30, tzinfo=UTC)):
        audit.record(ALICE, "widget.deleted", tenant_id=globex.id, outcome="denied", severity="critical")
    with clock.travel(datetime(2030, 3, 3, 0, 0, tzinfo=UTC)):
        audit.record(Actor.system("billing run"), "billing.ran", metadata={"invoices": 3})
    db.session.commit()
    return {"acme": acme, "globex": globex}


def test_newest_first_with_every_column(staff_client, trail):
    response = staff_client.get("/admin/audit/?action=widget.")
    assert response.status_code == 200
    assert actions(response) == ["widget.deleted", "widget.updated", "widget.created"]
    page = text(response)
    assert "alice@acme.example.com" in page and "api_key" in page and "203.0.113.7" in page
    assert ">acme</a>" in page and "Blue" in page and "wdg_1" in page
    assert "badge-denied" in page and "badge-critical" in page
    assert "<code>colour</code>: blue → green" in page  # changes read as old → new
    assert "<code>colour</code>: <span class=\"muted\">—</span> → blue" in page
    assert "[1, 2]" in page


@pytest.mark.parametrize(("query", "expected"), [
    ("tenant=acme", ["widget.updated", "widget.created", "tenant.created"]),
    ("actor=alice", ["widget.deleted", "widget.created"]),
    ("actor=key_01jbbbbbbbbbbbbbbbbbbbbbbb", ["widget.updated"]),
    ("action=widget.upd", ["widget.updated"]),
    ("outcome=denied", ["widget.deleted"]),
    ("severity=critical", ["widget.deleted"]),
    ("since=2030-03-02&until=2030-03-02", ["widget.deleted", "widget.updated"]),
    ("since=2030-03-03", ["billing.ran"]),
    ("until=2030-03-01&action=widget", ["widget.created"]),
])
def test_filters(staff_client, trail, query, expected):
    response = staff_client.get(f"/admin/audit/?{query}")
    assert response.status_code == 200
    assert actions(response) == expected


def test_tenant_filter_takes_an_id_too(staff_client, trail):
    response = staff_client.get(f"/admin/audit/?tenant={trail['globex'].id}")
    assert actions(response) == ["widget.deleted", "tenant.created"]


@pytest.mark.parametrize(("query", "message"), [
    ("since=yesterday", "Use a date like 2025-01-31"),
    ("until=2030-02-30", "Use a date like 2025-01-31"),
    ("since=2030-03-05&until=2030-03-01", "Until must not be before since."),
    ("tenant=nobody-here", "No tenant has the slug or id"),
    ("outcome=maybe", "Choose one of success, denied, error."),
])
def test_bad_filters_say_why(staff_client, trail, query, message):
    response = staff_client.get(f"/admin/audit/?{query}")
    assert response.status_code == 422
    assert message in text(response) and actions(response) == []
    partial = staff_client.htmx_get(f"/admin/audit/?{query}")
    assert partial.status_code == 422 and is_fragment(partial, "audit-table") and message in text(partial)


def test_htmx_filter_returns_the_table_fragment(staff_client, trail):
    response = staff_client.htmx_get("/admin/audit/?outcome=denied")
    assert response.status_code == 200 and is_fragment(response, "audit-table")
    assert actions(response) == ["widget.deleted"]


def test_older_pages_by_keyset(staff_client, make):
    tenant = make.tenant(slug="acme")
    start = clock.now()
    for n in range(60):  # a second apart: ids are ordered by time only to the millisecond
        with clock.travel(start + timedelta(seconds=n + 1)):
            audit.record(ALICE, f"thing.n{n:02d}", tenant_id=tenant.id)
    db.session.commit()
    first = staff_client.get("/admin/audit/?tenant=acme")
    assert len(actions(first)) == 50 and actions(first)[0] == "thing.n59"
    older = re.search(r'href="(/admin/audit/\?[^"]*before=aud_[^"]+)" rel="next">Older', text(first)).group(1)
    assert "tenant=acme" in older
    second = staff_client.get(older.replace("&amp;", "&"))
    assert actions(second) == [f"thing.n{n:02d}" for n in range(9, -1, -1)] + ["tenant.created"]
    assert "Older →" not in text(second) and "← Newest" in text(second)


def test_empty_results_say_what_to_do(staff_client):
    response = staff_client.get("/admin/audit/?action=nothing.like.this")
    assert "No events match these filters" in text(response)


def test_event_detail_shows_every_field(staff_client, trail):
    event = audit.record(ALICE, "widget.renamed", tenant_id=trail["acme"].id, changes={"name": ["a", "b"]},
                         metadata={"reason": "typo"})
    db.session.commit()
    response = staff_client.get(f"/admin/audit/{event.id}")
    assert response.status_code == 200
    page = text(response)
    for value in (event.id, event.hash, event.prev_hash, trail["acme"].id, "widget.renamed", "alice@acme.example.com",
                  "203.0.113.7", "typo", "<code>name</code>: a → b"):
        assert value in page, value
    assert f"<dt>Sequence</dt><dd>{event.seq}</dd>" in page


def test_event_links_from_the_trail(staff_client, trail):
    page = text(staff_client.get("/admin/audit/?outcome=denied"))
    event_id = re.search(r'href="/admin/audit/(aud_[a-z0-9]+)"', page).group(1)
    assert "widget.deleted" in text(staff_client.get(f"/admin/audit/{event_id}"))


def test_long_change_lists_are_cut_with_a_link_to_the_event(staff_client, make):
    event = audit.record(ALICE, "big.change", changes={f"field{n}": [n, n + 1] for n in range(6)})
    db.session.commit()
    page = text(staff_client.get("/admin/audit/?action=big."))
    assert "<code>field3</code>" in page and "<code>field4</code>" not in page
    assert f'<a href="/admin/audit/{event.id}">and 2 more</a>' in page
    assert "<code>field5</code>: 5 → 6" in text(staff_client.get(f"/admin/audit/{event.id}"))
