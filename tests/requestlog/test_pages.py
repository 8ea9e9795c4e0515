"""The request log pages: who sees them, filters, pagination, retention, one request, and tenant
isolation (another tenant's requests answer 404, never data)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from app import clock
from app.requestlog import drain
from tests.requestlog.helpers import bearer, entry, insert, series

ROW_RE = re.compile(r'<tr data-request-id="([^"]+)"')
OLDER_RE = re.compile(r'href="([^"]+)" rel="next">Older')
NOW = datetime(2030, 5, 20, 12, 0, tzinfo=UTC)


def _rows(response) -> list[str]:
    return ROW_RE.findall(response.get_data(as_text=True))


def _older(response) -> str | None:
    found = OLDER_RE.search(response.get_data(as_text=True))
    return found.group(1).replace("&amp;", "&") if found else None


def test_every_member_sees_the_log_from_the_nav(as_role, tenant_world):
    series(tenant_world["a"]["tenant"].id, 2)
    for role in ("owner", "admin", "member", "viewer"):
        page = as_role(role).get("/t/tenant-a/logs")
        assert page.status_code == 200, role
        assert len(_rows(page)) == 2
    home = as_role("viewer").get("/t/tenant-a/").get_data(as_text=True)
    assert 'href="/t/tenant-a/logs"' in home


def test_api_calls_appear_once_drained(as_role, client, tenant_world):
    a = tenant_world["a"]
    response = client.get("/api/v1/tenant", headers=bearer(a["token"]))
    request_id = response.headers["X-Request-ID"]
    owner = as_role("owner")
    assert _rows(owner.get("/t/tenant-a/logs")) == []
    drain.drain()
    page = owner.get("/t/tenant-a/logs")
    assert _rows(page) == [request_id]
    html = page.get_data(as_text=True)
    assert "GET /api/v1/tenant" in html and a["key"].name in html
    detail = owner.get(f"/t/tenant-a/logs/{request_id}")
    assert detail.status_code == 200
    body = detail.get_data(as_text=True)
    for text in (request_id, "/api/v1/tenant", "200", a["key"].masked, "127.0.0.1", "&nbsp;ms"):
        assert text in body


def test_empty_states_say_what_to_do(as_role):
    html = as_role("owner").get("/t/tenant-a/logs").get_data(as_text=True)
    assert "No API requests yet" in html and "/t/tenant-a/api-keys" in html
    html = as_role("owner").get("/t/tenant-a/logs?status=5xx").get_data(as_text=True)
    assert "No requests match" in html and "Clear filters" in html


def test_filters_by_status_route_key_request_id_and_time(as_role, make, tenant_world):
    a = tenant_world["a"]["tenant"]
    other_key, _ = make.api_key(a, name="other key")
    with clock.travel(NOW):
        insert(
            entry(a.id, request_id="ok-1", at=NOW - timedelta(minutes=5), api_key_id=other_key.id),
            entry(a.id, request_id="limited-1", status=429, at=NOW - timedelta(minutes=20)),
            entry(a.id, request_id="invalid-1", status=422, method="POST", route="/api/v1/members",
                  path="/api/v1/members", at=NOW - timedelta(hours=2)),
            entry(a.id, request_id="broken-1", status=503, at=NOW - timedelta(days=2)),
        )
        owner = as_role("owner")

        def rows(query: str) -> list[str]:
            response = owner.get(f"/t/tenant-a/logs?{query}")
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
            return _rows(response)

        assert rows("") == ["ok-1", "limited-1", "invalid-1", "broken-1"]
        assert rows("status=4xx") == ["limited-1", "invalid-1"]
        assert rows("status=429") == ["limited-1"]
        assert rows("status=2xx") == ["ok-1"]
        assert rows("status=5XX") == ["broken-1"]
        assert rows("route=POST+/api/v1/members") == ["invalid-1"]
        assert rows("route=GET+/api/v1/members") == []
        assert rows("route=/api/v1/tenant") == ["ok-1", "limited-1", "broken-1"]
        assert rows(f"key={other_key.id}") == ["ok-1"]
        assert rows("request_id=limited-1") == ["limited-1"]
        assert rows("period=15m") == ["ok-1"]
        assert rows("period=1h") == ["ok-1", "limited-1"]
        assert rows("period=24h&status=4xx") == ["limited-1", "invalid-1"]
        assert rows("since=2030-05-20T09:00&until=2030-05-20T11:50") == ["limited-1", "invalid-1"]
        assert rows("since=2030-05-18&until=2030-05-18") == ["broken-1"]  # a whole day
        # A day in the URL shows in the datetime-local inputs as the same span (the browser would
        # blank a bare date there, and the next filter change would drop it).
        html = owner.get("/t/tenant-a/logs?since=2030-05-18&until=2030-05-18").get_data(as_text=True)
        assert 'value="2030-05-18T00:00"' in html and 'value="2030-05-19T00:00"' in html


def test_bad_filters_are_explained_not_ignored(as_role):
    owner = as_role("owner")
    for query, field, message in (("status=4x", "Status", "class"), ("key=nope", "Key", "key_"),
                                  ("since=yesterday", "Since", "UTC time"), ("period=1y", "Period", "Choose"),
                                  ("route=FETCH+/x", "Route", "Choose a route"),
                                  ("since=2030-01-02&until=2030-01-01", "Until", "after since"),
                                  ("request_id=no%20spaces", "Request id", "letters")):
        response = owner.get(f"/t/tenant-a/logs?{query}")
        assert response.status_code == 422, query
        html = response.get_data(as_text=True)
        assert f"{field}:" in html and message in html, (query, html[-1500:])


def test_htmx_filtering_gets_only_the_table(as_role, tenant_world):
    series(tenant_world["a"]["tenant"].id, 3, status=404)
    response = as_role("owner").htmx_get("/t/tenant-a/logs?status=404")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<section id="logs-table">')
    assert "<html" not in html and len(_rows(response)) == 3
    assert "HX-Request" in response.headers.get("Vary", "")


def test_pages_of_fifty_newest_first_without_gaps_or_repeats(as_role, tenant_world):
    tenant_id = tenant_world["a"]["tenant"].id
    rows = series(tenant_id, 60, step=timedelta(seconds=1))
    rows += series(tenant_id, 60, start=rows[-1]["at"] - timedelta(seconds=5), step=timedelta(0))  # same instant
    owner = as_role("owner")
    seen, url, pages = [], "/t/tenant-a/logs", 0
    while url:
        response = owner.get(url)
        page_rows = _rows(response)
        assert len(page_rows) <= 50
        seen += page_rows
        url, pages = _older(response), pages + 1
        if url:
            assert "← Newest" in owner.get(url).get_data(as_text=True)
    assert pages == 3
    assert seen[:60] == [row["request_id"] for row in rows[:60]]  # newest first
    assert sorted(seen) == sorted(row["request_id"] for row in rows) and len(set(seen)) == 120


def test_pages_keep_the_filters(as_role, tenant_world):
    tenant_id = tenant_world["a"]["tenant"].id
    series(tenant_id, 55, status=500)
    series(tenant_id, 10, status=200)
    owner = as_role("owner")
    first = owner.get("/t/tenant-a/logs?status=5xx")
    older = _older(first)
    assert parse_qs(urlsplit(older).query)["status"] == ["5xx"]
    assert len(_rows(owner.get(older))) == 5
    assert owner.get("/t/tenant-a/logs?before=garbage").status_code == 200  # a bad cursor starts over


def test_nothing_older_than_retention_is_shown(as_role, app, tenant_world, monkeypatch):
    tenant_id = tenant_world["a"]["tenant"].id
    with clock.travel(NOW):
        insert(entry(tenant_id, request_id="recent", at=NOW - timedelta(days=6)),
               entry(tenant_id, request_id="expired", at=NOW - timedelta(days=8)))
        owner = as_role("owner")
        assert _rows(owner.get("/t/tenant-a/logs")) == ["recent"]  # not pruned yet, still not shown
        assert owner.get("/t/tenant-a/logs/expired").status_code == 404
        assert "last 7 days" in owner.get("/t/tenant-a/logs").get_data(as_text=True)
        monkeypatch.setitem(app.config, "REQUEST_LOG_RETENTION_DAYS", 30)
        assert _rows(owner.get("/t/tenant-a/logs")) == ["recent", "expired"]


def test_a_reused_request_id_shows_every_request(as_role, tenant_world):
    tenant_id = tenant_world["a"]["tenant"].id
    insert(entry(tenant_id, request_id="retry-abc-1", status=503, at=clock.now() - timedelta(seconds=3)),
           entry(tenant_id, request_id="retry-abc-1", status=200))
    html = as_role("owner").get("/t/tenant-a/logs/retry-abc-1").get_data(as_text=True)
    assert html.count('class="card request-entry"') == 2 and "503" in html


def test_tenants_never_see_each_others_requests(as_role, tenant_world):
    a, b = tenant_world["a"]["tenant"], tenant_world["b"]["tenant"]
    insert(entry(a.id, request_id="a-secret-1"), entry(b.id, request_id="b-secret-1"))
    owner_a = as_role("owner", "a")
    assert _rows(owner_a.get("/t/tenant-a/logs")) == ["a-secret-1"]
    assert _rows(owner_a.get("/t/tenant-a/logs?request_id=b-secret-1")) == []
    assert owner_a.get("/t/tenant-a/logs/b-secret-1").status_code == 404  # B's id under A's slug
    assert owner_a.get("/t/tenant-b/logs").status_code == 404  # B's pages: not a member
    assert owner_a.get("/t/tenant-b/logs/b-secret-1").status_code == 404
    assert owner_a.get("/t/tenant-a/logs/a-secret-1").status_code == 200
    assert owner_a.get("/t/tenant-a/logs/no-such-request").status_code == 404
    assert owner_a.get("/t/tenant-a/logs/bad%20id").status_code == 404


def test_staff_see_every_tenant_and_filter_by_tenant(staff_client, tenant_world):
    a, b = tenant_world["a"]["tenant"], tenant_world["b"]["tenant"]
    now = clock.now()
    insert(entry(a.id, request_id="a-1", at=now - timedelta(minutes=1)),
           entry(b.id, request_id="b-1", status=500, at=now - timedelta(minutes=2)),
           entry(b.id, request_id="shared-id-1", at=now - timedelta(minutes=3)),
           entry(a.id, request_id="shared-id-1", at=now - timedelta(minutes=4)))
    index = staff_client.get("/admin/logs/")
    assert index.status_code == 200 and _rows(index) == ["a-1", "b-1", "shared-id-1", "shared-id-1"]
    assert 'href="/admin/logs/"' in index.get_data(as_text=True)  # in the staff nav
    assert _rows(staff_client.get("/admin/logs/?tenant=tenant-b")) == ["b-1", "shared-id-1"]
    assert _rows(staff_client.get(f"/admin/logs/?tenant={a.id}&status=2xx")) == ["a-1", "shared-id-1"]
    assert _rows(staff_client.get("/admin/logs/?status=5xx")) == ["b-1"]
    bad = staff_client.get("/admin/logs/?tenant=nobody")
    assert bad.status_code == 422 and "No tenant has the slug" in bad.get_data(as_text=True)
    detail = staff_client.get("/admin/logs/shared-id-1")
    html = detail.get_data(as_text=True)
    assert detail.status_code == 200 and html.count('class="card request-entry"') == 2
    assert "Tenant A" in html and "Tenant B" in html
    assert staff_client.get("/admin/logs/nothing-here").status_code == 404


def test_the_staff_pages_are_not_for_tenant_users(as_role, client, tenant_world):
    insert(entry(tenant_world["a"]["tenant"].id, request_id="a-1"))
    owner = as_role("owner")
    assert owner.get("/admin/logs/").status_code == 404
    assert owner.get("/admin/logs/a-1").status_code == 404
    signed_out = client.get("/admin/logs/")
    assert signed_out.status_code == 302 and "login" in signed_out.headers["Location"]
    assert client.get("/t/tenant-a/logs").status_code == 302
