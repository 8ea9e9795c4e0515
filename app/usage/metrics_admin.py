"""Staff pages: the billable metrics that usage events report — list, create, edit, archive, restore."""

from __future__ import annotations

from flask import Blueprint, request, url_for

from app.errors import Conflict, Invalid
from app.security import current_actor, staff_required
from app.usage import catalog, service
from app.usage.models import AGGREGATIONS, UsageMetric
from app.web import redirect_to, render, toast

bp = Blueprint("usage_metrics_admin", __name__, url_prefix="/admin/usage/metrics")

FORM_FIELDS = ("code", "name", "unit", "aggregation", "field", "decimals")


@bp.route("")
@staff_required
def index():
    """Every metric, active first, with its aggregation and whether events were reported for it."""
    metrics = catalog.list_metrics()
    return render("admin/usage/metrics.html", metrics=metrics, aggregations=AGGREGATIONS)


def _form_page(metric: UsageMetric | None, values: dict, errors: dict[str, str], status: int = 200):
    fixed = metric is not None and catalog.has_events(metric.code)
    return render("admin/usage/metric_form.html", "admin/usage/_metric_form.html", status=status, metric=metric,
                  values=values, errors=errors, fixed=fixed, aggregations=AGGREGATIONS)


def _save(metric: UsageMetric | None):
    """Validate and save the submitted form; re-render it with 422 on bad input. Fields a metric with
    events cannot change are disabled on the form, so they are not sent."""
    values = {name: request.form[name] for name in FORM_FIELDS if name in request.form}
    try:
        saved = (service.update_metric(current_actor(), metric.id, values) if metric
                 else service.create_metric(current_actor(), values))
    except Invalid as exc:
        shown = {name: getattr(metric, name) for name in FORM_FIELDS} if metric else {}
        return _form_page(metric, shown | values, exc.errors or {"_": exc.detail}, status=422)
    toast(f"Metric {saved.name} {'saved' if metric else 'created'}.")
    return redirect_to(url_for(".index"))


@bp.route("/new", methods=["GET", "POST"])
@staff_required
def new():
    """Define a metric that tenants can report usage events for."""
    if request.method == "GET":
        return _form_page(None, {"aggregation": "count", "decimals": 0}, {})
    return _save(None)


@bp.route("/<metric_id>/edit", methods=["GET", "POST"])
@staff_required
def edit(metric_id: str):
    """Rename a metric or change its unit; its definition only while no events were reported."""
    metric = catalog.get_metric(metric_id)
    if request.method == "GET":
        return _form_page(metric, {name: getattr(metric, name) for name in FORM_FIELDS}, {})
    return _save(metric)


def _set_archived(metric_id: str, archived: bool):
    metric = catalog.get_metric(metric_id)
    try:
        service.set_metric_archived(current_actor(), metric.id, archived)
    except Conflict as exc:
        toast(exc.detail, "error")
    else:
        toast(f"Metric {metric.name} {'archived: new events for it are refused' if archived else 'restored'}.")
    return redirect_to(url_for(".index"))


@bp.route("/<metric_id>/archive", methods=["POST"])
@staff_required
def archive(metric_id: str):
    """Archive a metric: events for it are refused from now on; what was counted stays."""
    return _set_archived(metric_id, True)


@bp.route("/<metric_id>/restore", methods=["POST"])
@staff_required
def restore(metric_id: str):
    """Accept events for an archived metric again."""
    return _set_archived(metric_id, False)
