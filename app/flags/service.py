"""Flag use cases for staff (and the scheduler): create, update, toggle, tenant overrides, archive,
restore, delete. Each is one transaction: the change, its audit event (old and new values) and a
`flag.updated` outbox event for every tenant whose served value or variant changes; after commit every
process reloads its snapshot (app.flags.snapshot)."""

from __future__ import annotations

from typing import Any

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.errors import Conflict, Invalid
from app.events import service as events
from app.extensions import db
from app.flags import queries, rules
from app.flags.engine import CompiledFlag, canonical, compile_flag, compile_plan_feature
from app.flags.models import Flag
from app.flags.snapshot import bump_after_commit
from app.security import Actor

STATE = ("description", "type", "default_value", "enabled", "tags", "owner", "metadata", "rules")
EDITABLE = ("description", "default_value", "enabled", "tags", "owner", "metadata", "rules")
DEFAULTS = {"boolean": False, "string": "", "number": 0, "json": {}}


def state_of(flag: Flag | None) -> dict[str, Any] | None:
    if flag is None:
        return None
    return {"description": flag.description, "type": flag.type, "default_value": flag.default_value,
            "enabled": flag.enabled, "tags": list(flag.tags or []), "owner": flag.owner,
            "metadata": dict(flag.meta or {}), "rules": list(flag.rules or [])}


