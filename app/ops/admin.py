"""Pages: system — /admin/system (the health report, RQ queues, failed jobs with retry and delete, workers,
API latency per route over the last hour) and /admin/system/alerts (alert rules and alerts); the banner
of firing alerts on every staff page."""

from __future__ import annotations

from flask import Blueprint, request, url_for
from redis.exceptions import RedisError

from app.errors import Invalid
from app.ops import alerts, health, system
from app.ops.models import KINDS
from app.security import current_actor, staff_required
from app.web import redirect_to, render, toast

bp = Blueprint("ops_admin", __name__, url_prefix="/admin/system")


@bp.app_template_global()
def firing_alerts() -> list:
    """The alerts firing now (for the banner of the staff layout)."""
    return alerts.firing()


@bp.route("/")
@staff_required
def index():
    """The health report, queues, failed jobs, workers and API latency."""
    report = health.report()
    try:
        queues, failed, workers, beat = (system.queue_stats(), system.failed_jobs(), system.workers(),
                                         system.scheduler_heartbeat())
        redis_error = None
    except RedisError as exc:
        queues, failed, workers, beat, redis_error = None, None, None, None, type(exc).__name__
    return render("admin/ops/system.html", report=report, queues=queues, failed=failed, workers=workers,
                  scheduler_beat=beat, redis_error=redis_error, latency=system.api_latency())


@bp.route("/jobs", methods=["POST"])
@staff_required
def job():
    """Retry (do=retry) or delete (do=delete) a failed job of a queue."""
    action, queue, job_id = request.form.get("do"), request.form.get("queue", ""), request.form.get("job_id", "")
    if action == "retry":
        system.retry_failed(current_actor(), queue, job_id)
        toast(f"Job {job_id} is queued again on {queue}.")
    elif action == "delete":
        system.delete_failed(current_actor(), queue, job_id)
        toast(f"Failed job {job_id} deleted.")
    else:
        raise Invalid("Unknown action.")
    return redirect_to(url_for(".index") + "#system-failed")


def _alerts_page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    return render("admin/ops/alerts.html", status=status, rules=alerts.rules(), recent=alerts.recent(),
                  kinds=KINDS, form=form or {"kind": "webhook_success_rate", "threshold": "95",
                                              "window_minutes": "15", "for_seconds": "0"},
                  errors=errors or {}, signing_secret=alerts.signing_secret,
                  firing_ids={rule.id for _, rule in alerts.firing()})


@bp.route("/alerts")
@staff_required
def alert_rules():
    """Alert rules (new, switch on/off, delete) and the latest alerts."""
    return _alerts_page()


@bp.route("/alerts", methods=["POST"])
@staff_required
def create_rule():
    form = request.form.to_dict()
    try:
        rule = alerts.create_rule(current_actor(), form)
    except Invalid as exc:
        return _alerts_page(form, exc.errors, 422)
    toast(f"Alert rule “{rule.name}” created.")
    return redirect_to(url_for(".alert_rules"))


@bp.route("/alerts/<rule_id>", methods=["POST"])
@staff_required
def change_rule(rule_id: str):
    """do=enable, disable or delete."""
    action = request.form.get("do")
    if action in ("enable", "disable"):
        rule = alerts.set_enabled(current_actor(), rule_id, action == "enable")
        toast(f"Alert rule “{rule.name}” {'on' if rule.enabled else 'off'}.")
    elif action == "delete":
        alerts.delete_rule(current_actor(), rule_id)
        toast("Alert rule deleted.")
    else:
        raise Invalid("Unknown action.")
    return redirect_to(url_for(".alert_rules"))


@bp.route("/alerts/evaluate", methods=["POST"])
@staff_required
def evaluate():
    """Check the rules now instead of waiting for the minute's job."""
    counts = alerts.evaluate()
    toast(f"Rules checked: {counts['fired']} fired, {counts['resolved']} resolved, {counts['firing']} firing.")
    return redirect_to(url_for(".alert_rules"))
