"""Compiling flags for fast evaluation, and evaluating them for a tenant.

A compiled flag is a tuple of steps, each a function subject → Evaluation | None, tried in order (first
match wins). Evaluations are built once at compile time, so evaluating allocates nothing but the rollout
hash's string. Rollouts are sticky: murmurhash3 (x86_32, seed 0) of "<flag key>:<tenant id>" mod 100,
as Unleash does, so raising 10% → 20% keeps the first 10%; weighted variants hash with another seed
(as Unleash's variant seed) so a tenant's variant does not follow its rollout bucket.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import mmh3

VARIANT_SEED = 86028157
REASONS = ("STATIC", "DEFAULT", "TARGETING_MATCH", "SPLIT", "DISABLED", "ERROR")


@dataclass(frozen=True, slots=True)
class Subject:
    """The tenant attributes rules look at."""

    id: str
    plan: str | None = None  # plan code
    status: str = "active"
    country: str = ""
    tags: frozenset[str] = frozenset()
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """An evaluation with OpenFeature's reason; `rule` is the index of the rule that matched (None: none)."""

    key: str
    value: Any
    variant: str
    reason: str
    rule: int | None = None
    error_code: str | None = None
    error_message: str | None = None


def subject_of(tenant: Any) -> Subject:
    """A Subject from a Tenant row, the key cache's CachedTenant, or a Subject."""
    if type(tenant) is Subject:
        return tenant
    plan = getattr(tenant, "plan", None)
    if plan is not None and not isinstance(plan, str):
        plan = plan.code
    return Subject(tenant.id, plan, getattr(tenant, "status", "active") or "active",
                   (getattr(tenant, "country", "") or "").upper(),
                   frozenset(getattr(tenant, "tags", ()) or ()), getattr(tenant, "created_at", None))


def bucket(flag_key: str, tenant_id: str, seed: int = 0) -> int:
    """0–99: the tenant's sticky bucket for this flag (Unleash's normalizedValue minus one)."""
    return mmh3.hash(f"{flag_key}:{tenant_id}", seed, signed=False) % 100


@dataclass(frozen=True, slots=True)
class CompiledFlag:
    key: str
    type: str
    enabled: bool
    default: Any
    evaluate: Callable[[Subject], Evaluation]  # the rules as one generated function (off: the default)
    implicit: bool = False  # a plan feature key with no flag of its own


def _variant_name(flag_type: str, rule: dict, index: int) -> str:
    if rule.get("variant"):
        return rule["variant"]
    if flag_type == "boolean":
        return "on" if rule["value"] else "off"
    return f"rule-{index + 1}"


class _Source:
    """Python source for one flag's rules. Every value, id and date is a named constant in the function's
    namespace, never text in the source; attribute names come from the validated, fixed list."""

    def __init__(self, flag_key: str) -> None:
        self.ns: dict[str, Any] = {"hash": mmh3.hash, "bisect_right": bisect.bisect_right, "PREFIX": f"{flag_key}:"}
        self.lines = ["def evaluate(s):", "    tid = s.id", "    h = -1"]

    def const(self, value: Any) -> str:
        name = f"c{len(self.ns)}"
        self.ns[name] = value
        return name

    def constraint(self, constraint: dict) -> str:
        attribute, operator = constraint["attribute"], constraint["operator"]
        if attribute == "created_at":
            moment = self.const(datetime.fromisoformat(constraint["value"]))
            sign = "<" if operator == "before" else ">"
            return f"(s.created_at is not None and s.created_at {sign} {moment})"
        values = frozenset([constraint["value"]] if operator == "equals" else constraint["values"])
        if attribute == "tags":
            if operator == "equals":
                return f"{self.const(constraint['value'])} in s.tags"
            test = f"{self.const(values)}.isdisjoint(s.tags)"
            return test if operator == "not_in" else f"not {test}"
        field = {"plan": "s.plan", "status": "s.status", "country": "s.country"}[attribute]
        if operator == "equals":
            return f"{field} == {self.const(constraint['value'])}"
        return f"{field} {'not in' if operator == 'not_in' else 'in'} {self.const(values)}"


