"""Staff pages /admin/flags: the flags with search, tag and stale filters and an on/off switch per row
(HTMX swaps the row; without JS a plain POST and redirect), a new-flag form, and one flag's page: its
settings, its ordered rules in a structured editor (or as JSON),
"evaluate for a tenant", scheduled changes, change history,
archive / restore / delete. Views parse the form, call app.flags.service / schedules, and render."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, request, url_for

from app import flags
from app.errors import Conflict, Invalid, NotFound, ServiceError
from app.flags import queries, rule_form, schedules, service
from app.flags.models import FLAG_TYPES, SCHEDULE_ACTIONS
from app.security import current_actor, staff_required
from app.web import form_moment, is_partial_request, redirect_to, render, toast

bp = Blueprint("flags_admin", __name__, url_prefix="/admin/flags")

NEW_FIELDS = ("key", "type", "default_boolean", "default_value", "default_json", "description", "tags", "owner")
SETTING_FIELDS = ("description", "default_value", "tags", "owner", "version")


def parse_value(flag_type: str, raw: str, field: str, errors: dict[str, str]) -> Any:
    """A form's text as a value of the flag's type (the service checks it again)."""
    raw = (raw or "").strip()
    if flag_type == "boolean":
        if raw not in ("true", "false"):
            errors[field] = "true or false."
        return raw == "true"
    if flag_type == "number":
        try:
            return int(raw)
        except ValueError:
            try:
                return float(raw)
            except ValueError:
                errors[field] = "A number such as 10 or 2.5."
                return None
    if flag_type == "json":
        return parse_json(raw, field, errors, empty={})
    return raw


def parse_json(raw: str, field: str, errors: dict[str, str], empty: Any = None) -> Any:
    raw = (raw or "").strip()
    if not raw:
        return empty
    try:
        return json.loads(raw)
    except ValueError as exc:
        errors[field] = f"Not valid JSON: {exc}."
        return None


def parse_tags(raw: str) -> list[str]:
    return [tag.strip() for tag in (raw or "").split(",") if tag.strip()]


def show_value(value: Any) -> str:
    """A value as the forms take it back (JSON for json, numbers and booleans in their JSON spelling)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _version(raw: str) -> int | None:
    return int(raw) if (raw or "").strip().isdigit() else None


# --- the list ------------------------------------------------------------------------------------------


def _list_page(status: int = 200, new_errors: dict | None = None, new_form: dict | None = None) -> Any:
    args = {"q": request.args.get("q", "").strip()[:200], "tag": request.args.get("tag", "").strip()[:40],
            "stale": request.args.get("stale", "") == "1", "archived": request.args.get("archived", "") == "1"}
    found = queries.list_flags(args["q"], args["tag"] or None, archived=args["archived"],
                               stale=True if args["stale"] else None)
    return render("admin/flags/index.html", status=status, flags=found, args=args, tags=queries.all_tags(),
                  is_stale=queries.is_stale, show_value=show_value, new_errors=new_errors or {},
                  new_form=new_form or {"type": "boolean", "default_boolean": "false"},
                  type_options=[(t, t) for t in FLAG_TYPES],
                  filtered=bool(args["q"] or args["tag"] or args["stale"]))


@bp.route("")
@staff_required
def index():
    """Flags by key, filtered by search (key, description, owner), tag and staleness."""
    return _list_page()


