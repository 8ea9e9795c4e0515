"""The staff overview's revenue figures, from the same pre-aggregated months as /admin/revenue: MRR, ARR,
this month's movement, the top tenants by revenue, and past-due invoices (counted and summed per currency),
each linking to its page."""

from __future__ import annotations

import re

from app.console import overview
from tests.admin.helpers import text
from tests.billing.test_revenue_page import billed  # noqa: F401 - the fixture


def test_overview_shows_revenue_top_tenants_and_past_due(billed, staff_client):  # noqa: F811
    assert overview.refresh()["past_due"] == [{"currency": "USD", "count": 1, "amount": 4900}]
    page = text(staff_client.get("/admin/"))
    mrr = page[page.index('id="console-mrr"'):page.index('id="console-staff"')]
    assert re.search(r'class="mrr"><a href="/admin/revenue/?\?currency=USD">\$1,000\.00</a>', mrr)
    assert 'class="arr">$12,000.00<' in mrr and "+$451.00" in mrr
    top = page[page.index('id="console-top-revenue"'):page.index('id="console-near-quota"')]
    assert top.index("Acme") < top.index("Globex") or top.index("Globex") < top.index("Acme")
    assert f"/admin/billing/tenants/{billed['acme'].id}" in top and "$500.00 MRR" in top
    past_due = page[page.index('id="console-past-due"'):]
    assert "1 in USD" in past_due and "$49.00 owed" in past_due and "#revenue-past-due" in past_due
