"""The structured rule editor on a flag's staff page: its buttons add, move and remove rules, conditions
and variants without saving (HTMX redraws the editor with what was typed); "Save rules" saves them all,
with tenants named by slug, or names each bad field (`rules[1].percentage`) next to it and keeps the
rows as typed; a stale version is refused."""

from __future__ import annotations

from app.extensions import db
from app.flags import queries, rule_form

URL = "/admin/flags/{key}"


def _form(rows: list[dict], version: int, **extra: str) -> dict[str, str]:
    """The form the editor posts for `rows` (as rule_form.rows_from_rules gives them)."""
    data = {"do": "rules_form", "version": str(version), "rule_count": str(len(rows)), **extra}
    for i, row in enumerate(rows):
        for name in ("type", "name", "variant", "value", "tenants", "feature", "percentage"):
            data[f"r{i}-{name}"] = row.get(name, "")
        data[f"r{i}-constraint_count"] = str(len(row.get("constraints", [])))
        for j, c in enumerate(row.get("constraints", [])):
            data.update({f"r{i}-c{j}-{k}": v for k, v in c.items()})
        data[f"r{i}-variant_count"] = str(len(row.get("variants", [])))
        for j, v in enumerate(row.get("variants", [])):
            data.update({f"r{i}-v{j}-{k}": val for k, val in v.items()})
    return data


def test_the_page_shows_saved_rules_as_rows(staff_client, create, make):
    tenant = make.tenant(slug="acme-rows", name="Acme Rows")
    create("beta", rules=[{"type": "tenants", "tenant_ids": [tenant.id], "value": True},
                          {"type": "segment", "constraints": [{"attribute": "plan", "operator": "in",
                                                               "values": ["pro", "enterprise"]}], "value": True},
                          {"type": "rollout", "percentage": 25, "value": True}])
    html = staff_client.get(URL.format(key="beta")).get_data(as_text=True)
    assert "1. Tenants (overrides)" in html and "Acme Rows (acme-rows)" in html
    assert 'value="enterprise, pro"' in html and 'type="range"' in html and 'value="25"' in html
    assert 'name="rule_count" value="3"' in html


def test_buttons_edit_the_rows_without_saving(staff_client, create):
    create("beta", rules=[{"type": "rollout", "percentage": 25, "value": True}])
    rows = rule_form.rows_from_rules(queries.get_flag("beta").rules)
    added = staff_client.form(URL.format(key="beta"), _form(rows, 1, edit="add:segment"), htmx=True)
    html = added.get_data(as_text=True)
    assert added.status_code == 200 and 'id="rules-editor"' in html and "<html" not in html
    assert "2. Segment" in html and "not saved yet" in html and 'name="r1-c0-attribute"' in html
    db.session.expire_all()
    assert len(queries.get_flag("beta").rules) == 1 and queries.get_flag("beta").version == 1

    rows.append(rule_form.blank_rule("segment", "boolean"))
    moved = staff_client.form(URL.format(key="beta"), _form(rows, 1, edit="up:1"), htmx=True).get_data(as_text=True)
    assert moved.index("1. Segment") < moved.index("2. Percentage rollout")
    removed = staff_client.form(URL.format(key="beta"), _form(rows, 1, edit="remove:0"), htmx=True)
    removed = removed.get_data(as_text=True)
    assert "Percentage rollout</strong>" not in removed and "1. Segment" in removed


def test_save_resolves_slugs_and_keeps_order(staff_client, create, make):
    tenant = make.tenant(slug="acme-save", name="Acme Save")
    create("checkout", type="string", default_value="old")
    rows = [dict(rule_form.blank_rule("tenants", "string"), tenants="acme-save", value="vip"),
            dict(rule_form.blank_rule("segment", "string"), value="eu",
                 constraints=[{"attribute": "country", "operator": "in", "values": "de, fr"}]),
            dict(rule_form.blank_rule("variants", "string"),
                 variants=[{"name": "a", "value": "old", "weight": "70"},
                           {"name": "b", "value": "new", "weight": "30"}])]
    saved = staff_client.form(URL.format(key="checkout"), _form(rows, 1))
    assert saved.status_code == 303
    db.session.expire_all()
    assert queries.get_flag("checkout").rules == [
        {"type": "tenants", "tenant_ids": [tenant.id], "value": "vip"},
        {"type": "segment", "value": "eu",
         "constraints": [{"attribute": "country", "operator": "in", "values": ["DE", "FR"]}]},
        {"type": "variants", "variants": [{"name": "a", "value": "old", "weight": 70},
                                          {"name": "b", "value": "new", "weight": 30}]}]


def test_save_names_each_bad_field_and_keeps_what_was_typed(staff_client, create):
    create("limit", type="number", default_value=10)
    rows = [dict(rule_form.blank_rule("tenants", "number"), tenants="nobody-here", value="5"),
            dict(rule_form.blank_rule("rollout", "number"), percentage="150", value="ten"),
            dict(rule_form.blank_rule("variants", "number"),
                 variants=[{"name": "a", "value": "1", "weight": "60"}, {"name": "b", "value": "2", "weight": "30"}])]
    bad = staff_client.form(URL.format(key="limit"), _form(rows, 1), htmx=True)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "The rules were not saved" in html
    assert "No tenant nobody-here" in html and 'data-error="rules[0].tenant_ids"' in html
    assert 'data-error="rules[1].percentage"' in html and 'data-error="rules[1].value"' in html
    assert "add up to 90" in html and 'value="ten"' in html and "nobody-here" in html
    db.session.expire_all()
    assert queries.get_flag("limit").rules == []


def test_a_stale_editor_is_refused(staff_client, create):
    create("beta")
    rows = [rule_form.blank_rule("rollout", "boolean")]
    assert staff_client.form(URL.format(key="beta"), _form(rows, 1)).status_code == 303
    again = staff_client.form(URL.format(key="beta"), _form(rows + rows, 1), htmx=True)
    assert again.status_code == 422 and "changed meanwhile" in again.get_data(as_text=True)
    db.session.expire_all()
    assert len(queries.get_flag("beta").rules) == 1


def test_apply_edit_bounds():
    rows = [rule_form.blank_rule("segment", "boolean")]
    assert rule_form.apply_edit(rows, "remove:5", "boolean") == (rows, "")
    assert rule_form.apply_edit(rows, "down:0", "boolean") == (rows, "")
    assert rule_form.apply_edit(rows, "add:bogus", "boolean") == (rows, "")
    rows, notice = rule_form.apply_edit(rows, "add_constraint:0", "boolean")
    assert len(rows[0]["constraints"]) == 2 and "condition" not in notice and "constraint" in notice
    rows, _ = rule_form.apply_edit(rows, "remove_constraint:0:0", "boolean")
    assert len(rows[0]["constraints"]) == 1