@bp.route("", methods=["POST"])
@staff_required
def create():
    """A new flag (off until switched on); the default value is read in the field of its type."""
    form = {k: request.form.get(k, "") for k in NEW_FIELDS}
    errors: dict[str, str] = {}
    flag_type = form["type"] if form["type"] in FLAG_TYPES else "boolean"
    field = {"boolean": "default_boolean", "json": "default_json"}.get(flag_type, "default_value")
    default = parse_value(flag_type, form[field], field, errors)
    data = {"key": form["key"].strip(), "type": form["type"], "default_value": default,
            "description": form["description"], "tags": parse_tags(form["tags"]), "owner": form["owner"]}
    try:
        if errors:
            raise Invalid("The flag has invalid fields.", errors=errors)
        flag = service.create_flag(current_actor(), data)
    except ServiceError as exc:
        found = dict(exc.errors or {"key": exc.detail})
        if "default_value" in found:
            found[field] = found.pop("default_value")
        found = {("tags" if name.startswith("tags") else name): message for name, message in found.items()}
        return _list_page(exc.status, found, form)
    toast(f"Flag {flag.key} created (off).")
    return redirect_to(url_for(".detail", key=flag.key))


def toggle(key: str):
    """The kill switch: HTMX gets the row back; a plain POST goes back to where it came from."""
    flag = service.toggle(current_actor(), key)
    message = f"{flag.key} is {'on' if flag.enabled else 'off'}."
    if is_partial_request():
        toast(message)
        return render("admin/flags/_row.html", f=flag, is_stale=queries.is_stale, show_value=show_value)
    toast(message)
    back = url_for(".detail", key=key) if request.form.get("back") == "detail" else url_for(".index")
    return redirect_to(back)


# --- one flag ------------------------------------------------------------------------------------------


def _detail_page(key: str, status: int = 200, **context: Any) -> Any:
    flag = queries.get_flag(key, include_archived=True)
    settings = context.pop("settings", None) or {
        "description": flag.description, "default_value": show_value(flag.default_value),
        "tags": ", ".join(flag.tags or []), "owner": flag.owner, "version": flag.version}
    rules_text = context.pop("rules_text", None)
    if rules_text is None:
        rules_text = json.dumps(flag.rules or [], indent=2, sort_keys=True)
    context.setdefault("schedule_form", {"action": "enable", "payload": ""})
    return render("admin/flags/detail.html", status=status, flag=flag, settings=settings, rules_text=rules_text,
                  schedules=queries.schedules_for(key), history=queries.history(key), show_value=show_value,
                  stale=queries.is_stale(flag), action_options=[(a, a) for a in SCHEDULE_ACTIONS],
                  **{"settings_errors": {}, "rules_errors": {}, "schedule_errors": {}, "evaluation": None,
                     "eval_errors": {}, "tenant_query": "", "json_errors": {},
                     **_editor_context(flag), **context})


def _editor_context(flag: Any, rows: list[dict] | None = None, **extra: Any) -> dict[str, Any]:
    """What the structured rule editor shows: the saved rules as rows unless rows being edited are given."""
    return {"rule_rows": rule_form.rows_from_rules(flag.rules or []) if rows is None else rows,
            "rules_version": flag.version, "rules_notice": "", "rules_dirty": False,
            "tenant_labels_for": _tenant_labels, **rule_form.editor_context(flag.type), **extra}


def _tenant_labels(text: str) -> list[str]:
    """Names of the tenants a tenants rule lists (ids or slugs), shown under its field."""
    from app.tenancy.queries import find_by_id_or_slug

    labels = []
    for part in [p for p in rule_form.SPLIT_RE.split(text or "") if p][:50]:
        tenant = find_by_id_or_slug(part)
        labels.append(f"{tenant.name} ({tenant.slug})" if tenant else f"{part}: not found")
    return labels


def _resolve_tenant(text: str) -> str | None:
    from app.tenancy.queries import find_by_id_or_slug

    tenant = find_by_id_or_slug(text)
    return tenant.id if tenant else None


@bp.route("/<key>")
@staff_required
def detail(key: str):
    """The flag's page; with ?tenant= it also evaluates the flag for that tenant (HTMX: the fragment only)."""
    if "tenant" in request.args:
        return evaluate(key)
    return _detail_page(key)


@bp.route("/<key>", methods=["POST"])
@staff_required
def change(key: str):
    """Every change to one flag, named by the form's `do` (one route: each route costs the signed-out walk
    of tests/security one request of its per-IP page limit)."""
    handler = CHANGES.get(request.form.get("do", ""))
    if handler is None:
        raise NotFound("No such change.")
    return handler(key)


