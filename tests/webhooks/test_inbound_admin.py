"""Staff page /admin/webhooks, Inbound section: security counts for 7 days, the latest events with their
status (filtered in place), re-processing a failed event (audited), empty states, staff only."""

from __future__ import annotations

import pytest

from app.webhooks import inbound
from tests.admin.helpers import audit_events, text
from tests.webhooks.inbound_helpers import SECRET, events, post_stripe, queued, run_jobs, stripe_event


@pytest.fixture(autouse=True)
def configured(app, monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", SECRET)


@pytest.fixture
def three_events(ctx, client, monkeypatch):
    """One processed, one failed (handler error), one pending; plus a forged and a replayed request."""
    def fail(event):
        raise ValueError("no tenant for customer cus_42")

    monkeypatch.setitem(inbound.HANDLERS, "invoice.payment_failed", fail)
    post_stripe(client, stripe_event("evt_1Done", "invoice.paid"))
    post_stripe(client, stripe_event("evt_1Broken", "invoice.payment_failed"))
    run_jobs()
    post_stripe(client, stripe_event("evt_1Waiting", "customer.updated"))
    post_stripe(client, stripe_event("evt_1Done", "invoice.paid"))  # duplicate
    post_stripe(client, stripe_event(), signature="t=1,v1=deadbeef")  # forged
    return {e.provider_event_id: e for e in events()}


def test_empty_states_and_the_endpoint_to_give_stripe(staff_client):
    page = text(staff_client.get("/admin/webhooks/"))
    assert "<h2>Inbound</h2>" in page
    assert "http://127.0.0.1:5000/webhooks/stripe" in page or "/webhooks/stripe</code>" in page
    assert "No inbound webhook requests in the last 7 days" in page
    assert "No inbound events yet" in page
    assert 'id="inbound-not-configured"' not in page
    assert "No failed events" in text(staff_client.get("/admin/webhooks/?status=failed"))


def test_a_missing_secret_is_called_out(app, staff_client, monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", None)
    page = text(staff_client.get("/admin/webhooks/"))
    assert 'id="inbound-not-configured"' in page and "STRIPE_WEBHOOK_SECRET" in page


def test_counts_and_events_with_their_status(staff_client, three_events):
    page = text(staff_client.get("/admin/webhooks/"))
    total = page.split('id="inbound-counts-total"')[1].split("</tr>")[0]
    cells = [cell.split("<")[0] for cell in total.split('class="num">')[1:]]
    assert cells == ["3", "1", "1", "0", "0"]  # accepted, duplicates, signature failures, stale, invalid
    for provider_id, status in (("evt_1Done", "processed"), ("evt_1Broken", "failed"), ("evt_1Waiting", "pending")):
        event = three_events[provider_id]
        row = page.split(f'id="inbound-{event.id}"')[1].split("</tr>")[0]
        assert f'data-status="{status}"' in page.split(f'id="inbound-{event.id}"')[1][:40] and provider_id in row
        assert ("Re-process" in row) == (status == "failed")
    broken = page.split(f'id="inbound-{three_events["evt_1Broken"].id}"')[1].split("</tr>")[0]
    assert "ValueError: no tenant for customer cus_42" in broken and "retried automatically" in broken
    assert page.index("evt_1Waiting") < page.index("evt_1Broken") < page.index("evt_1Done")  # newest first


def test_the_status_filter_updates_the_events_in_place(staff_client, three_events):
    response = staff_client.get("/admin/webhooks/?section=inbound&status=failed", headers={"HX-Request": "true"})
    fragment = text(response)
    assert response.status_code == 200 and fragment.lstrip().startswith('<div id="inbound-events">')
    assert "<html" not in fragment and "evt_1Broken" in fragment
    assert "evt_1Done" not in fragment and "evt_1Waiting" not in fragment
    full = text(staff_client.get("/admin/webhooks/?status=pending"))  # without htmx: the whole page
    assert "<html" in full and "evt_1Waiting" in full.split('id="inbound-events"')[1]
    assert "evt_1Broken" not in full.split('id="inbound-events"')[1]
    processed = text(staff_client.get("/admin/webhooks/?section=inbound&status=processed",
                                      headers={"HX-Request": "true"}))
    assert "evt_1Done" in processed and "evt_1Broken" not in processed
    assert "Any status" in text(staff_client.get("/admin/webhooks/?status=bogus"))  # ignored, not an error


def test_staff_re_process_a_failed_event(staff_client, three_events, monkeypatch):
    broken = three_events["evt_1Broken"]
    handled: list[str] = []
    monkeypatch.setitem(inbound.HANDLERS, "invoice.payment_failed", lambda event: handled.append(event.id))
    response = staff_client.form(f"/admin/webhooks/inbound/{broken.id}/reprocess")
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/webhooks/#inbound-events")
    assert ("app.webhooks.inbound_jobs.process_inbound", (broken.id,)) in queued()
    [entry] = audit_events("webhooks.inbound_reprocessed")
    assert entry.actor_type == "staff" and entry.actor_id == staff_client.user.id and entry.tenant_id is None
    assert entry.targets[0]["id"] == broken.id
    assert entry.meta["provider_event_id"] == "evt_1Broken" and entry.meta["attempts"] == 2
    assert "queued to be processed again" in text(staff_client.get("/admin/webhooks/"))

    run_jobs()
    assert handled == [broken.id]
    [event] = [e for e in events() if e.id == broken.id]
    assert event.status == "processed" and event.attempts == 3
    page = text(staff_client.get("/admin/webhooks/"))
    assert 'data-status="processed"' in page.split(f'id="inbound-{broken.id}"')[1][:40]


def test_only_failed_events_can_be_re_processed(staff_client, three_events):
    for provider_id, message in (("evt_1Done", "already been processed"), ("evt_1Waiting", "has not failed")):
        staff_client.form(f"/admin/webhooks/inbound/{three_events[provider_id].id}/reprocess")
        assert message in text(staff_client.get("/admin/webhooks/"))
    staff_client.form("/admin/webhooks/inbound/iwh_01jzzzzzzzzzzzzzzzzzzzzzzz/reprocess")
    assert "No such inbound event" in text(staff_client.get("/admin/webhooks/"))
    assert not any(job for job in queued() if job[1][0] != three_events["evt_1Waiting"].id)
    assert audit_events("webhooks.inbound_reprocessed") == []


def test_re_process_over_htmx_answers_with_a_location(staff_client, three_events):
    broken = three_events["evt_1Broken"]
    response = staff_client.form(f"/admin/webhooks/inbound/{broken.id}/reprocess", htmx=True)
    assert response.status_code == 204 and "/admin/webhooks/" in response.headers["HX-Location"]


def test_the_page_is_for_staff_only_and_in_the_nav(as_role, staff_client, client):
    assert as_role("owner").get("/admin/webhooks/").status_code == 404
    assert client.get("/admin/webhooks/").status_code == 302
    nav = text(staff_client.get("/admin/webhooks/")).split('aria-label="Staff"')[1].split("</nav>")[0]
    assert 'href="/admin/webhooks/" aria-current="page">Webhooks' in nav