def _clean(data: dict[str, Any], flag_type: str, key: str, partial: bool) -> dict[str, Any]:
    """The editable fields present in `data` (all of them unless partial), validated."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    unknown = sorted(set(data) - set(EDITABLE) - {"key", "type"})
    for name in unknown:
        errors[name] = "Unknown field."
    for name in EDITABLE:
        if partial and name not in data:
            continue
        raw = data.get(name)
        if name == "description":
            raw = "" if raw is None else raw
            if not isinstance(raw, str) or len(raw) > 1000:
                errors[name] = "At most 1,000 characters."
            out[name] = raw.strip() if isinstance(raw, str) else ""
        elif name == "owner":
            raw = "" if raw is None else raw
            if not isinstance(raw, str) or len(raw) > 200:
                errors[name] = "At most 200 characters (a team or an email)."
            out[name] = raw.strip() if isinstance(raw, str) else ""
        elif name == "enabled":
            raw = False if raw is None and not partial else raw
            if not isinstance(raw, bool):
                errors[name] = "true or false."
            out[name] = raw
        elif name == "default_value":
            out[name] = rules.check_value(flag_type, DEFAULTS.get(flag_type) if raw is None else raw,
                                          "default_value", errors)
        elif name == "tags":
            out[name] = rules.check_tags([] if raw is None else raw, errors)
        elif name == "metadata":
            out[name] = rules.check_metadata({} if raw is None else raw, errors)
        elif name == "rules":
            out[name] = rules.check_rules([] if raw is None else raw, flag_type, key, errors)
    if errors:
        raise Invalid("The flag has invalid fields.", errors=errors)
    return out


def _apply(flag: Flag, values: dict[str, Any]) -> None:
    for name, value in values.items():
        setattr(flag, "meta" if name == "metadata" else name, value)


def create_flag(actor: Actor, data: dict[str, Any]) -> Flag:
    """A new flag: key and type (fixed for its life), then any editable field (off unless enabled)."""
    errors: dict[str, str] = {}
    key = rules.check_key(data.get("key"), errors)
    flag_type = rules.check_type(data.get("type", "boolean"), errors)
    if errors:
        raise Invalid("The flag has invalid fields.", errors=errors)
    values = _clean(data, flag_type, key, partial=False)
    if queries.find_flag(key) is not None:
        raise Invalid("The flag has invalid fields.", errors={"key": f"A flag {key!r} exists (maybe archived)."})
    now = clock.now()
    flag = Flag(key=key, type=flag_type, created_at=now, changed_at=now, version=1)
    _apply(flag, values)
    db.session.add(flag)
    db.session.flush()
    _commit(actor, flag, "created", None)
    return flag


def update_flag(actor: Actor, key: str, data: dict[str, Any], expected_version: int | None = None,
                action: str = "updated", metadata: dict[str, Any] | None = None) -> Flag:
    """Change any editable field; `expected_version` (what the editor showed) refuses lost updates."""
    flag = queries.get_flag(key, for_update=True)
    if "type" in data and data["type"] != flag.type:
        raise Invalid("The flag has invalid fields.",
                      errors={"type": "A flag's type cannot change: create a new flag (and archive this one)."})
    if "key" in data and data["key"] != flag.key:
        raise Invalid("The flag has invalid fields.", errors={"key": "A flag's key cannot change."})
    if expected_version is not None and expected_version != flag.version:
        raise Conflict(f"The flag changed meanwhile (version {flag.version}, not {expected_version}): reload it.")
    values = _clean({k: v for k, v in data.items() if k not in {"key", "type"}}, flag.type, flag.key, partial=True)
    before = state_of(flag)
    _apply(flag, values)
    if state_of(flag) == before:
        return flag
    _commit(actor, flag, action, before, metadata)
    return flag


def set_enabled(actor: Actor, key: str, enabled: bool, metadata: dict[str, Any] | None = None) -> Flag:
    """The kill switch: off serves the default value to everyone (reason DISABLED)."""
    return update_flag(actor, key, {"enabled": bool(enabled)}, action="enabled" if enabled else "disabled",
                       metadata=metadata)


def toggle(actor: Actor, key: str) -> Flag:
    return set_enabled(actor, key, not queries.get_flag(key).enabled)


def set_override(actor: Actor, key: str, tenant_id: str, value: Any) -> Flag:
    """Serve `value` to one tenant whatever the other rules say: the tenant joins a leading tenants rule
    with that value (made when missing) and leaves every other tenants rule."""
    flag = queries.get_flag(key)
    errors: dict[str, str] = {}
    rules.check_value(flag.type, value, "value", errors)
    if errors:
        raise Invalid("The override has an invalid value.", errors=errors)
    from app.tenancy import queries as tenancy_queries

    tenancy_queries.get_tenant(tenant_id)
    new_rules = _without_tenant(flag.rules or [], tenant_id)
    for rule in new_rules:
        if rule["type"] != "tenants":
            break
        if canonical(rule["value"]) == canonical(value):
            rule["tenant_ids"] = sorted({*rule["tenant_ids"], tenant_id})
            break
    else:
        new_rules.insert(0, {"type": "tenants", "tenant_ids": [tenant_id], "value": value})
    return update_flag(actor, key, {"rules": new_rules}, action="override_set", metadata={"tenant_id": tenant_id})


def remove_override(actor: Actor, key: str, tenant_id: str) -> Flag:
    flag = queries.get_flag(key)
    return update_flag(actor, key, {"rules": _without_tenant(flag.rules or [], tenant_id)}, action="override_removed",
                       metadata={"tenant_id": tenant_id})


def _without_tenant(current: list[dict], tenant_id: str) -> list[dict]:
    out = []
    for rule in current:
        rule = dict(rule)
        if rule["type"] == "tenants" and tenant_id in rule["tenant_ids"]:
            rule["tenant_ids"] = [t for t in rule["tenant_ids"] if t != tenant_id]
            if not rule["tenant_ids"]:
                continue
        out.append(rule)
    return out


def archive_flag(actor: Actor, key: str) -> Flag:
    """Archived flags are no longer served (FLAG_NOT_FOUND, or the plan feature of that key)."""
    flag = queries.get_flag(key, for_update=True)
    if flag.archived:
        return flag
    before = state_of(flag)
    flag.archived_at = clock.now()
    _commit(actor, flag, "archived", before)
    return flag


def restore_flag(actor: Actor, key: str) -> Flag:
    flag = queries.get_flag(key, include_archived=True, for_update=True)
    if not flag.archived:
        return flag
    flag.archived_at = None
    _commit(actor, flag, "restored", None)
    return flag


def delete_flag(actor: Actor, key: str) -> None:
    """Delete an archived flag and its schedules (archive first: a served flag is never deleted at once)."""
    flag = queries.get_flag(key, include_archived=True, for_update=True)
    if not flag.archived:
        raise Conflict("Archive the flag first: deleting a served flag would change what tenants get at once.")
    audit.record(actor, "flag.deleted", targets=[Target("flag", flag.id, flag.key)],
                 changes={name: [value, None] for name, value in state_of(flag).items()})
    db.session.delete(flag)
    db.session.commit()


# --- the change, its audit, its events -----------------------------------------------------------------


def _served(flag: Flag | None, key: str, plans: dict[str, frozenset[str]]) -> CompiledFlag | None:
    """What the flag serves in this state (the plan feature of its key when there is no live flag)."""
    if flag is None or flag.archived:
        if any(key in features for features in plans.values()):
            return compile_plan_feature(key, plans)
        return None
    return compile_flag(flag.key, flag.type, flag.enabled, flag.default_value, flag.rules or [], plans)


def _commit(actor: Actor, flag: Flag, action: str, before: dict[str, Any] | None,
            metadata: dict[str, Any] | None = None) -> None:
    after = None if flag.archived else state_of(flag)
    if action != "created":
        flag.version = (flag.version or 0) + 1
    flag.changed_at = clock.now()
    changes = {name: [(before or {}).get(name), (after or {}).get(name)] for name in STATE}
    if action in {"archived", "restored"}:
        changes = {"archived": [action == "restored", action == "archived"]}
    audit.record(actor, f"flag.{action}", targets=[Target("flag", flag.id, flag.key)], changes=changes,
                 metadata={"version": flag.version, **(metadata or {})})
    _publish(flag, action, before)
    bump_after_commit(db.session)
    db.session.commit()


def _publish(flag: Flag, action: str, before: dict[str, Any] | None) -> None:
    """flag.updated for every tenant (not closed) whose value or variant changes."""
    from app.plans.queries import features_by_code

    plans = {code: frozenset(f) for code, f in features_by_code().items()}
    old_flag = None
    if before is not None:
        old_flag = Flag(key=flag.key, type=before["type"], enabled=before["enabled"],
                        default_value=before["default_value"], rules=before["rules"])
    new, old = _served(flag, flag.key, plans), _served(old_flag, flag.key, plans)
    if old is None and new is None:
        return
    for subject in queries.tenant_subjects():
        now = new.evaluate(subject) if new is not None else None
        was = old.evaluate(subject) if old is not None else None
        pair_now = (canonical(now.value), now.variant) if now else None
        pair_was = (canonical(was.value), was.variant) if was else None
        if pair_now == pair_was:
            continue
        events.publish(subject.id, "flag.updated", {
            "key": flag.key, "type": new.type if new else flag.type, "action": action,
            "value": now.value if now else None, "variant": now.variant if now else None,
            "reason": now.reason if now else "ERROR",
            "previous": {"value": was.value if was else None, "variant": was.variant if was else None},
        })
