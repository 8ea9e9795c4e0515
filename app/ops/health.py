"""Health checks: /livez (the process) and /readyz (a full report in application/health+json).

/readyz follows draft-inadarei-api-health-check: the overall `status` (pass, warn or fail: the worst of
its checks; HTTP 503 only on fail) and, for staff or a caller with `Authorization: Bearer <HEALTH_TOKEN>`,
the `checks`: database and Redis response times, per RQ queue its depth and the age of its oldest job,
workers alive, the cron scheduler's last heartbeat and free disk space, each with thresholds from config.
Anonymous callers (a load balancer) get the status alone.
"""

from __future__ import annotations

import hmac
import shutil
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, json, request
from redis.exceptions import RedisError
from sqlalchemy import text

from app import clock
from app.extensions import db
from app.security import public

bp = Blueprint("ops", __name__)
HEALTH_JSON = "application/health+json"
RANK = {"pass": 0, "warn": 1, "fail": 2}


def _health(body: dict, status: int) -> Response:
    response = Response(json.dumps(body), status=status, mimetype=HEALTH_JSON)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/livez")
@public
def livez() -> Response:
    """The process answers; no dependency is checked (a DB outage must not restart web processes)."""
    return _health({"status": "pass"}, 200)


def worst(statuses) -> str:
    """The worst of pass < warn < fail (pass when there is none)."""
    return max(statuses, key=RANK.__getitem__, default="pass")


def _level(value: float | None, warn: float | None, fail: float | None) -> str:
    """pass, warn or fail for a value that is worse the higher it is."""
    if value is None:
        return "pass"
    if fail is not None and value > fail:
        return "fail"
    if warn is not None and value > warn:
        return "warn"
    return "pass"


def _timed(component_type: str, probe: Callable[[], Any], slow_ms: float) -> dict[str, Any]:
    started = time.perf_counter()
    check: dict[str, Any] = {"componentType": component_type}
    try:
        probe()
        status, output = None, None
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency is a failed check
        status, output = "fail", type(exc).__name__
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    check.update(observedValue=elapsed, observedUnit="ms", status=status or _level(elapsed, slow_ms, None))
    if output:
        check["output"] = output
    return check


def _database() -> None:
    db.session.execute(text("SELECT 1"))
    db.session.rollback()


def report() -> dict[str, Any]:
    """The full health report: {"status", "checks": {"component:measurement": [check, …]}}."""
    from app.ops import system
    from app.queue import get_redis

    config = current_app.config
    now = clock.now()
    stamp = now.isoformat().replace("+00:00", "Z")
    checks: dict[str, list[dict[str, Any]]] = {
        "database:responseTime": [_timed("datastore", _database, config["HEALTH_SLOW_MS"])],
        "redis:responseTime": [_timed("datastore", lambda: get_redis().ping(), config["HEALTH_SLOW_MS"])],
    }
    try:
        queues = system.queue_stats()
        checks["rq:queueDepth"] = [{"componentId": q["name"], "componentType": "component",
                                    "observedValue": q["depth"], "observedUnit": "jobs", "status": "pass"}
                                   for q in queues]
        checks["rq:oldestJobAge"] = [
            {"componentId": q["name"], "componentType": "component", "observedValue": q["oldest_s"] or 0,
             "observedUnit": "s",
             "status": _level(q["oldest_s"], config["HEALTH_QUEUE_WARN_SECONDS"], config["HEALTH_QUEUE_FAIL_SECONDS"])}
            for q in queues]
        alive = len(system.workers())
        workers = {"componentType": "component", "observedValue": alive, "observedUnit": "workers",
                   "status": "pass" if alive else "fail"}
        if not alive:
            workers["output"] = "No RQ worker is running: jobs wait until one starts."
        checks["rq:workers"] = [workers]
        beat = system.scheduler_heartbeat()
        age = round((now - beat).total_seconds(), 1) if beat else None
        scheduler: dict[str, Any] = {"componentId": "cron", "componentType": "component",
                                     "observedUnit": "s", "observedValue": age,
                                     "status": "fail" if age is None else
                                     _level(age, None, config["HEALTH_SCHEDULER_FAIL_SECONDS"])}
        if beat is None:
            scheduler["output"] = "No cron scheduler has reported itself (flask scheduler)."
        else:
            scheduler["time"] = beat.isoformat().replace("+00:00", "Z")
        checks["scheduler:heartbeat"] = [scheduler]
    except RedisError as exc:
        down = {"componentType": "component", "status": "fail", "output": f"Redis: {type(exc).__name__}"}
        for key in ("rq:queueDepth", "rq:oldestJobAge", "rq:workers", "scheduler:heartbeat"):
            checks[key] = [dict(down)]
    checks["disk:freeSpace"] = [_disk(config)]
    for entries in checks.values():
        for entry in entries:
            entry.setdefault("time", stamp)
    return {"status": worst(e["status"] for entries in checks.values() for e in entries),
            "serviceId": "tenantry", "checks": checks}


def _disk(config: Any) -> dict[str, Any]:
    path = config["HEALTH_DISK_PATH"]
    check: dict[str, Any] = {"componentId": path, "componentType": "system", "observedUnit": "%"}
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        return {**check, "status": "fail", "output": f"{type(exc).__name__}: {exc}"}
    free = round(100 * usage.free / usage.total, 1) if usage.total else 0.0
    status = "fail" if free < config["HEALTH_DISK_FAIL_PERCENT"] else (
        "warn" if free < config["HEALTH_DISK_WARN_PERCENT"] else "pass")
    return {**check, "observedValue": free, "status": status}


def may_see_details() -> bool:
    """Staff signed in, or the HEALTH_TOKEN as a Bearer token (compared in constant time)."""
    token = current_app.config.get("HEALTH_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and header[:7].lower() == "bearer ":
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
    from flask_login import current_user

    if not (current_user and current_user.is_authenticated and current_user.is_staff):
        return False
    from app.auth.twofactor import staff_needs_second_factor

    return not staff_needs_second_factor(current_user)  # as staff_required: no details before the second factor


@bp.route("/readyz")
@public
def readyz() -> Response:
    """Ready to serve: the overall status for anyone, the checks for staff or the health token; 503 on fail."""
    body = report()
    code = 503 if body["status"] == "fail" else 200
    if not may_see_details():
        body = {"status": body["status"]}
    return _health(body, code)