def save_settings(key: str):
    """Description, default value, tags and owner, refused if the flag changed since the page was shown."""
    flag = queries.get_flag(key)
    form = {k: request.form.get(k, "") for k in SETTING_FIELDS}
    errors: dict[str, str] = {}
    data = {"description": form["description"], "owner": form["owner"], "tags": parse_tags(form["tags"]),
            "default_value": parse_value(flag.type, form["default_value"], "default_value", errors)}
    try:
        if errors:
            raise Invalid("The flag has invalid fields.", errors=errors)
        service.update_flag(current_actor(), key, data, expected_version=_version(form["version"]))
    except ServiceError as exc:
        found = {("tags" if name.startswith("tags") else name): message for name, message in exc.errors.items()}
        return _detail_page(key, exc.status, settings=form, settings_errors=found or {"_": exc.detail})
    toast(f"{key} saved.")
    return redirect_to(url_for(".detail", key=key))


def save_rules(key: str):
    """The ordered rules as JSON, validated by the service (errors such as rules[1].percentage)."""
    text = request.form.get("rules", "")
    errors: dict[str, str] = {}
    parsed = parse_json(text, "rules", errors, empty=[])
    try:
        if errors:
            raise Invalid("The rules are not valid JSON.", errors=errors)
        service.update_flag(current_actor(), key, {"rules": parsed},
                            expected_version=_version(request.form.get("version", "")))
    except ServiceError as exc:
        return _detail_page(key, exc.status, rules_text=text, json_errors=exc.errors or {"rules": exc.detail})
    toast(f"Rules of {key} saved.")
    return redirect_to(url_for(".detail", key=key) + "#rules")


def save_rule_form(key: str):
    """The structured editor: a button with an `edit` (add, move, remove a rule, a condition or a variant)
    redraws the editor with the rows as typed, unsaved; "Save rules" validates and saves them all."""
    flag = queries.get_flag(key)
    rows = rule_form.rows_from_form(request.form)
    version = _version(request.form.get("version", ""))
    edit = request.form.get("edit", "").strip()
    if edit:
        rows, notice = rule_form.apply_edit(rows, edit, flag.type)
        return _rules_editor(key, 200, rows, rules_notice=notice, rules_dirty=True, rules_version=version)
    rules_list, errors = rule_form.rules_from_rows(rows, flag.type, _resolve_tenant)
    try:
        if errors:
            from app.flags.rules import check_rules

            found: dict[str, str] = {}
            check_rules(rules_list, flag.type, flag.key, found)
            raise Invalid("The rules have invalid fields.", errors={**found, **errors})
        service.update_flag(current_actor(), key, {"rules": rules_list}, expected_version=version)
    except ServiceError as exc:
        status = 422 if is_partial_request() else exc.status
        return _rules_editor(key, status, rows, rules_errors=exc.errors or {"rules": exc.detail},
                             rules_dirty=True, rules_version=version)
    toast(f"Rules of {key} saved.")
    return redirect_to(url_for(".detail", key=key) + "#rules")


def _rules_editor(key: str, status: int, rows: list[dict], **extra: Any):
    flag = queries.get_flag(key, include_archived=True)
    if is_partial_request():
        return render("admin/flags/_rules_editor.html", status=status, flag=flag,
                      **{"rules_errors": {}, **_editor_context(flag, rows, **extra)})
    return _detail_page(key, status, **_editor_context(flag, rows, **extra))


