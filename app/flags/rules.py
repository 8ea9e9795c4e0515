"""Validation of flags: keys, values by type, and the ordered rules, with an error per field
(`rules[2].percentage`, `rules[0].constraints[1].values`)."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from app.db import is_id
from app.flags.models import FLAG_TYPES
from app.tenancy.models import STATUSES

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
FEATURE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")  # as plan feature keys (app.plans.service)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,39}$")
RULE_TYPES = ("tenants", "plan", "segment", "rollout", "variants")
ATTRIBUTES = ("plan", "status", "country", "tags", "created_at")
OPERATORS = {"plan": ("in", "not_in", "equals"), "status": ("in", "not_in", "equals"),
             "country": ("in", "not_in", "equals"), "tags": ("in", "not_in", "equals"),
             "created_at": ("before", "after")}
MAX_RULES, MAX_TENANTS, MAX_CONSTRAINTS, MAX_VARIANTS, MAX_VALUES = 100, 1000, 20, 20, 200
MAX_STRING, MAX_JSON_BYTES = 1000, 16_384


def check_key(key: Any, errors: dict[str, str], field: str = "key") -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        errors[field] = "1 to 100 characters: a-z, 0-9 and _.- , starting with a letter or digit."
        return ""
    return key


def check_value(flag_type: str, value: Any, field: str, errors: dict[str, str]) -> Any:
    """The value if it fits the flag's type; else an error under `field`."""
    if flag_type == "boolean":
        if not isinstance(value, bool):
            errors[field] = "A boolean flag serves true or false."
    elif flag_type == "string":
        if not isinstance(value, str) or len(value) > MAX_STRING or "\x00" in value:
            errors[field] = f"A string flag serves a string of at most {MAX_STRING} characters (no NUL)."
    elif flag_type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or abs(value) > 2**53:
            errors[field] = "A number flag serves a finite number (at most 2^53 in size)."
    elif flag_type == "json":
        if not isinstance(value, dict | list):
            errors[field] = "A JSON flag serves an object or an array."
        else:
            try:
                text = json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                errors[field] = "Not JSON (no NaN or infinity)."
            else:
                if len(text.encode()) > MAX_JSON_BYTES or "\\u0000" in text:
                    errors[field] = f"At most {MAX_JSON_BYTES // 1024} KB of JSON, without NUL characters."
    return value


def check_type(flag_type: Any, errors: dict[str, str]) -> str:
    if flag_type not in FLAG_TYPES:
        errors["type"] = f"One of {', '.join(FLAG_TYPES)}."
        return ""
    return flag_type


def check_tags(tags: Any, errors: dict[str, str]) -> list[str]:
    if not isinstance(tags, list) or len(tags) > 20:
        errors["tags"] = "A list of at most 20 tags."
        return []
    cleaned = sorted({str(t).strip().lower() for t in tags if isinstance(t, str) and t.strip()})
    bad = [t for t in cleaned if not TAG_RE.match(t)] + [repr(t) for t in tags if not isinstance(t, str)]
    if bad:
        errors["tags"] = f"Tags use a-z, 0-9 and _.:- (at most 40 characters): {', '.join(map(str, bad))}."
    return cleaned


def check_metadata(metadata: Any, errors: dict[str, str]) -> dict:
    if not isinstance(metadata, dict):
        errors["metadata"] = "A JSON object."
        return {}
    check_value("json", metadata, "metadata", errors)
    return metadata


def _optional_name(rule: dict, name: str, at: str, errors: dict[str, str]) -> str | None:
    value = rule.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not NAME_RE.match(value):
        errors[f"{at}.{name}"] = "1 to 80 characters: letters, digits and _.:- ."
        return None
    return value


