"""Tenants: validation with per-field errors, edits with audit diffs and outbox events, status changes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth import apikeys
from app.errors import Conflict, Forbidden, Invalid
from app.events.models import OutboxEvent
from app.extensions import db
from app.plans import queries as plan_queries
from app.plans import service as plans_service
from app.security import Actor
from app.tenancy import queries
from app.tenancy import service as tenancy_service
from app.tenancy.models import Tenant, TenantTag

STAFF = Actor(type="staff", id="usr_01hzzzzzzzzzzzzzzzzzzzzzzz", display="boss@example.com")


def counts() -> tuple[int, int, int, int]:
    return tuple(db.session.scalar(select(func.count()).select_from(model))
                 for model in (Tenant, TenantTag, AuditEvent, OutboxEvent))


def events(tenant_id: str, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant_id,
                                                            AuditEvent.action == action)))


def outbox(tenant_id: str, event_type: str) -> list[OutboxEvent]:
    return list(db.session.scalars(select(OutboxEvent).where(OutboxEvent.tenant_id == tenant_id,
                                                             OutboxEvent.type == event_type)))


class TestCreate:
    def test_create_with_defaults(self, make):
        make.plans()
        tenant, link = tenancy_service.create_tenant(STAFF, {"name": "Acme Rockets GmbH", "tags": "Beta, VIP ,beta"})
        assert link is None
        assert tenant.id.startswith("ten_")
        assert (tenant.slug, tenant.country, tenant.status, tenant.plan.code) == ("acme-rockets-gmbh", "US", "active",
                                                                                 "free")
        assert tenant.tags == ["beta", "vip"]
        [created] = events(tenant.id, "tenant.created")
        assert created.changes["name"] == [None, "Acme Rockets GmbH"]
        assert created.changes["tags"] == [None, ["beta", "vip"]]
        assert created.seq == 1 and created.actor_display == "boss@example.com"

    def test_every_bad_field_is_reported_at_once_and_nothing_changes(self, make):
        make.plans()
        before = counts()
        with pytest.raises(Invalid) as exc:
            tenancy_service.create_tenant(STAFF, {"name": "", "slug": "-Bad Slug-", "country": "XX",
                                                  "plan_id": "platinum", "tags": ["ok", "Not OK!"],
                                                  "billing_email": "not-an-email"})
        assert set(exc.value.errors) == {"name", "slug", "country", "plan_id", "tags", "billing_email"}
        db.session.rollback()
        assert counts() == before

    @pytest.mark.parametrize(
        ("slug", "message"),
        [("ab", "3–40"), ("a" * 41, "3–40"), ("-abc", "3–40"), ("abc-", "3–40"), ("ab_c", "3–40"),
         ("admin", "reserved"), ("api", "reserved"), ("login", "reserved")],
    )
    def test_slug_rules(self, make, slug, message):
        make.plans()
        with pytest.raises(Invalid) as exc:
            tenancy_service.create_tenant(STAFF, {"name": "Some Co", "slug": slug})
        assert message in exc.value.errors["slug"]

    def test_duplicate_slug_case_insensitive(self, make):
        make.tenant(slug="taken-co")
        before = counts()
        with pytest.raises(Invalid) as exc:
            tenancy_service.create_tenant(STAFF, {"name": "Other", "slug": "Taken-Co"})
        assert "Another tenant" in exc.value.errors["slug"]
        db.session.rollback()
        assert counts() == before

    @pytest.mark.parametrize("country", ["XX", "USA", "U", "12", "zz"])
    def test_country_must_be_iso_3166(self, make, country):
        make.plans()
        with pytest.raises(Invalid) as exc:
            tenancy_service.create_tenant(STAFF, {"name": "Some Co", "country": country})
        assert "country" in exc.value.errors

    def test_country_is_uppercased(self, make):
        make.plans()
        tenant, _ = tenancy_service.create_tenant(STAFF, {"name": "Some Co", "country": " de "})
        assert tenant.country == "DE"

    def test_archived_plan_cannot_be_chosen(self, make):
        make.plans()
        enterprise = plan_queries.find_plan("enterprise")
        plans_service.set_archived(STAFF, enterprise.id, True)
        with pytest.raises(Invalid) as exc:
            tenancy_service.create_tenant(STAFF, {"name": "Some Co", "plan_id": "enterprise"})
        assert "archived" in exc.value.errors["plan_id"]

    @pytest.mark.parametrize("tags", [["a" * 41], [f"t{n}" for n in range(21)], ["has space"], ["-lead"]])
    def test_tag_rules(self, make, tags):
        make.plans()
        with pytest.raises(Invalid) as exc:
            tenancy_service.create_tenant(STAFF, {"name": "Some Co", "tags": tags})
        assert "tags" in exc.value.errors

    def test_owner_email_of_a_new_person_makes_an_invitation(self, make):
        make.plans()
        tenant, link = tenancy_service.create_tenant(STAFF, {"name": "Some Co"}, owner_email="Founder@Example.com")
        assert link and "/invitations/" in link
        [invitation] = queries.pending_invitations(tenant.id)
        assert (invitation.email, invitation.role) == ("founder@example.com", "owner")

    def test_owner_email_of_an_existing_user_makes_a_member(self, make):
        user = make.user("founder@example.com")
        make.plans()
        tenant, link = tenancy_service.create_tenant(STAFF, {"name": "Some Co"}, owner_email="founder@example.com")
        assert link is None
        [member] = queries.members(tenant.id)
        assert (member.user_id, member.role) == (user.id, "owner")

    def test_bad_owner_email_rolls_back_the_tenant(self, make):
        make.plans()
        before = counts()
        with pytest.raises(Invalid):
            tenancy_service.create_tenant(STAFF, {"name": "Some Co"}, owner_email="nope")
        db.session.rollback()
        assert counts() == before


class TestUpdate:
    def test_changes_are_audited_as_old_new_pairs_and_published(self, make):
        tenant = make.tenant(slug="acme", name="Acme", tags=["beta", "vip"])
        tenancy_service.update_tenant(STAFF, tenant.id, {"name": "Acme Inc", "tags": "vip, partner",
                                                         "billing_email": "AP@Acme.example.com", "country": "US"})
        [updated] = events(tenant.id, "tenant.updated")
        assert updated.changes == {
            "name": ["Acme", "Acme Inc"],
            "tags": [["beta", "vip"], ["partner", "vip"]],
            "billing_email": ["", "ap@acme.example.com"],
        }
        [published] = outbox(tenant.id, "tenant.updated")
        assert published.payload["changed"] == ["billing_email", "name", "tags"]
        assert published.payload["tenant"]["name"] == "Acme Inc"
        db.session.expire_all()
        assert queries.get_tenant(tenant.id).tags == ["partner", "vip"]

    def test_plan_change_alone_is_a_plan_changed_event(self, make):
        tenant = make.tenant(plan="free")
        pro = plan_queries.find_plan("pro")
        tenancy_service.update_tenant(STAFF, tenant.id, {"plan_id": "pro"})
        [changed] = events(tenant.id, "tenant.plan_changed")
        assert changed.changes == {"plan_id": [plan_queries.find_plan("free").id, pro.id]}
        assert len(outbox(tenant.id, "tenant.updated")) == 1

    def test_no_change_writes_nothing(self, make):
        tenant = make.tenant(name="Same")
        before = counts()
        tenancy_service.update_tenant(STAFF, tenant.id, {"name": "Same", "status": "closed", "id": "ten_x"})
        assert counts() == before
        assert queries.get_tenant(tenant.id).status == "active"  # not editable this way

    def test_invalid_edit_changes_nothing(self, make):
        tenant = make.tenant(slug="keep-me", name="Keep")
        make.tenant(slug="other-co")
        before = counts()
        with pytest.raises(Invalid) as exc:
            tenancy_service.update_tenant(STAFF, tenant.id, {"name": "New name", "slug": "other-co"})
        assert set(exc.value.errors) == {"slug"}
        db.session.rollback()
        assert counts() == before
        assert queries.get_tenant(tenant.id).name == "Keep"

    def test_keeping_its_own_slug_is_fine(self, make):
        tenant = make.tenant(slug="mine")
        tenancy_service.update_tenant(STAFF, tenant.id, {"slug": "mine", "name": "Renamed"})
        assert queries.get_tenant(tenant.id).slug == "mine"


class TestStatus:
    def test_suspend_resume_close(self, make):
        tenant = make.tenant()
        _, plaintext = make.api_key(tenant)
        tenancy_service.set_status(STAFF, tenant.id, "suspended", "  Payment failed ")
        assert (tenant.status, tenant.status_reason) == ("suspended", "Payment failed")
        with pytest.raises(Forbidden):
            apikeys.authenticate(plaintext)
        tenancy_service.set_status(STAFF, tenant.id, "active")
        assert apikeys.authenticate(plaintext)
        tenancy_service.set_status(STAFF, tenant.id, "closed", "Customer left")
        with pytest.raises(Forbidden):
            apikeys.authenticate(plaintext)

        suspended = events(tenant.id, "tenant.suspended")[0]
        assert suspended.changes == {"status": ["active", "suspended"]}
        assert suspended.meta == {"reason": "Payment failed"} and suspended.severity == "warning"
        assert events(tenant.id, "tenant.resumed")[0].severity == "info"
        assert events(tenant.id, "tenant.closed")[0].changes == {"status": ["active", "closed"]}
        assert len(outbox(tenant.id, "tenant.updated")) == 3

    def test_same_status_is_a_conflict_and_unknown_is_invalid(self, make):
        tenant = make.tenant()
        with pytest.raises(Conflict):
            tenancy_service.set_status(STAFF, tenant.id, "active")
        with pytest.raises(Invalid):
            tenancy_service.set_status(STAFF, tenant.id, "deleted")
        with pytest.raises(Invalid):
            tenancy_service.set_status(STAFF, tenant.id, "suspended", "x" * 301)
        db.session.rollback()
        assert queries.get_tenant(tenant.id).status == "active"
