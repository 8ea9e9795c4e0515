"""Staff tenant pages: the list (search, filters, sort, pages), create, detail and edit."""

from __future__ import annotations

import json
import re

import pytest

from app.audit.models import AuditEvent
from app.extensions import db
from app.plans import queries as plan_queries
from app.plans import service as plans_service
from app.tenancy import queries
from app.tenancy import service as tenancy_service
from app.tenancy.models import Invitation, Tenant
from tests.admin.helpers import audit_events, follow, fresh, is_fragment, text


def slugs_in(response) -> list[str]:
    """Tenant slugs in the list's table, in display order."""
    return re.findall(r"<td><code>([a-z0-9-]+)</code></td>", text(response))


@pytest.fixture
def catalogue(make):
    """Five tenants with different statuses, plans and tags."""
    make.tenant(slug="alpha", name="Alpha Labs", plan="free", tags=["beta"], billing_email="pay@alpha.example.com")
    make.tenant(slug="bravo", name="Bravo Media", plan="pro", tags=["vip", "beta"])
    make.tenant(slug="charlie", name="Charlie Cloud", plan="enterprise")
    suspended = make.tenant(slug="delta", name="Delta Health", plan="pro", tags=["vip"])
    tenancy_service.set_status(make.system, suspended.id, "suspended", "unpaid")
    closed = make.tenant(slug="echo", name="Echo Robotics", plan="free")
    tenancy_service.set_status(make.system, closed.id, "closed")
    return {p: queries.get_by_slug(p) for p in ("alpha", "bravo", "charlie", "delta", "echo")}


class TestList:
    def test_lists_tenants_by_name(self, staff_client, catalogue):
        response = staff_client.get("/admin/tenants/")
        assert response.status_code == 200
        assert slugs_in(response) == ["alpha", "bravo", "charlie", "delta", "echo"]
        assert "Delta Health" in text(response) and "5 in all" in text(response)

    def test_filters_by_status_plan_and_tag(self, staff_client, catalogue):
        assert slugs_in(staff_client.get("/admin/tenants/?status=suspended")) == ["delta"]
        assert slugs_in(staff_client.get("/admin/tenants/?status=closed")) == ["echo"]
        pro = catalogue["bravo"].plan_id
        assert slugs_in(staff_client.get(f"/admin/tenants/?plan={pro}")) == ["bravo", "delta"]
        assert slugs_in(staff_client.get("/admin/tenants/?tag=vip")) == ["bravo", "delta"]
        assert slugs_in(staff_client.get(f"/admin/tenants/?tag=vip&status=active&plan={pro}")) == ["bravo"]

    def test_searches_name_slug_billing_email_and_id(self, staff_client, catalogue):
        assert slugs_in(staff_client.get("/admin/tenants/?q=cloud")) == ["charlie"]
        assert slugs_in(staff_client.get("/admin/tenants/?q=pay@alpha")) == ["alpha"]
        assert slugs_in(staff_client.get(f"/admin/tenants/?q={catalogue['echo'].id}")) == ["echo"]
        none = staff_client.get("/admin/tenants/?q=zzz")
        assert slugs_in(none) == [] and "No tenant matches these filters" in text(none)

    def test_sorts(self, staff_client, catalogue):
        by_name_desc = slugs_in(staff_client.get("/admin/tenants/?sort=-name"))
        assert by_name_desc == ["echo", "delta", "charlie", "bravo", "alpha"]
        assert slugs_in(staff_client.get("/admin/tenants/?sort=-created"))[0] == "echo"
        assert slugs_in(staff_client.get("/admin/tenants/?sort=status"))[-2:] == ["echo", "delta"]
        page = text(staff_client.get("/admin/tenants/?sort=name&tag=vip"))
        assert "sort=-name" in page and "tag=vip" in page  # the header link flips the order, keeps filters

    def test_unknown_filters_are_ignored_not_errors(self, staff_client, catalogue):
        response = staff_client.get("/admin/tenants/?status=bogus&sort=drop+table&page=abc")
        assert response.status_code == 200
        assert len(slugs_in(response)) == 5

    def test_pages_of_25(self, staff_client, make):
        for n in range(27):
            make.tenant(slug=f"t-{n:02d}", name=f"T {n:02d}")
        first = staff_client.get("/admin/tenants/")
        assert len(slugs_in(first)) == 25 and "Page 1 of 2" in text(first)
        second = staff_client.get("/admin/tenants/?page=2")
        assert slugs_in(second) == ["t-25", "t-26"]
        assert "← Previous" in text(second)

    def test_htmx_filter_returns_only_the_table(self, staff_client, catalogue):
        response = staff_client.htmx_get("/admin/tenants/?tag=beta")
        assert response.status_code == 200
        assert is_fragment(response, "tenants-table")
        assert slugs_in(response) == ["alpha", "bravo"]
        assert "HX-Request" in response.headers["Vary"]
        boosted = staff_client.get("/admin/tenants/", headers={"HX-Request": "true", "HX-Boosted": "true"})
        assert "<html" in text(boosted)  # a boosted navigation gets the whole page

    def test_empty_state_says_what_to_do(self, staff_client, make):
        make.plans()
        page = text(staff_client.get("/admin/tenants/"))
        assert "No tenants yet" in page and "/admin/tenants/new" in page


