"""The structured rule editor on a flag's staff page: the ordered rules as form rows (a drafted rule keeps
the text staff typed until it is saved), the edits its buttons make (add, remove and move a rule, add and
remove a segment constraint or a variant) and the conversion of the rows back into rules for the service,
which validates them (errors such as `rules[1].percentage` come back to the field that caused them).

Field names: `r{i}-type`, `r{i}-name`, `r{i}-variant`, `r{i}-value`, `r{i}-tenants` (ids or slugs, one per
line or comma-separated), `r{i}-feature`, `r{i}-percentage`, `r{i}-c{j}-attribute|operator|values` and
`r{i}-v{j}-name|value|weight`; `rule_count`, `r{i}-constraint_count` and `r{i}-variant_count` say how
many there are."""

from __future__ import annotations

import json
import re
from typing import Any

from app.flags.rules import ATTRIBUTES, MAX_CONSTRAINTS, MAX_RULES, MAX_VARIANTS, OPERATORS, RULE_TYPES

RULE_LABELS = {"tenants": "Tenants (overrides)", "plan": "Plan entitlement", "segment": "Segment",
               "rollout": "Percentage rollout", "variants": "Weighted variants"}
SPLIT_RE = re.compile(r"[\s,]+")


def show(value: Any) -> str:
    """A value as its form field shows it (strings as they are, everything else as JSON)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _count(form: Any, name: str, limit: int) -> int:
    raw = str(form.get(name, "0")).strip()
    return min(int(raw), limit) if raw.isdigit() else 0


def blank_rule(kind: str, flag_type: str) -> dict[str, Any]:
    """A new row of a type, with sensible starting values (a boolean flag's rules serve true)."""
    value = "true" if flag_type == "boolean" else ""
    row: dict[str, Any] = {"type": kind, "name": "", "variant": "", "value": value, "tenants": "",
                           "feature": "", "percentage": "10", "constraints": [], "variants": []}
    if kind == "segment":
        row["constraints"] = [blank_constraint()]
    if kind == "variants":
        row["variants"] = [{"name": "control", "value": "", "weight": "50"},
                           {"name": "treatment", "value": "", "weight": "50"}]
    return row


def blank_constraint() -> dict[str, str]:
    return {"attribute": "plan", "operator": "in", "values": ""}


def rows_from_rules(rules: list[dict], tenant_labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Saved rules as editor rows."""
    rows = []
    for rule in rules or []:
        row = blank_rule(rule.get("type", "rollout"), "")
        row.update({"name": rule.get("name", ""), "variant": rule.get("variant", ""),
                    "value": show(rule.get("value")), "constraints": [], "variants": []})
        if rule["type"] == "tenants":
            row["tenants"] = "\n".join(rule.get("tenant_ids", []))
        elif rule["type"] == "plan":
            row["feature"] = rule.get("feature", "")
        elif rule["type"] == "rollout":
            row["percentage"] = str(rule.get("percentage", 0))
        elif rule["type"] == "segment":
            row["constraints"] = [
                {"attribute": c.get("attribute", ""), "operator": c.get("operator", ""),
                 "values": c["value"] if "value" in c else ", ".join(c.get("values", []))}
                for c in rule.get("constraints", [])]
        elif rule["type"] == "variants":
            row["variants"] = [{"name": v.get("name", ""), "value": show(v.get("value")),
                                "weight": str(v.get("weight", 0))} for v in rule.get("variants", [])]
        rows.append(row)
    return rows


def rows_from_form(form: Any) -> list[dict[str, Any]]:
    """The rows as posted (text as typed)."""
    rows = []
    for i in range(_count(form, "rule_count", MAX_RULES)):
        at = f"r{i}-"
        kind = form.get(at + "type", "")
        row = {"type": kind if kind in RULE_TYPES else "rollout", "constraints": [], "variants": []}
        for name in ("name", "variant", "value", "tenants", "feature", "percentage"):
            row[name] = str(form.get(at + name, ""))
        for j in range(_count(form, at + "constraint_count", MAX_CONSTRAINTS)):
            row["constraints"].append({name: str(form.get(f"{at}c{j}-{name}", ""))
                                       for name in ("attribute", "operator", "values")})
        for j in range(_count(form, at + "variant_count", MAX_VARIANTS)):
            row["variants"].append({name: str(form.get(f"{at}v{j}-{name}", ""))
                                    for name in ("name", "value", "weight")})
        rows.append(row)
    return rows


def apply_edit(rows: list[dict[str, Any]], edit: str, flag_type: str) -> tuple[list[dict[str, Any]], str]:
    """One button's edit (`add:rollout`, `remove:2`, `up:2`, `down:2`, `add_constraint:1`,
    `remove_constraint:1:0`, `add_variant:1`, `remove_variant:1:2`); returns the rows and what happened
    (empty when the edit is unknown or out of range)."""
    verb, _, rest = edit.partition(":")
    args = [int(a) for a in rest.split(":") if a.isdigit()] if verb != "add" else []
    i = args[0] if args else -1
    if verb == "add" and rest in RULE_TYPES and len(rows) < MAX_RULES:
        rows.append(blank_rule(rest, flag_type))
        return rows, f"Added a {RULE_LABELS[rest].lower()} rule (not saved yet)."
    if not 0 <= i < len(rows):
        return rows, ""
    if verb == "remove":
        rows.pop(i)
        return rows, f"Removed rule {i + 1} (not saved yet)."
    if verb in ("up", "down"):
        j = i - 1 if verb == "up" else i + 1
        if 0 <= j < len(rows):
            rows[i], rows[j] = rows[j], rows[i]
            return rows, f"Moved rule {i + 1} to position {j + 1} (not saved yet)."
        return rows, ""
    items = {"constraint": "constraints", "variant": "variants"}
    thing = verb.split("_", 1)[-1]
    if thing not in items:
        return rows, ""
    listed = rows[i][items[thing]]
    if verb.startswith("add_"):
        limit = MAX_CONSTRAINTS if thing == "constraint" else MAX_VARIANTS
        if len(listed) < limit:
            listed.append(blank_constraint() if thing == "constraint" else {"name": "", "value": "", "weight": "0"})
            return rows, f"Added a {thing} to rule {i + 1} (not saved yet)."
        return rows, ""
    if verb.startswith("remove_") and len(args) == 2 and 0 <= args[1] < len(listed):
        listed.pop(args[1])
        return rows, f"Removed a {thing} from rule {i + 1} (not saved yet)."
    return rows, ""


def parse_value(flag_type: str, raw: str) -> tuple[Any, str]:
    """Typed text as a value of the flag's type, or an error message."""
    raw = (raw or "").strip()
    if flag_type == "boolean":
        return (raw == "true", "") if raw in ("true", "false") else (None, "true or false.")
    if flag_type == "number":
        for cast in (int, float):
            try:
                return cast(raw), ""
            except ValueError:
                continue
        return None, "A number such as 10 or 2.5."
    if flag_type == "json":
        try:
            return json.loads(raw), ""
        except ValueError as exc:
            return None, f"Not valid JSON: {exc}."
    return raw, ""


def _int_text(raw: str) -> Any:
    raw = (raw or "").strip()
    return int(raw) if re.fullmatch(r"-?\d{1,6}", raw) else raw


def rules_from_rows(rows: list[dict[str, Any]], flag_type: str,
                    resolve_tenant: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The rows as rules for app.flags.service (which validates them again, with the same field names);
    `resolve_tenant(text)` gives a tenant id for an id or slug, or None. Errors found here (a value that
    does not parse, an unknown tenant) are keyed like the service's."""
    errors: dict[str, str] = {}
    rules = []
    for i, row in enumerate(rows):
        at = f"rules[{i}]"
        rule: dict[str, Any] = {"type": row["type"]}
        for name in ("name", "variant"):
            if row.get(name, "").strip() and row["type"] != "variants":
                rule[name] = row[name].strip()
        if row["type"] == "variants":
            rule["variants"] = []
            for j, variant in enumerate(row["variants"]):
                value, problem = parse_value(flag_type, variant["value"])
                if problem:
                    errors[f"{at}.variants[{j}].value"] = problem
                rule["variants"].append({"name": variant["name"].strip(), "value": value,
                                         "weight": _int_text(variant["weight"])})
            if row.get("name", "").strip():
                rule["name"] = row["name"].strip()
            rules.append(rule)
            continue
        value, problem = parse_value(flag_type, row["value"])
        if problem:
            errors[f"{at}.value"] = problem
        rule["value"] = value
        if row["type"] == "tenants":
            ids, unknown = [], []
            for text in (t for t in SPLIT_RE.split(row["tenants"]) if t):
                tenant_id = resolve_tenant(text)
                (ids if tenant_id else unknown).append(tenant_id or text)
            if unknown:
                errors[f"{at}.tenant_ids"] = f"No tenant {', '.join(unknown[:5])} (tenant ids or slugs)."
            rule["tenant_ids"] = ids
        elif row["type"] == "plan":
            if row["feature"].strip():
                rule["feature"] = row["feature"].strip()
        elif row["type"] == "rollout":
            rule["percentage"] = _int_text(row["percentage"])
        elif row["type"] == "segment":
            rule["constraints"] = []
            for constraint in row["constraints"]:
                attribute, operator = constraint["attribute"], constraint["operator"]
                made = {"attribute": attribute, "operator": operator}
                text = constraint["values"].strip()
                if attribute == "created_at" or operator == "equals":
                    made["value"] = text
                else:
                    made["values"] = [v for v in (p.strip() for p in text.split(",")) if v]
                rule["constraints"].append(made)
        rules.append(rule)
    return rules, errors


def editor_context(flag_type: str) -> dict[str, Any]:
    """What the editor template needs besides the rows."""
    return {"rule_types": [(kind, RULE_LABELS[kind]) for kind in RULE_TYPES
                           if not (kind == "variants" and flag_type == "boolean")],
            "rule_labels": RULE_LABELS, "attributes": ATTRIBUTES, "operators": OPERATORS,
            "all_operators": sorted({op for ops in OPERATORS.values() for op in ops})}
