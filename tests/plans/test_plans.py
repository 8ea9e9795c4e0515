"""The plan catalogue: the default plans, validation, edits, archive and restore, all audited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.money import Money
from app.plans import queries
from app.plans import service as plans
from app.plans.models import Plan
from app.security import Actor

STAFF = Actor(type="staff", id="usr_01hzzzzzzzzzzzzzzzzzzzzzzz", display="boss@example.com")


def plan_events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def plan_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Plan))


class TestDefaults:
    def test_free_pro_enterprise_exactly_once(self, ctx):
        created = plans.ensure_default_plans(STAFF)
        assert [p.code for p in created] == ["free", "pro", "enterprise"]
        assert plans.ensure_default_plans(STAFF) == []
        assert plan_count() == 3
        assert len(plan_events("plan.created")) == 3
        assert [p.code for p in queries.list_plans()] == ["free", "pro", "enterprise"]

    def test_free_is_zero_dollars_with_a_hard_limit_of_1000_calls(self, ctx):
        plans.ensure_default_plans(STAFF)
        free = queries.find_plan("free")
        assert free.monthly == Money(0, "USD")
        assert free.included("api_calls") == 1000
        assert free.overage_price("api_calls") is None
        assert free.is_hard_limit("api_calls")
        assert free.max_members == 3

    def test_pro_is_49_a_month_with_100k_calls_and_a_tenth_of_a_cent_overage(self, ctx):
        plans.ensure_default_plans(STAFF)
        pro = queries.find_plan("pro")
        assert pro.monthly == Money(4900, "USD") and pro.monthly.format() == "$49.00"
        assert pro.included("api_calls") == 100_000
        assert pro.overage_price("api_calls") == Decimal("0.1")  # minor units: $0.001 per call
        assert not pro.is_hard_limit("api_calls")
        # 12,345 calls over the quota cost $12.345 → $12.34 with banker's rounding on the half cent.
        assert Money(1, "USD").times(pro.overage_price("api_calls") * 12_345) == Money(1234, "USD")
        assert Money(1, "USD").times(pro.overage_price("api_calls") * 1_000) == Money(100, "USD")

    def test_enterprise_is_500_dollars_and_unlimited(self, ctx):
        plans.ensure_default_plans(STAFF)
        enterprise = queries.find_plan("enterprise")
        assert enterprise.monthly == Money(50000, "USD") and enterprise.monthly.format() == "$500.00"
        assert enterprise.included("api_calls") is None
        assert not enterprise.is_hard_limit("api_calls")
        assert enterprise.max_members is None

    def test_find_plan_by_code_or_id(self, ctx):
        plans.ensure_default_plans(STAFF)
        pro = queries.find_plan(" PRO ")
        assert queries.find_plan(pro.id).code == "pro"
        assert queries.get_plan(pro.id).code == "pro"
        assert queries.find_plan("nope") is None
        with pytest.raises(NotFound):
            queries.get_plan("pro")  # get_plan takes ids only


VALID = {"code": "team", "name": "Team", "price_monthly": "1900", "quotas": {"api_calls": {"included": "5000",
                                                                                          "overage": "0.25"}}}


class TestClean:
    def test_valid_plan(self, ctx):
        plan = plans.create_plan(STAFF, VALID | {"currency": "eur", "features": "API, webhooks, api"})
        assert (plan.code, plan.currency, plan.price_monthly) == ("team", "EUR", 1900)
        assert plan.quotas == {"api_calls": {"included": 5000, "overage": "0.25"}}
        assert plan.features == ["api", "webhooks"]
        [created] = plan_events("plan.created")
        assert created.changes["code"] == [None, "team"] and created.tenant_id is None

    def test_every_bad_field_is_reported_and_nothing_is_created(self, ctx):
        before = plan_count()
        with pytest.raises(Invalid) as exc:
            plans.create_plan(STAFF, {"code": "Bad Code!", "name": "", "currency": "XYZ", "price_monthly": "12.50",
                                      "trial_days": 400, "max_members": 0, "features": ["ok", "Bad Feature"],
                                      "quotas": {"api_calls": {"included": "lots", "overage": "-1"}}})
        assert set(exc.value.errors) == {"code", "name", "currency", "price_monthly", "trial_days", "max_members",
                                         "features", "quotas.api_calls.included", "quotas.api_calls.overage"}
        db.session.rollback()
        assert plan_count() == before
        assert plan_events("plan.created") == []

    @pytest.mark.parametrize("value", [1.5, True, "1e3", "-1", "abc", 10**11])
    def test_prices_are_whole_minor_units_never_floats(self, ctx, value):
        with pytest.raises(Invalid) as exc:
            plans.create_plan(STAFF, VALID | {"price_monthly": value})
        assert "price_monthly" in exc.value.errors

    @pytest.mark.parametrize("overage", ["NaN", "Infinity", "-0.5", "1e10", "one"])
    def test_overage_must_be_a_sane_decimal(self, ctx, overage):
        with pytest.raises(Invalid) as exc:
            plans.create_plan(STAFF, VALID | {"quotas": {"api_calls": {"included": 1, "overage": overage}}})
        assert "quotas.api_calls.overage" in exc.value.errors

    def test_unknown_metric_and_bad_quota_shape(self, ctx):
        with pytest.raises(Invalid) as exc:
            plans.create_plan(STAFF, VALID | {"quotas": {"gigabytes": {"included": 1}}})
        assert "Unknown metric" in exc.value.errors["quotas"]
        with pytest.raises(Invalid) as exc:
            plans.create_plan(STAFF, VALID | {"quotas": ["api_calls"]})
        assert "quotas" in exc.value.errors

    def test_duplicate_code(self, ctx):
        plans.ensure_default_plans(STAFF)
        with pytest.raises(Invalid) as exc:
            plans.create_plan(STAFF, VALID | {"code": "PRO"})
        assert "Another plan" in exc.value.errors["code"]


class TestEdit:
    def test_update_audits_only_what_changed(self, ctx):
        plans.ensure_default_plans(STAFF)
        pro = queries.find_plan("pro")
        plans.update_plan(STAFF, pro.id, {"name": "Pro", "price_monthly": 5900, "max_members": "25",
                                          "archived_at": "ignored"})
        [updated] = plan_events("plan.updated")
        assert updated.changes == {"price_monthly": [4900, 5900], "max_members": [20, 25]}
        assert updated.targets == [{"type": "plan", "id": pro.id, "name": "pro"}]
        plans.update_plan(STAFF, pro.id, {"name": "Pro"})
        assert len(plan_events("plan.updated")) == 1

    def test_invalid_update_changes_nothing(self, ctx):
        plans.ensure_default_plans(STAFF)
        pro = queries.find_plan("pro")
        with pytest.raises(Invalid):
            plans.update_plan(STAFF, pro.id, {"code": "free", "name": "Pro Max"})
        db.session.rollback()
        assert (queries.find_plan("pro").name, plan_events("plan.updated")) == ("Pro", [])

    def test_rate_limits_stop_at_one_request_per_microsecond(self, ctx):
        plans.ensure_default_plans(STAFF)
        pro = queries.find_plan("pro")
        with pytest.raises(Invalid) as refused:
            plans.update_plan(STAFF, pro.id, {"rate_limit_per_second": 2_000_000, "rate_limit_per_minute": 10**8})
        assert refused.value.errors["rate_limit_per_second"] == "Enter a number from 1 to 1,000,000."
        assert "60,000,000" in refused.value.errors["rate_limit_per_minute"]
        db.session.rollback()
        plans.update_plan(STAFF, pro.id, {"rate_limit_per_second": 1_000_000})
        assert queries.find_plan("pro").rate_limit_per_second == 1_000_000

    def test_archive_and_restore(self, ctx):
        plans.ensure_default_plans(STAFF)
        free = queries.find_plan("free")
        plans.set_archived(STAFF, free.id, True)
        assert free.archived
        assert "free" not in [p.code for p in queries.list_plans(include_archived=False)]
        assert [p.code for p in queries.list_plans()][-1] == "free"  # archived last
        with pytest.raises(Conflict):
            plans.set_archived(STAFF, free.id, True)
        plans.set_archived(STAFF, free.id, False)
        assert not free.archived
        with pytest.raises(Conflict):
            plans.set_archived(STAFF, free.id, False)
        [archived], [restored] = plan_events("plan.archived"), plan_events("plan.restored")
        assert archived.changes["archived_at"][0] is None
        assert restored.changes["archived_at"][1] is None

    def test_archived_plan_stays_with_its_tenants(self, make):
        tenant = make.tenant(plan="free")
        from app.plans import queries as q
        from app.tenancy import service as tenancy_service

        plans.set_archived(STAFF, q.find_plan("free").id, True)
        tenancy_service.update_tenant(STAFF, tenant.id, {"plan_id": "free", "name": "Still on free"})
        assert tenant.plan.code == "free"
