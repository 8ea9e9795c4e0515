"""Pages: plans_admin — the plan catalogue: list, create, edit, archive and restore."""

from __future__ import annotations

from decimal import Decimal, DecimalException, InvalidOperation
from typing import Any

from flask import Blueprint, request, url_for

from app.errors import Conflict, Invalid
from app.money import CURRENCIES, EXPONENTS, Money
from app.plans import queries, service
from app.plans.models import Plan
from app.security import current_actor, staff_required
from app.usage.catalog import quota_metrics
from app.web import redirect_to, render, toast

bp = Blueprint("plans_admin", __name__, url_prefix="/admin/plans")

TEXT_FIELDS = ("code", "name", "description", "currency", "features", "late_fee_percent")
INT_FIELDS = ("trial_days", "sort_order", "rate_limit_per_second", "rate_limit_per_minute",
              "max_concurrent_requests", "max_webhook_endpoints", "max_members")
MONEY_FIELDS = ("price_monthly", "price_annual", "late_fee")
FORM_FIELDS = TEXT_FIELDS + MONEY_FIELDS + INT_FIELDS + ("is_public",)
MAX_DIGITS = 13  # integer digits of a major-unit amount: far above any price the service accepts
BUILT_IN = "api_calls"  # always on the form; metrics staff define follow (blank: no quota)


def _quota_fields(metrics: dict[str, str]) -> tuple[str, ...]:
    """The form's flat quota fields: <metric>_included and <metric>_overage for each metric, and the grace
    of the API calls' hard quota."""
    return (*(f"{metric}_{part}" for metric in metrics for part in ("included", "overage")), f"{BUILT_IN}_grace")


def _form_error(key: str) -> str:
    """The form field for a service error: quotas.<metric>.<part> → <metric>_<part>."""
    if key == "quotas":
        return f"{BUILT_IN}_included"
    return "_".join(key.split(".")[1:]) if key.startswith("quotas.") else key


@bp.route("/")
@staff_required
def index():
    """The catalogue with prices, quotas, limits, features and how many tenants are on each plan."""
    return render("admin/plans/index.html", plans=queries.list_plans(), counts=queries.tenant_counts(),
                  overage_major=_overage_major)


def _major(raw: str, currency: str, field: str, errors: dict[str, str], exact: bool) -> Decimal | None:
    """A major-unit amount ("49.00"); `exact` requires it to fit the currency's minor units."""
    try:
        value = Decimal(raw.strip().replace(",", ""))
        # Bounds checked without arithmetic, which would overflow on absurd exponents.
        if not value.is_finite() or value.adjusted() >= MAX_DIGITS or value.as_tuple().exponent < -MAX_DIGITS:
            raise InvalidOperation
        if value < 0:
            errors[field] = "Enter an amount of 0 or more."
            return None
        if exact:
            Money.parse(str(value), currency)
    except (DecimalException, ValueError):
        places = EXPONENTS[currency]
        example = "49" if places == 0 else "49." + "0" * places
        errors[field] = (f"Enter an amount like {example} ({currency} has {places} decimal places)." if exact
                         else f"Enter a price per {'call' if field == f'{BUILT_IN}_overage' else 'unit'} like 0.001.")
        return None
    return value