class TestCreate:
    def test_bad_input_is_422_with_messages_and_changes_nothing(self, staff_client, make):
        make.plans()
        before = db.session.query(AuditEvent).count()
        response = staff_client.form("/admin/tenants/new", {"name": "", "slug": "-Bad-", "country": "XX",
                                                             "billing_email": "nope", "plan_id": "free"})
        assert response.status_code == 422
        page = text(response)
        for message in ("Enter a name.", "3–40 characters", "two-letter ISO 3166", 'id="e-billing_email"'):
            assert message in page
        assert 'value="XX"' in page  # what was typed is kept
        fresh()
        assert db.session.query(Tenant).count() == 0
        assert db.session.query(AuditEvent).count() == before

    def test_bad_owner_email_is_a_field_error(self, staff_client, make):
        make.plans()
        response = staff_client.form("/admin/tenants/new", {"name": "Acme", "slug": "acme", "plan_id": "free",
                                                             "owner_email": "not an email"})
        assert response.status_code == 422
        assert 'id="e-owner_email"' in text(response)
        fresh()
        assert queries.get_by_slug("acme") is None
        assert audit_events("tenant.created") == []

    def test_create_with_a_new_owner_shows_the_invitation_link_once(self, staff_client, make):
        make.plans()
        response = staff_client.form("/admin/tenants/new", {
            "name": "Acme Corp", "slug": "acme", "country": "de", "billing_email": "Billing@Acme.example.com",
            "plan_id": "pro", "tags": "VIP, beta", "owner_email": "boss@acme.example.com"})
        page = follow(staff_client, response)
        fresh()
        tenant = queries.get_by_slug("acme")
        assert response.headers["Location"] == f"/admin/tenants/{tenant.id}"
        assert (tenant.name, tenant.country, tenant.billing_email, tenant.tags, tenant.plan.code) == (
            "Acme Corp", "DE", "billing@acme.example.com", ["beta", "vip"], "pro")
        link = re.search(r'id="invite-link-url">([^<]+)<', text(page)).group(1)
        assert "/invitations/" in link
        invitation = db.session.query(Invitation).filter_by(tenant_id=tenant.id).one()
        assert (invitation.email, invitation.role) == ("boss@acme.example.com", "owner")
        assert staff_client.get(link.split("127.0.0.1:5000", 1)[-1]).status_code == 200  # the link works
        assert "invite-link-url" not in text(staff_client.get(f"/admin/tenants/{tenant.id}"))  # shown once
        created = audit_events("tenant.created", tenant_id=tenant.id)
        assert len(created) == 1 and created[0].actor_type == "staff"
        assert created[0].actor_id == staff_client.user.id
        assert audit_events("member.invited", tenant_id=tenant.id)

    def test_create_with_an_existing_user_makes_them_owner(self, staff_client, make):
        make.plans()
        user = make.user("existing@example.com")
        response = staff_client.form("/admin/tenants/new", {"name": "Beta", "plan_id": "free",
                                                             "owner_email": "existing@example.com"})
        page = text(follow(staff_client, response))
        fresh()
        tenant = queries.get_by_slug("beta")  # slug made from the name
        assert [(m.user_id, m.role) for m in queries.members(tenant.id)] == [(user.id, "owner")]
        assert "invite-link-url" not in page and "existing@example.com" in page

    def test_htmx_create_answers_hx_location_and_a_form_fragment_on_errors(self, staff_client, make):
        make.plans()
        bad = staff_client.form("/admin/tenants/new", {"name": "", "plan_id": "free"}, htmx=True)
        assert bad.status_code == 422 and is_fragment(bad, "tenant-form")
        assert "Enter a name." in text(bad)
        good = staff_client.form("/admin/tenants/new", {"name": "Gamma", "plan_id": "free"}, htmx=True)
        assert good.status_code == 204
        location = json.loads(good.headers["HX-Location"])
        fresh()
        assert location["path"] == f"/admin/tenants/{queries.get_by_slug('gamma').id}"
        assert location["headers"] == {"HX-Boosted": "true"}

    def test_archived_plans_cannot_be_chosen(self, staff_client, make):
        make.plans()
        legacy = plans_service.create_plan(make.system, {"code": "legacy", "name": "Legacy"})
        plans_service.set_archived(make.system, legacy.id, True)
        assert "Legacy" not in text(staff_client.get("/admin/tenants/new"))
        response = staff_client.form("/admin/tenants/new", {"name": "Old", "plan_id": legacy.id})
        assert response.status_code == 422 and "This plan is archived" in text(response)