def _build(flag_key: str, flag_type: str, rules: list[dict], plans: Mapping[str, Iterable[str]],
           fallthrough: Evaluation) -> Callable[[Subject], Evaluation]:
    src = _Source(flag_key)
    add = src.lines.append
    for index, rule in enumerate(rules):
        kind = rule["type"]
        if kind == "variants":
            weighted = [v for v in rule["variants"] if v["weight"] > 0]
            edges = list(itertools.accumulate(v["weight"] for v in weighted))
            results = src.const([Evaluation(flag_key, v["value"], v["name"], "SPLIT", index) for v in weighted])
            pick = f"bisect_right({src.const(edges)}, hash(PREFIX + tid, {VARIANT_SEED}, False) % 100)"
            add(f"    return {results}[{pick}]")
            break
        result = src.const(Evaluation(flag_key, rule["value"], _variant_name(flag_type, rule, index),
                                      "SPLIT" if kind == "rollout" else "TARGETING_MATCH", index))
        if kind == "tenants":
            add(f"    if tid in {src.const(frozenset(rule['tenant_ids']))}: return {result}")
        elif kind == "plan":
            feature = rule.get("feature") or flag_key
            codes = frozenset(code for code, features in plans.items() if feature in features)
            add(f"    if s.plan in {src.const(codes)}: return {result}")
        elif kind == "segment":
            add(f"    if {' and '.join(src.constraint(c) for c in rule['constraints'])}: return {result}")
        elif rule["percentage"] >= 100:
            add(f"    return {result}")
            break
        elif rule["percentage"] > 0:  # the bucket is hashed once, on the first rollout reached
            add("    if h < 0: h = hash(PREFIX + tid, 0, False) % 100")
            add(f"    if h < {int(rule['percentage'])}: return {result}")
    else:
        add(f"    return {src.const(fallthrough)}")
    exec(compile("\n".join(src.lines), f"<flag {flag_key}>", "exec"), src.ns)  # noqa: S102 - our own source
    return src.ns["evaluate"]


def compile_flag(key: str, flag_type: str, enabled: bool, default: Any, rules: list[dict],
                 plans: Mapping[str, Iterable[str]]) -> CompiledFlag:
    fallthrough = Evaluation(key, default, "default", "DEFAULT" if rules else "STATIC")
    if not enabled:
        disabled = Evaluation(key, default, "default", "DISABLED")
        return CompiledFlag(key, flag_type, False, default, lambda _s: disabled)
    return CompiledFlag(key, flag_type, True, default, _build(key, flag_type, rules, plans, fallthrough))


def compile_plan_feature(feature: str, plans: Mapping[str, Iterable[str]]) -> CompiledFlag:
    """A plan feature key without a flag of its own: a boolean, true for tenants whose plan includes it."""
    rule = {"type": "plan", "feature": feature, "value": True, "variant": "entitled"}
    evaluate = _build(feature, "boolean", [rule], plans, Evaluation(feature, False, "not_entitled", "DEFAULT"))
    return CompiledFlag(feature, "boolean", True, False, evaluate, implicit=True)


def not_found(key: str, default: Any = None) -> Evaluation:
    return Evaluation(key, default, "default", "ERROR", None, "FLAG_NOT_FOUND", f"No flag {key!r}.")


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def possible_values(enabled: bool, default: Any, rules: list[dict]) -> list[Any]:
    """Every value the flag can serve to some tenant (a static, conservative reading of the rules)."""
    if not enabled:
        return [default]
    values: list[Any] = []
    for rule in rules:
        kind = rule["type"]
        if kind == "variants":
            return [*values, *(v["value"] for v in rule["variants"] if v["weight"] > 0)]
        if kind == "tenants" and not rule["tenant_ids"]:
            continue
        if kind == "rollout":
            if rule["percentage"] <= 0:
                continue
            values.append(rule["value"])
            if rule["percentage"] >= 100:
                return values
            continue
        values.append(rule["value"])
    return [*values, default]


def serves_one_value(enabled: bool, default: Any, rules: list[dict]) -> bool:
    """True when every tenant gets the same value (off, no rules, or rules that all agree)."""
    return len({canonical(v) for v in possible_values(enabled, default, rules)}) == 1