def _form_data(form: dict[str, str], metrics: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The service's input from the form: major units become minor units. Returns (data, errors)."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {name: form[name] for name in TEXT_FIELDS + INT_FIELDS}
    data["is_public"] = bool(form["is_public"])
    currency = form["currency"].strip().upper()
    known = currency in EXPONENTS  # an unknown currency is reported by the service
    for field in MONEY_FIELDS:
        raw = form[field].strip()
        if not raw or not known:
            data[field] = raw if known else 0
            continue
        value = _major(raw, currency, field, errors, exact=True)
        data[field] = int(value.scaleb(EXPONENTS[currency])) if value is not None else 0
    data["quotas"] = {}
    for metric in metrics:
        included, raw = form[f"{metric}_included"].strip(), form[f"{metric}_overage"].strip()
        if metric != BUILT_IN and not included and not raw:
            continue  # no quota for this metric: unlimited, nothing to store
        overage = None
        if raw and known:
            value = _major(raw, currency, f"{metric}_overage", errors, exact=False)
            if value is not None:
                overage = str(value.scaleb(EXPONENTS[currency]))  # minor units: 0.001 USD → "0.1"
        data["quotas"][metric] = {"included": included or None, "overage": overage}
    if grace := form.get(f"{BUILT_IN}_grace", "").strip():
        data["quotas"][BUILT_IN]["grace"] = grace
    return data, errors


def _submitted(metrics: dict[str, str]) -> dict[str, str]:
    return {name: request.form.get(name, "") for name in FORM_FIELDS + _quota_fields(metrics)}


def _values(plan: Plan, metrics: dict[str, str]) -> dict[str, Any]:
    """The form's initial values for an existing plan, prices in major units."""
    values: dict[str, Any] = {name: getattr(plan, name) for name in TEXT_FIELDS + INT_FIELDS}
    values["features"] = ", ".join(plan.features or [])
    values["price_monthly"], values["price_annual"] = plan.monthly.major(), plan.annual.major()
    values["late_fee"] = Money(plan.late_fee or 0, plan.currency).major() if plan.late_fee else ""
    values["late_fee_percent"] = format(plan.late_fee_percent.normalize(), "f") if plan.late_fee_percent else ""
    for metric in metrics:
        values[f"{metric}_included"] = plan.included(metric)
        values[f"{metric}_overage"] = _overage_major(plan, metric)
    values[f"{BUILT_IN}_grace"] = plan.grace_percent(BUILT_IN) or ""
    values["is_public"] = plan.is_public
    return {k: ("" if v is None else v) for k, v in values.items()}


def _overage_major(plan: Plan, metric: str = BUILT_IN) -> str:
    value = plan.overage_price(metric)
    if value is None:
        return ""
    return format(value.scaleb(-EXPONENTS.get(plan.currency, 2)).normalize(), "f")


def _form_page(plan: Plan | None, values: dict[str, Any], errors: dict[str, str], metrics: dict[str, str],
               status: int = 200):
    return render("admin/plans/form.html", "admin/plans/_form.html", status=status, plan=plan, values=values,
                  errors=errors, currencies=CURRENCIES, metrics={m: label for m, label in metrics.items()
                                                                 if m != BUILT_IN})


def _save(plan: Plan | None):
    """Validate and save the submitted form; re-render it with 422 on bad input."""
    metrics = quota_metrics(plan.quotas if plan else None)
    values = _submitted(metrics)
    data, errors = _form_data(values, metrics)
    if not errors:
        try:
            saved = (service.update_plan(current_actor(), plan.id, data) if plan
                     else service.create_plan(current_actor(), data))
        except Invalid as exc:
            errors = {_form_error(key): message for key, message in exc.errors.items()}
            if f"{BUILT_IN}_overage" in errors:
                errors[f"{BUILT_IN}_overage"] = "Enter a price per call like 0.001 (blank means a hard limit)."
            errors = errors or {"_": exc.detail}
        else:
            toast(f"Plan {saved.name} {'saved' if plan else 'created'}.")
            return redirect_to(url_for(".index"))
    return _form_page(plan, values | {"is_public": bool(values["is_public"])}, errors, metrics, status=422)


@bp.route("/new", methods=["GET", "POST"])
@staff_required
def new():
    """Create a plan."""
    if request.method == "GET":
        return _form_page(None, {"currency": "USD", "is_public": True, "trial_days": 0, "sort_order": 0}, {},
                          quota_metrics())
    return _save(None)


@bp.route("/<plan_id>/edit", methods=["GET", "POST"])
@staff_required
def edit(plan_id: str):
    """Edit a plan: tenants on it see the change from their next billing period."""
    plan = queries.get_plan(plan_id)
    if request.method == "GET":
        metrics = quota_metrics(plan.quotas)
        return _form_page(plan, _values(plan, metrics), {}, metrics)
    return _save(plan)


def _set_archived(plan_id: str, archived: bool):
    plan = queries.get_plan(plan_id)
    try:
        service.set_archived(current_actor(), plan.id, archived)
    except Conflict as exc:
        toast(exc.detail, "error")
    else:
        toast(f"Plan {plan.name} {'archived: new tenants cannot choose it' if archived else 'restored'}.")
    return redirect_to(url_for(".index"))


@bp.route("/<plan_id>/archive", methods=["POST"])
@staff_required
def archive(plan_id: str):
    """Archive a plan: tenants on it keep it; nobody new can be put on it."""
    return _set_archived(plan_id, True)


@bp.route("/<plan_id>/restore", methods=["POST"])
@staff_required
def restore(plan_id: str):
    """Make an archived plan available again."""
    return _set_archived(plan_id, False)
