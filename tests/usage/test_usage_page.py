"""The tenant usage page: numbers for this period, the chart's data, endpoints, empty state."""

from __future__ import annotations

import html as markup
import json
import re

from app.usage import rollup


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_usage_page_shows_the_period_and_the_chart(ctx, client, tenant_world, as_role):
    a = tenant_world["a"]
    for _ in range(4):
        client.get("/api/v1/tenant", headers=bearer(a["token"]))
    rollup.rollup_all()
    page = as_role("viewer").get("/t/tenant-a/usage")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.search(r'id="usage-used">\s*4\s*<', html)
    assert "100,000" in html  # Pro includes 100,000 calls
    figure = json.loads(markup.unescape(re.search(r"data-figure='([^']+)'", html).group(1)))
    assert sum(figure["data"][0]["y"]) == 4
    assert "GET /api/v1/tenant" in html


def test_usage_page_empty_state_and_permissions(ctx, as_role, client, tenant_world):
    html = as_role("member").get("/t/tenant-a/usage").get_data(as_text=True)
    assert "No API calls yet" in html
    assert client.get("/t/tenant-a/usage").status_code == 302  # signed out
    assert as_role("owner", "b").get("/t/tenant-a/usage").status_code == 404  # another tenant's member