def evaluate(key: str):
    """What the flag serves a tenant (by id or slug), and why: an HTMX fragment, or the whole page."""
    from app.tenancy.queries import find_by_id_or_slug

    queries.get_flag(key, include_archived=True)
    raw = request.args.get("tenant", "").strip()[:200]
    tenant = find_by_id_or_slug(raw)
    context: dict[str, Any] = {"tenant_query": raw}
    if tenant is None:
        context["eval_errors"] = {"tenant": f"No tenant {raw!r} (a tenant id or slug)." if raw
                                  else "A tenant id or slug."}
        status = 422
    else:
        context["evaluation"], context["eval_tenant"], status = flags.evaluate_for(key, tenant), tenant, 200
    if is_partial_request():
        return render("admin/flags/_evaluation.html", status=status, flag=queries.get_flag(key, True),
                      show_value=show_value, **{"evaluation": None, "eval_errors": {}, **context})
    return _detail_page(key, status, **context)


def add_schedule(key: str):
    """A change at a set time (UTC): enable, disable, set_rollout {"percentage"}, set_rules {"rules"}."""
    form = {k: request.form.get(k, "") for k in ("at", "action", "payload")}
    errors: dict[str, str] = {}
    try:
        at = form_moment(form["at"], "at", "2026-12-01")
        payload = parse_json(form["payload"], "payload", errors, empty={})
        if errors:
            raise Invalid("The scheduled change has invalid fields.", errors=errors)
        schedule = schedules.schedule_change(current_actor(), key, at or "", form["action"], payload)
    except ServiceError as exc:
        return _detail_page(key, exc.status, schedule_form=form, schedule_errors=exc.errors or {"_": exc.detail})
    toast(f"{schedule.action} scheduled for {schedule.at:%Y-%m-%d %H:%M} UTC.")
    return redirect_to(url_for(".detail", key=key) + "#schedules")


def cancel_schedule(key: str):
    try:
        schedule = schedules.cancel_schedule(current_actor(), request.form.get("schedule", ""))
        toast(f"The {schedule.action} change is canceled.")
    except (NotFound, ServiceError) as exc:
        toast(exc.detail, "error")
    return redirect_to(url_for(".detail", key=key) + "#schedules")


def archive(key: str):
    service.archive_flag(current_actor(), key)
    toast(f"{key} archived: no longer served.")
    return redirect_to(url_for(".detail", key=key))


def restore(key: str):
    service.restore_flag(current_actor(), key)
    toast(f"{key} restored.")
    return redirect_to(url_for(".detail", key=key))


def delete(key: str):
    try:
        service.delete_flag(current_actor(), key)
    except Conflict as exc:
        toast(exc.detail, "error")
        return redirect_to(url_for(".detail", key=key))
    toast(f"{key} deleted.")
    return redirect_to(url_for(".index"))


def _back_to_tenant(tenant_id: str):
    return redirect_to(url_for("tenancy_admin.detail", tenant_id=tenant_id) + "#tenant-flags")


def set_override(key: str):
    """Serve one tenant a value of its own (from the tenant's page)."""
    tenant_id = request.form.get("tenant_id", "")
    flag = queries.get_flag(key)
    errors: dict[str, str] = {}
    value = parse_value(flag.type, request.form.get("value", ""), "value", errors)
    try:
        if errors:
            raise Invalid(errors=errors)
        service.set_override(current_actor(), key, tenant_id, value)
        toast(f"{key} is {show_value(value)} for this tenant now.")
    except ServiceError as exc:
        toast(f"{key}: {next(iter(exc.errors.values()), exc.detail)}", "error")
    return _back_to_tenant(tenant_id)


def remove_override(key: str):
    """The tenant gets the flag's rules again."""
    tenant_id = request.form.get("tenant_id", "")
    service.remove_override(current_actor(), key, tenant_id)
    toast(f"{key}: this tenant follows the flag's rules again.")
    return _back_to_tenant(tenant_id)


CHANGES = {"toggle": toggle, "settings": save_settings, "rules": save_rules,
           "rules_form": save_rule_form, "schedule": add_schedule,
           "cancel_schedule": cancel_schedule, "archive": archive, "restore": restore, "delete": delete,
           "override": set_override, "remove_override": remove_override}
