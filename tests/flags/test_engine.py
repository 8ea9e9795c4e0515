"""Rule semantics, reasons, stickiness and distribution, evaluated on compiled flags (no database)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import mmh3
import pytest

from app.db import new_id
from app.flags.engine import Subject, bucket, compile_flag, compile_plan_feature, serves_one_value

PLANS = {"free": frozenset({"api"}), "pro": frozenset({"api", "webhooks", "sso"}), "enterprise": frozenset({"sso"})}


def tenant(plan="pro", status="active", country="US", tags=(), created=datetime(2025, 6, 1, tzinfo=UTC), tid=None):
    return Subject(tid or new_id("ten"), plan, status, country, frozenset(tags), created)


def flag(rules, flag_type="boolean", default=False, enabled=True, key="f"):
    return compile_flag(key, flag_type, enabled, default, rules, PLANS)


def test_reasons_static_default_disabled():
    t = tenant()
    assert flag([]).evaluate(t).reason == "STATIC"
    off_rule = [{"type": "tenants", "tenant_ids": [new_id("ten")], "value": True}]
    result = flag(off_rule).evaluate(t)
    assert (result.value, result.variant, result.reason) == (False, "default", "DEFAULT")
    disabled = flag([{"type": "rollout", "percentage": 100, "value": True}], enabled=False).evaluate(t)
    assert (disabled.value, disabled.reason) == (False, "DISABLED")


def test_tenant_override_and_first_match_wins():
    t = tenant(plan="free")
    rules = [{"type": "tenants", "tenant_ids": [t.id], "value": "override"},
             {"type": "segment", "constraints": [{"attribute": "plan", "operator": "equals", "value": "free"}],
              "value": "segment"},
             {"type": "rollout", "percentage": 100, "value": "everyone"}]
    compiled = flag(rules, "string", "default")
    first = compiled.evaluate(t)
    assert (first.value, first.reason, first.rule, first.variant) == ("override", "TARGETING_MATCH", 0, "rule-1")
    assert compiled.evaluate(tenant(plan="free")).value == "segment"
    other = compiled.evaluate(tenant(plan="pro"))
    assert (other.value, other.reason, other.rule) == ("everyone", "SPLIT", 2)


def test_plan_entitlement_reads_the_plans_features():
    compiled = flag([{"type": "plan", "value": True, "feature": "sso"}])
    assert compiled.evaluate(tenant(plan="pro")).value is True
    assert compiled.evaluate(tenant(plan="enterprise")).reason == "TARGETING_MATCH"
    assert compiled.evaluate(tenant(plan="free")).value is False
    implicit = compile_plan_feature("webhooks", PLANS)
    assert implicit.evaluate(tenant(plan="pro")).value is True
    assert implicit.evaluate(tenant(plan="free")).value is False


@pytest.mark.parametrize(("constraint", "yes", "no"), [
    ({"attribute": "plan", "operator": "in", "values": ["pro", "enterprise"]}, {"plan": "pro"}, {"plan": "free"}),
    ({"attribute": "plan", "operator": "not_in", "values": ["free"]}, {"plan": "pro"}, {"plan": "free"}),
    ({"attribute": "plan", "operator": "equals", "value": "free"}, {"plan": "free"}, {"plan": "pro"}),
    ({"attribute": "status", "operator": "in", "values": ["suspended"]}, {"status": "suspended"}, {}),
    ({"attribute": "status", "operator": "not_in", "values": ["suspended"]}, {}, {"status": "suspended"}),
    ({"attribute": "country", "operator": "in", "values": ["DE", "FR"]}, {"country": "DE"}, {"country": "US"}),
    ({"attribute": "country", "operator": "equals", "value": "US"}, {"country": "US"}, {"country": "DE"}),
    ({"attribute": "country", "operator": "not_in", "values": ["US"]}, {"country": "DE"}, {"country": "US"}),
    ({"attribute": "tags", "operator": "in", "values": ["beta", "vip"]}, {"tags": ["vip", "x"]}, {"tags": ["x"]}),
    ({"attribute": "tags", "operator": "not_in", "values": ["churn-risk"]}, {"tags": ["x"]}, {"tags": ["churn-risk"]}),
    ({"attribute": "tags", "operator": "equals", "value": "beta"}, {"tags": ["beta"]}, {"tags": []}),
    ({"attribute": "created_at", "operator": "before", "value": "2025-01-01T00:00:00+00:00"},
     {"created": datetime(2024, 12, 31, tzinfo=UTC)}, {"created": datetime(2025, 1, 2, tzinfo=UTC)}),
    ({"attribute": "created_at", "operator": "after", "value": "2025-01-01T00:00:00+00:00"},
     {"created": datetime(2025, 1, 2, tzinfo=UTC)}, {"created": datetime(2024, 12, 31, tzinfo=UTC)}),
])
def test_segment_operators(constraint, yes, no):
    compiled = flag([{"type": "segment", "constraints": [constraint], "value": True}])
    assert compiled.evaluate(tenant(**yes)).value is True
    assert compiled.evaluate(tenant(**no)).value is False


def test_segment_constraints_all_hold():
    rule = {"type": "segment", "value": True, "constraints": [
        {"attribute": "plan", "operator": "equals", "value": "pro"},
        {"attribute": "country", "operator": "in", "values": ["DE"]}]}
    compiled = flag([rule])
    assert compiled.evaluate(tenant(plan="pro", country="DE")).value is True
    assert compiled.evaluate(tenant(plan="pro", country="US")).value is False
    assert compiled.evaluate(tenant(plan="free", country="DE")).value is False


def test_rollout_hash_is_unleash_murmur3_of_key_and_tenant():
    tid = new_id("ten")
    assert bucket("checkout", tid) == mmh3.hash(f"checkout:{tid}", 0, signed=False) % 100
    compiled = flag([{"type": "rollout", "percentage": 37, "value": True}], key="checkout")
    assert compiled.evaluate(tenant(tid=tid)).value is (bucket("checkout", tid) < 37)


def test_rollout_is_sticky_when_raised_and_near_its_percentage():
    tenants = [tenant() for _ in range(10_000)]
    at10 = flag([{"type": "rollout", "percentage": 10, "value": True}], key="new-ui")
    at20 = flag([{"type": "rollout", "percentage": 20, "value": True}], key="new-ui")
    on10 = {t.id for t in tenants if at10.evaluate(t).value}
    on20 = {t.id for t in tenants if at20.evaluate(t).value}
    assert on10 <= on20  # raising 10% → 20% keeps the first 10%
    assert 900 <= len(on10) <= 1100
    assert 1850 <= len(on20) <= 2150
    assert all(at20.evaluate(t).reason == "SPLIT" for t in tenants if t.id in on20)
    # another flag buckets tenants independently
    other = flag([{"type": "rollout", "percentage": 10, "value": True}], key="other")
    assert {t.id for t in tenants if other.evaluate(t).value} != on10


def test_weighted_variants_split_near_their_weights_and_stick():
    rule = {"type": "variants", "variants": [{"name": "control", "value": "a", "weight": 50},
                                             {"name": "blue", "value": "b", "weight": 30},
                                             {"name": "green", "value": "c", "weight": 20},
                                             {"name": "never", "value": "d", "weight": 0}]}
    compiled = flag([rule], "string", "a", key="button")
    tenants = [tenant() for _ in range(10_000)]
    counts = Counter(compiled.evaluate(t).variant for t in tenants)
    assert set(counts) == {"control", "blue", "green"}
    assert 4700 <= counts["control"] <= 5300 and 2700 <= counts["blue"] <= 3300 and 1700 <= counts["green"] <= 2300
    again = flag([rule], "string", "a", key="button")
    assert all(compiled.evaluate(t) == again.evaluate(t) for t in tenants[:500])
    result = compiled.evaluate(tenants[0])
    assert result.reason == "SPLIT" and result.value == {"control": "a", "blue": "b", "green": "c"}[result.variant]


def test_zero_percent_never_matches_and_disabled_ignores_rules():
    t = tenant()
    assert flag([{"type": "rollout", "percentage": 0, "value": True}]).evaluate(t).reason == "DEFAULT"
    assert flag([{"type": "tenants", "tenant_ids": [t.id], "value": True}], enabled=False).evaluate(t).value is False


def test_serves_one_value():
    assert serves_one_value(False, False, [{"type": "rollout", "percentage": 50, "value": True}])
    assert serves_one_value(True, False, [])
    assert serves_one_value(True, False, [{"type": "rollout", "percentage": 100, "value": True},
                                          {"type": "plan", "value": False}]) is True
    assert not serves_one_value(True, False, [{"type": "rollout", "percentage": 50, "value": True}])
    assert serves_one_value(True, False, [{"type": "rollout", "percentage": 0, "value": True}])
    assert not serves_one_value(True, "a", [{"type": "variants", "variants": [
        {"name": "x", "value": "a", "weight": 50}, {"name": "y", "value": "b", "weight": 50}]}])


def test_rule_values_are_data_never_code():
    """Rules compile to Python: every value is a constant of the function, never text in its source."""
    sneaky = "x' or True or '"
    compiled = flag([{"type": "segment", "constraints": [{"attribute": "plan", "operator": "equals", "value": sneaky}],
                      "value": True},
                     {"type": "tenants", "tenant_ids": ["__import__('os').getpid()"], "value": True}])
    assert compiled.evaluate(tenant(plan="pro")).value is False
    assert compiled.evaluate(tenant(plan=sneaky)).value is True
