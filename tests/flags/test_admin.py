"""Staff flag pages: the list (search, tag, stale), creating a flag (errors per field, then saved), the
on/off switch (HTMX row and plain POST), rules as JSON validated per rule, "evaluate for a tenant",
scheduled changes, archive, and the change history — for staff only."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app import clock
from app.extensions import db
from app.flags import queries
from app.flags.models import FlagSchedule

BASE = "/admin/flags"


def test_only_staff_see_flags(client, as_role, create):
    create("beta")
    assert client.get(BASE).status_code in (302, 303, 404)
    owner = as_role("owner")
    assert owner.get(BASE).status_code == 404
    assert owner.get(f"{BASE}/beta").status_code == 404
    assert owner.form(f"{BASE}/beta", {"do": "toggle"}).status_code in (403, 404)
    assert queries.get_flag("beta").enabled is False


def test_list_search_tags_and_stale(staff_client, create):
    assert "No flags yet" in staff_client.get(BASE).get_data(as_text=True)
    with clock.travel(clock.now() - timedelta(days=40)):
        create("old-banner", description="Holiday banner", tags=["ui"])
    create("new-checkout", description="The new checkout", tags=["checkout", "beta"], owner="payments")
    page = staff_client.get(BASE).get_data(as_text=True)
    assert 'id="flag-old-banner"' in page and 'id="flag-new-checkout"' in page
    assert "stale" in page and 'href="/admin/flags"' in page  # the nav link
    found = staff_client.get(BASE + "?q=holiday").get_data(as_text=True)
    assert 'id="flag-old-banner"' in found and 'id="flag-new-checkout"' not in found
    tagged = staff_client.get(BASE + "?tag=checkout").get_data(as_text=True)
    assert 'id="flag-new-checkout"' in tagged and 'id="flag-old-banner"' not in tagged
    stale = staff_client.get(BASE + "?stale=1").get_data(as_text=True)
    assert 'id="flag-old-banner"' in stale and 'id="flag-new-checkout"' not in stale
    assert "No flags match" in staff_client.get(BASE + "?q=nothing-like-this").get_data(as_text=True)


def test_create_with_bad_then_good_input(staff_client):
    bad = staff_client.form(BASE, {"key": "Bad Key", "type": "number", "default_value": "ten",
                                   "description": "typed text", "tags": "a, b"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert 'id="e-default_value"' in html and "A number" in html and 'value="typed text"' in html
    bad_key = staff_client.form(BASE, {"key": "Bad Key", "type": "number", "default_value": "10"})
    assert bad_key.status_code == 422 and 'id="e-key"' in bad_key.get_data(as_text=True)
    bad_json = staff_client.form(BASE, {"key": "limits", "type": "json", "default_json": "{oops"})
    assert bad_json.status_code == 422 and "Not valid JSON" in bad_json.get_data(as_text=True)
    good = staff_client.form(BASE, {"key": "limits", "type": "json", "default_json": '{"max": 5}',
                                    "description": "Limits", "tags": "limits, beta", "owner": "core"})
    assert good.status_code == 303 and good.headers["Location"].endswith(f"{BASE}/limits")
    flag = queries.get_flag("limits")
    assert (flag.type, flag.default_value, sorted(flag.tags), flag.owner, flag.enabled) == (
        "json", {"max": 5}, ["beta", "limits"], "core", False)
    again = staff_client.form(BASE, {"key": "limits", "type": "boolean", "default_boolean": "true"})
    assert again.status_code == 422 and "exists" in again.get_data(as_text=True)


def test_toggle_with_htmx_and_without(staff_client, create):
    create("beta")
    row = staff_client.form(f"{BASE}/beta", {"do": "toggle"}, htmx=True)
    html = row.get_data(as_text=True)
    assert row.status_code == 200 and html.strip().startswith("<tr") and 'id="flag-beta"' in html
    assert "Switch off" in html and "<html" not in html
    assert queries.get_flag("beta").enabled is True
    assert staff_client.form(f"{BASE}/beta", {"do": "explode"}).status_code == 404
    plain = staff_client.form(f"{BASE}/beta", {"do": "toggle"})
    assert plain.status_code == 303 and plain.headers["Location"].endswith(BASE)
    db.session.expire_all()
    assert queries.get_flag("beta").enabled is False


def test_settings_and_rules(staff_client, create):
    create("limit", type="number", default_value=10)
    url = f"{BASE}/limit"
    assert staff_client.form(url, {"do": "settings", "description": "API limit", "default_value": "12",
                                                 "tags": "api", "owner": "core", "version": "1"}).status_code == 303
    db.session.expire_all()
    assert (queries.get_flag("limit").default_value, queries.get_flag("limit").tags) == (12, ["api"])
    stale_version = staff_client.form(url, {"do": "settings", "default_value": "13", "version": "1"})
    assert stale_version.status_code == 409 and "changed meanwhile" in stale_version.get_data(as_text=True)
    text = '[{"type": "tenants", "tenant_ids": [], "value": 1}, {"type": "rollout", "percentage": 150, "value": 5}]'
    bad = staff_client.form(url, {"do": "rules", "rules": text})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "rules[1].percentage" in html and "150" in html
    broken = staff_client.form(url, {"do": "rules", "rules": "[{"})
    assert broken.status_code == 422 and "Not valid JSON" in broken.get_data(as_text=True)
    good = '[{"type": "rollout", "percentage": 50, "value": 20}]'
    assert staff_client.form(url, {"do": "rules", "rules": good}).status_code == 303
    db.session.expire_all()
    assert queries.get_flag("limit").rules[0]["percentage"] == 50


def test_evaluate_for_a_tenant_by_slug(staff_client, create, make):
    tenant = make.tenant(slug="acme-flags", name="Acme Flags")
    create("beta", enabled=True, rules=[{"type": "tenants", "tenant_ids": [tenant.id], "value": True}])
    fragment = staff_client.htmx_get(f"{BASE}/beta?tenant=acme-flags")
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and 'id="evaluation"' in html and "<html" not in html
    assert "true" in html and "TARGETING_MATCH" in html and "Acme Flags" in html
    full = staff_client.get(f"{BASE}/beta?tenant={tenant.id}").get_data(as_text=True)
    assert "TARGETING_MATCH" in full and "Rules" in full
    missing = staff_client.htmx_get(f"{BASE}/beta?tenant=nobody")
    assert missing.status_code == 422 and "No tenant" in missing.get_data(as_text=True)


def test_schedule_add_and_cancel(staff_client, create):
    create("beta", rules=[{"type": "rollout", "percentage": 10, "value": True}])
    url = f"{BASE}/beta"
    bad = staff_client.form(url, {"do": "schedule", "at": "2099-01-01T09:00", "action": "set_rollout",
                                  "payload": '{"percentage": 101}'})
    assert bad.status_code == 422 and "payload.percentage" in bad.get_data(as_text=True)
    past = staff_client.form(url, {"do": "schedule", "at": "2001-01-01T09:00", "action": "enable"})
    assert past.status_code == 422 and "future" in past.get_data(as_text=True)
    assert staff_client.form(url, {"do": "schedule", "at": "2099-01-01T09:00", "action": "set_rollout",
                                   "payload": '{"percentage": 50}'}).status_code == 303
    schedule = db.session.scalar(select(FlagSchedule))
    assert (schedule.action, schedule.payload["percentage"], schedule.at.hour) == ("set_rollout", 50, 9)
    page = staff_client.get(f"{BASE}/beta").get_data(as_text=True)
    assert f'id="schedule-{schedule.id}"' in page and "pending" in page
    assert staff_client.form(url, {"do": "cancel_schedule", "schedule": schedule.id}).status_code == 303
    db.session.expire_all()
    assert db.session.get(FlagSchedule, schedule.id).status == "canceled"


def test_archive_restore_delete_and_history(staff_client, create):
    create("old", description="Old thing")
    staff_client.form(f"{BASE}/old", {"do": "toggle"})
    page = staff_client.get(f"{BASE}/old").get_data(as_text=True)
    assert "flag.enabled" in page and "flag.created" in page and 'data-confirm="Archive old?' in page
    assert staff_client.form(f"{BASE}/old", {"do": "archive"}).status_code == 303
    db.session.expire_all()
    assert queries.find_flag("old").archived
    assert 'id="flag-old"' not in staff_client.get(BASE).get_data(as_text=True)
    assert 'id="flag-old"' in staff_client.get(BASE + "?archived=1").get_data(as_text=True)
    assert "flag.archived" in staff_client.get(f"{BASE}/old").get_data(as_text=True)
    assert staff_client.form(f"{BASE}/old", {"do": "restore"}).status_code == 303
    db.session.expire_all()
    assert not queries.find_flag("old").archived
    staff_client.form(f"{BASE}/old", {"do": "delete"})
    assert queries.find_flag("old") is not None  # a served flag is not deleted
    staff_client.form(f"{BASE}/old", {"do": "archive"})
    assert staff_client.form(f"{BASE}/old", {"do": "delete"}).headers["Location"].endswith(BASE)
    db.session.expire_all()
    assert queries.find_flag("old") is None


def test_the_tenant_page_shows_its_flag_values_and_staff_override_them(staff_client, create, make):
    from app import flags
    from app.flags.snapshot import holder

    tenant = make.tenant(slug="flagged", plan="pro")
    create("new-dashboard", type="boolean", default_value=False, enabled=True)
    create("theme", type="string", default_value="light", enabled=True)
    holder.refresh()
    page = staff_client.get(f"/admin/tenants/{tenant.id}").get_data(as_text=True)
    section = page[page.index('id="tenant-flags"'):]
    assert 'id="tenant-flag-new-dashboard"' in section and 'id="tenant-flag-theme"' in section
    assert "plan feature" in section  # Pro's features are served as flags too, without an override form
    answer = staff_client.form(f"{BASE}/new-dashboard", {"do": "override", "tenant_id": tenant.id, "value": "true"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/admin/tenants/{tenant.id}#tenant-flags")
    holder.refresh()
    assert flags.is_enabled("new-dashboard", tenant) is True
    other = make.tenant(slug="unflagged")
    assert flags.is_enabled("new-dashboard", other) is False
    page = staff_client.get(f"/admin/tenants/{tenant.id}").get_data(as_text=True)
    row = page[page.index('id="tenant-flag-new-dashboard"'):page.index('id="tenant-flag-theme"')]
    assert "overridden" in row and "Remove" in row
    bad = staff_client.form(f"{BASE}/new-dashboard", {"do": "override", "tenant_id": tenant.id, "value": "maybe"})
    assert bad.status_code == 303  # refused with the reason as a toast; nothing changes
    assert staff_client.form(f"{BASE}/new-dashboard", {"do": "remove_override", "tenant_id": tenant.id}
                             ).status_code == 303
    holder.refresh()
    assert flags.is_enabled("new-dashboard", tenant) is False
    from app.audit.models import AuditEvent

    assert any("override" in action for action in db.session.scalars(select(AuditEvent.action)))


def test_tenant_users_see_the_features_their_plan_includes(as_role, tenant_world):
    page = as_role("viewer").get("/t/tenant-a/").get_data(as_text=True)
    features = page[page.index('id="home-features"'):]
    assert "<code>webhooks</code>" in features.split("</dd>")[0]
