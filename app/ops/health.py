"""Health checks: /livez (the process) and /readyz (database and Redis reachable)."""

from __future__ import annotations

import time

from flask import Blueprint, Response, json
from sqlalchemy import text

from app.extensions import db
from app.queue import get_redis
from app.security import public

bp = Blueprint("ops", __name__)
HEALTH_JSON = "application/health+json"


def _health(body: dict, status: int) -> Response:
    response = Response(json.dumps(body), status=status, mimetype=HEALTH_JSON)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/livez")
@public
def livez() -> Response:
    """The process answers; no dependency is checked (a DB outage must not restart web processes)."""
    return _health({"status": "pass"}, 200)


def _check(name: str, kind: str, probe) -> tuple[str, dict]:
    started = time.perf_counter()
    try:
        probe()
        status, output = "pass", None
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency is a failed check
        status, output = "fail", type(exc).__name__
    check = {"componentType": kind, "observedValue": round((time.perf_counter() - started) * 1000, 2),
             "observedUnit": "ms", "status": status}
    if output:
        check["output"] = output
    return f"{name}:responseTime", check


@bp.route("/readyz")
@public
def readyz() -> Response:
    """Ready to serve: the database and Redis answer. 503 with application/health+json when not."""

    def database() -> None:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()

    checks = dict([_check("database", "datastore", database), _check("redis", "datastore", lambda: get_redis().ping())])
    ok = all(c["status"] == "pass" for c in checks.values())
    return _health({"status": "pass" if ok else "fail", "checks": {k: [v] for k, v in checks.items()}},
                   200 if ok else 503)