class TestDetail:
    def test_shows_profile_members_invitations_keys_and_audit(self, staff_client, make):
        tenant = make.tenant(slug="acme", name="Acme Corp", tags=["vip"])
        owner = make.member(tenant, "owner", make.user("owner@acme.example.com"))
        from app.tenancy import members

        members.invite(make.system, tenant.id, "newbie@example.com", "viewer")
        key, plaintext = make.api_key(tenant, ["tenant:read"], name="Production backend")
        page = text(staff_client.get(f"/admin/tenants/{tenant.id}"))
        assert "Acme Corp" in page and tenant.id in page and "vip" in page and "Pro" in page
        assert owner.user.email in page
        assert "newbie@example.com" in page and "viewer" in page
        assert "Production backend" in page and key.masked in page
        assert plaintext not in page
        assert "tenant.created" in page and "api_key.created" in page

    def test_archived_current_plan_stays_selectable_in_edit(self, staff_client, make):
        tenant = make.tenant(slug="acme", plan="free")
        plans_service.set_archived(make.system, tenant.plan_id, True)
        page = text(staff_client.get(f"/admin/tenants/{tenant.id}/edit"))
        assert "Free (archived)" in page
        assert re.search(r'<option value="%s" selected>' % tenant.plan_id, page)


class TestEdit:
    def test_prefills_the_form(self, staff_client, make):
        tenant = make.tenant(slug="acme", name="Acme Corp", tags=["vip", "beta"], billing_email="b@acme.example.com")
        page = text(staff_client.get(f"/admin/tenants/{tenant.id}/edit"))
        assert 'value="Acme Corp"' in page and 'value="beta, vip"' in page and 'value="b@acme.example.com"' in page

    def test_bad_input_is_422_and_changes_nothing(self, staff_client, make):
        tenant = make.tenant(slug="acme", name="Acme Corp")
        make.tenant(slug="taken")
        response = staff_client.form(f"/admin/tenants/{tenant.id}/edit", {
            "name": "Renamed", "slug": "taken", "country": "US", "plan_id": tenant.plan_id, "tags": "bad tag!"})
        assert response.status_code == 422
        assert "Another tenant has this slug." in text(response) and "Tags use a-z" in text(response)
        assert 'value="Renamed"' in text(response)
        fresh()
        db.session.refresh(tenant)
        assert (tenant.name, tenant.slug, tenant.tags) == ("Acme Corp", "acme", [])
        assert audit_events("tenant.updated") == []

    def test_saves_and_audits_old_and_new_values(self, staff_client, make):
        tenant = make.tenant(slug="acme", name="Acme Corp", plan="pro")
        free = plan_queries.find_plan("free")
        response = staff_client.form(f"/admin/tenants/{tenant.id}/edit", {
            "name": "Acme Inc", "slug": "acme-inc", "country": "GB", "billing_email": "", "plan_id": free.id,
            "tags": "partner"})
        page = text(follow(staff_client, response))
        assert "Saved Acme Inc." in page
        fresh()
        db.session.refresh(tenant)
        assert (tenant.name, tenant.slug, tenant.country, tenant.plan.code, tenant.tags) == (
            "Acme Inc", "acme-inc", "GB", "free", ["partner"])
        [event] = audit_events("tenant.updated", tenant_id=tenant.id)
        assert event.changes["name"] == ["Acme Corp", "Acme Inc"]
        assert event.changes["tags"] == [[], ["partner"]]
        assert event.actor_id == staff_client.user.id