def _int_in(value: Any, lo: int, hi: int, field: str, errors: dict[str, str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        errors[field] = f"A whole number from {lo} to {hi}."
        return lo
    return value


def _moment(value: Any, field: str, errors: dict[str, str]) -> str:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if moment.tzinfo is None or not isinstance(value, str):
            raise ValueError
    except ValueError:
        errors[field] = "An ISO 8601 date and time with a timezone, e.g. 2026-01-31T00:00:00Z."
        return ""
    return moment.isoformat()


def _constraint(raw: Any, at: str, errors: dict[str, str]) -> dict:
    if not isinstance(raw, dict):
        errors[at] = "A constraint is an object {attribute, operator, values | value}."
        return {}
    attribute, operator = raw.get("attribute"), raw.get("operator")
    if attribute not in ATTRIBUTES:
        errors[f"{at}.attribute"] = f"One of {', '.join(ATTRIBUTES)}."
        return {}
    if operator not in OPERATORS[attribute]:
        errors[f"{at}.operator"] = f"For {attribute}: one of {', '.join(OPERATORS[attribute])}."
        return {}
    if attribute == "created_at":
        return {"attribute": attribute, "operator": operator, "value": _moment(raw.get("value"), f"{at}.value", errors)}
    if operator == "equals":
        values, field = [raw.get("value")], f"{at}.value"
    else:
        values, field = raw.get("values"), f"{at}.values"
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_VALUES:
            errors[field] = f"A list of 1 to {MAX_VALUES} values."
            return {}
    cleaned = []
    for value in values:
        if not isinstance(value, str) or not value.strip() or len(value) > 80:
            errors[field] = "Each value is a non-empty string of at most 80 characters."
            return {}
        value = value.strip().upper() if attribute == "country" else value.strip().lower()
        if attribute == "status" and value not in STATUSES:
            errors[field] = f"Tenant statuses: {', '.join(STATUSES)}."
        if attribute == "country" and not re.match(r"^[A-Z]{2}$", value):
            errors[field] = "Two-letter ISO 3166 country codes, e.g. DE."
        cleaned.append(value)
    if operator == "equals":
        return {"attribute": attribute, "operator": operator, "value": cleaned[0]}
    return {"attribute": attribute, "operator": operator, "values": sorted(set(cleaned))}


def _variants(raw: Any, flag_type: str, at: str, errors: dict[str, str]) -> list[dict]:
    if flag_type == "boolean":
        errors[at] = "Weighted variants are for string, number and JSON flags; use a rollout for a boolean."
        return []
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_VARIANTS:
        errors[at] = f"A list of 1 to {MAX_VARIANTS} variants {{name, value, weight}}."
        return []
    out, names = [], set()
    for index, variant in enumerate(raw):
        where = f"{at}[{index}]"
        if not isinstance(variant, dict):
            errors[where] = "A variant is an object {name, value, weight}."
            continue
        name = variant.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            errors[f"{where}.name"] = "1 to 80 characters: letters, digits and _.:- ."
        elif name in names:
            errors[f"{where}.name"] = f"The name {name!r} is used by another variant."
        names.add(name)
        if "value" not in variant:
            errors[f"{where}.value"] = "Missing: the value this variant serves."
        value = check_value(flag_type, variant["value"], f"{where}.value", errors) if "value" in variant else None
        weight = _int_in(variant.get("weight"), 0, 100, f"{where}.weight", errors)
        out.append({"name": name, "value": value, "weight": weight})
    if out and f"{at}[0].weight" not in errors and sum(v["weight"] for v in out) != 100:
        errors[at] = f"The weights add up to {sum(v['weight'] for v in out)}; they must add up to 100."
    return out


def check_rule(raw: Any, flag_type: str, flag_key: str, index: int, errors: dict[str, str]) -> dict:
    at = f"rules[{index}]"
    if not isinstance(raw, dict):
        errors[at] = "A rule is an object with a type."
        return {}
    kind = raw.get("type")
    if kind not in RULE_TYPES:
        errors[f"{at}.type"] = f"One of {', '.join(RULE_TYPES)}."
        return {}
    rule: dict[str, Any] = {"type": kind}
    for name in ("name", "variant"):
        if (value := _optional_name(raw, name, at, errors)) is not None:
            rule[name] = value
    if kind == "variants":
        rule["variants"] = _variants(raw.get("variants"), flag_type, f"{at}.variants", errors)
        rule.pop("variant", None)
        return rule
    if "value" not in raw:
        errors[f"{at}.value"] = "Missing: the value this rule serves."
    else:
        rule["value"] = check_value(flag_type, raw["value"], f"{at}.value", errors)
    if kind == "tenants":
        ids = raw.get("tenant_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_TENANTS or not all(is_id(i, "ten") for i in ids):
            errors[f"{at}.tenant_ids"] = f"A list of 1 to {MAX_TENANTS} tenant ids (ten_…)."
            ids = []
        rule["tenant_ids"] = sorted(set(ids))
    elif kind == "plan":
        feature = raw.get("feature", flag_key)
        if not isinstance(feature, str) or not FEATURE_RE.match(feature):
            errors[f"{at}.feature"] = "A plan feature key: a-z, 0-9 and _.- , at most 64 characters."
        rule["feature"] = feature
    elif kind == "segment":
        constraints = raw.get("constraints")
        if not isinstance(constraints, list) or not 1 <= len(constraints) <= MAX_CONSTRAINTS:
            errors[f"{at}.constraints"] = f"A list of 1 to {MAX_CONSTRAINTS} constraints (all must hold)."
            constraints = []
        rule["constraints"] = [_constraint(c, f"{at}.constraints[{i}]", errors) for i, c in enumerate(constraints)]
    elif kind == "rollout":
        rule["percentage"] = _int_in(raw.get("percentage"), 0, 100, f"{at}.percentage", errors)
    return rule


def check_rules(raw: Any, flag_type: str, flag_key: str, errors: dict[str, str]) -> list[dict]:
    """The rules, cleaned, in order; errors name each field."""
    if not isinstance(raw, list) or len(raw) > MAX_RULES:
        errors["rules"] = f"A list of at most {MAX_RULES} rules."
        return []
    return [check_rule(rule, flag_type, flag_key, index, errors) for index, rule in enumerate(raw)]
