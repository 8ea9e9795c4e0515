"""Staff define the metrics tenants report usage for at /admin/usage/metrics: list, create and edit with
every problem named on the form, a definition that is fixed once events exist, archive and restore;
plans carry a quota per metric, and GET /api/v1/usage/current reports each metric against it."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from app.plans import service as plans_service
from app.plans.queries import find_plan
from app.queue import get_redis
from app.usage import catalog
from app.usage.events import used_key
from tests.admin.helpers import audit_events, follow, fresh, is_fragment, text
from tests.usage.conftest import STAFF, current_metrics, define, event, post, roll

URL = "/admin/usage/metrics"
GOOD = {"code": "emails_sent", "name": "Emails sent", "unit": "emails", "aggregation": "count", "field": "",
        "decimals": "0"}


def _metric(code: str = "emails_sent"):
    fresh()
    return catalog.find_metric(code)


def test_the_list_says_what_to_do_when_empty_then_lists_metrics(staff_client):
    page = text(staff_client.get(URL))
    assert "No metrics yet" in page and f"{URL}/new" in page
    define("storage_gb", "max", "gb", decimals=2, unit="GB", name="Storage")
    define("emails_sent", "count", unit="emails", name="Emails sent")
    page = text(staff_client.get(URL))
    row = page[page.index('id="metric-storage_gb"'):]
    assert "Storage" in row and "Maximum of a property" in row and "<code>gb</code>" in row
    assert page.index('id="metric-emails_sent"') < page.index('id="metric-storage_gb"')
    assert 'data-confirm="Archive Storage?' in page


def test_create_names_every_problem_and_saves_nothing(staff_client):
    response = staff_client.form(f"{URL}/new", {"code": "Emails Sent!", "name": "", "unit": "x" * 21,
                                                "aggregation": "sum", "field": "", "decimals": "9"})
    assert response.status_code == 422
    page = text(response)
    assert "2–40 characters: a-z, 0-9 and _" in page
    assert "Enter a name of at most 80 characters." in page
    assert "At most 20 characters" in page
    assert "Name the event property to aggregate" in page
    assert "Enter a whole number from 0 to 6." in page
    assert 'value="Emails Sent!"' in page  # what was typed stays on the form
    assert catalog.list_metrics() == []


@pytest.mark.parametrize("change, field, message", [
    ({"code": "api_calls"}, "code", "Another metric has this code."),
    ({"aggregation": "median"}, "aggregation", "Choose one of count, sum, max, unique_count, latest."),
    ({"aggregation": "unique_count", "field": "user", "decimals": "2"}, "decimals",
     "Counts and unique counts are whole numbers: use 0 decimal places."),
    ({"aggregation": "max", "field": "has space"}, "field", "Name the event property to aggregate"),
])
def test_create_refuses_bad_definitions(staff_client, change, field, message):
    response = staff_client.form(f"{URL}/new", GOOD | change, htmx=True)
    assert response.status_code == 422
    assert is_fragment(response, "metric-form")  # htmx swaps only the form
    page = text(response)
    assert message in page
    assert re.search(rf'class="field has-error">\s*<label for="f-{field}"', page)  # marked on its field


def test_create_saves_audits_and_a_code_is_taken_once(staff_client):
    response = staff_client.form(f"{URL}/new", GOOD)
    assert response.headers["Location"] == URL
    assert "Metric Emails sent created." in text(follow(staff_client, response))
    metric = _metric()
    assert (metric.name, metric.unit, metric.aggregation, metric.field, metric.decimals) == (
        "Emails sent", "emails", "count", None, 0)
    assert metric.id.startswith("met_")
    [audited] = audit_events("usage_metric.created")
    assert audited.targets[0]["id"] == metric.id and audited.actor_id == staff_client.user.id
    again = staff_client.form(f"{URL}/new", GOOD | {"name": "Other"})
    assert again.status_code == 422 and "Another metric has this code." in text(again)


def test_edit_changes_name_unit_and_definition_while_no_events_exist(staff_client):
    metric = define("storage_gb", "max", "gb", decimals=2)
    form = text(staff_client.get(f"{URL}/{metric.id}/edit"))
    assert 'id="metric-code"' in form and 'id="metric-fixed"' not in form
    response = staff_client.form(f"{URL}/{metric.id}/edit", {"name": "Storage", "unit": "GB", "aggregation": "latest",
                                                             "field": "gigabytes", "decimals": "3"})
    assert response.status_code == 303
    metric = _metric("storage_gb")
    assert (metric.name, metric.unit, metric.aggregation, metric.field, metric.decimals) == (
        "Storage", "GB", "latest", "gigabytes", 3)
    [audited] = audit_events("usage_metric.updated")
    assert audited.changes["aggregation"] == ["max", "latest"] and audited.changes["decimals"] == [2, 3]
    assert staff_client.get(f"{URL}/met_01jzzzzzzzzzzzzzzzzzzzzzzz/edit").status_code == 404


def test_the_definition_is_fixed_once_events_exist(staff_client, ctx, tenant_world, client):
    metric = define("storage_gb", "max", "gb", decimals=2)
    assert post(client, tenant_world["a"]["token"], [event("s1", "storage_gb", gb=3)]).status_code == 202
    form = text(staff_client.get(f"{URL}/{metric.id}/edit"))
    assert 'id="metric-fixed"' in form and "<fieldset disabled>" in form
    # The browser sends no disabled fields: name and unit still change.
    assert staff_client.form(f"{URL}/{metric.id}/edit", {"name": "Storage", "unit": "GB"}).status_code == 303
    assert _metric("storage_gb").name == "Storage"
    # A hand-made request that changes the definition is refused, naming each fixed field.
    response = staff_client.form(f"{URL}/{metric.id}/edit", {"name": "Storage", "unit": "GB", "aggregation": "sum",
                                                             "field": "gb", "decimals": "0"})
    assert response.status_code == 422
    page = text(response)
    assert page.count("Fixed: events were already reported for this metric.") == 2  # aggregation, decimals
    assert (_metric("storage_gb").aggregation, _metric("storage_gb").decimals) == ("max", 2)
    # Still fixed once the events are rolled up and Redis no longer has them.
    roll()
    get_redis().delete(used_key("storage_gb"))
    assert 'id="metric-fixed"' in text(staff_client.get(f"{URL}/{metric.id}/edit"))


def test_archive_refuses_new_events_and_restore_accepts_them_again(staff_client, ctx, tenant_world, client):
    metric = define("emails_sent", "count", name="Emails sent")
    token = tenant_world["a"]["token"]
    post(client, token, [event("e1", "emails_sent")])
    response = staff_client.form(f"{URL}/{metric.id}/archive")
    page = text(follow(staff_client, response))
    assert "Metric Emails sent archived: new events for it are refused." in page
    assert "archived" in page[page.index('id="metric-emails_sent"'):] and "Restore" in page
    assert audit_events("usage_metric.archived")
    refused = post(client, token, [event("e2", "emails_sent")])
    assert refused.status_code == 422
    assert "already archived" in text(follow(staff_client, staff_client.form(f"{URL}/{metric.id}/archive")))
    staff_client.form(f"{URL}/{metric.id}/restore")
    assert post(client, token, [event("e2", "emails_sent")]).get_json()["accepted"] == 1
    roll()
    assert current_metrics(client, token)["emails_sent"]["used"] == "2"


def test_metric_pages_are_for_staff_only(as_role, client, ctx):
    metric = define("emails_sent")
    assert client.get(URL).status_code == 302
    owner = as_role("owner")
    for url in (URL, f"{URL}/new", f"{URL}/{metric.id}/edit"):
        assert owner.get(url).status_code == 404, url
    assert owner.form(f"{URL}/{metric.id}/archive").status_code == 404
    assert not _metric().archived


def test_plans_set_a_quota_per_metric_and_usage_reports_against_it(staff_client, ctx, client, make):
    define("emails_sent", "count", unit="emails", name="Emails sent")
    define("storage_gb", "max", "gb", decimals=2, unit="GB")
    make.plans()
    pro = find_plan("pro")
    form = text(staff_client.get(f"/admin/plans/{pro.id}/edit"))
    assert 'id="quota-emails_sent"' in form and 'id="quota-storage_gb"' in form
    plans_service.update_plan(STAFF, pro.id, {"quotas": {
        "api_calls": {"included": 100_000, "overage": "0.1"},
        "emails_sent": {"included": 100, "overage": "1"},  # 1 cent per email beyond 100
        "storage_gb": {"included": 10, "overage": None}}})
    tenant = make.tenant(plan="pro")
    _, token = make.api_key(tenant, scopes=["usage:read", "usage:write"])
    post(client, token, [event(f"e{i}", "emails_sent") for i in range(120)]
         + [event("s1", "storage_gb", gb="12.25")])
    roll()
    metrics = current_metrics(client, token)
    emails, storage = metrics["emails_sent"], metrics["storage_gb"]
    assert (emails["used"], emails["included"], emails["remaining"], emails["overage_units"]) == ("120", 100, "0",
                                                                                                  "20")
    assert (emails["amount"], emails["currency"], emails["unit"], emails["name"]) == (20, "USD", "emails",
                                                                                      "Emails sent")
    # No overage price: reported over the quota, never charged, never refused.
    assert (Decimal(storage["used"]), storage["included"], storage["amount"]) == (Decimal("12.25"), 10, 0)
    assert Decimal(storage["overage_units"]) == 0
    page = text(make_tenant_page(client, make, tenant))
    assert 'id="usage-metric-emails_sent"' in page and "quota reached" in page


def make_tenant_page(client, make, tenant):
    from tests.conftest import login

    owner = make.user()
    make.member(tenant, "owner", owner)
    login(client, owner.email, make.PASSWORD)
    return client.get(f"/t/{tenant.slug}/usage")
