"""Service errors and the one handler that renders them as a page, an htmx partial or problem+json."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, g, got_request_exception, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://tenantry.dev/problems/"


class ServiceError(Exception):
    """A use case refused: carries an HTTP status, a problem type and optional per-field errors."""

    status = 400
    type = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors or {}
        self.headers = headers or {}
        self.extra = extra


class NotFound(ServiceError):
    status, type, title = 404, "not-found", "Not found"


class Invalid(ServiceError):
    status, type, title = 422, "validation-error", "Invalid input"


class Forbidden(ServiceError):
    status, type, title = 403, "forbidden", "Forbidden"


class Conflict(ServiceError):
    status, type, title = 409, "conflict", "Conflict"


class Unauthorized(ServiceError):
    status, type, title = 401, "unauthorized", "Unauthorized"


def wants_problem_json() -> bool:
    """API and machine routes answer problem+json; pages answer HTML."""
    return request.path.startswith(("/api/", "/ofrep/", "/webhooks/")) and not request.path.startswith("/api/docs")


def problem(status: int, title: str, detail: str | None = None, type_: str | None = None, **extra: Any) -> Response:
    """An RFC 9457 application/problem+json response."""
    body: dict[str, Any] = {"type": PROBLEM_BASE + (type_ or _slug(title)), "title": title, "status": status}
    if detail:
        body["detail"] = detail
    request_id = g.get("request_id")
    if request_id:
        body["request_id"] = request_id
    body.update({k: v for k, v in extra.items() if v not in (None, {}, [])})
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def _slug(title: str) -> str:
    return title.lower().replace(" ", "-")


def field_errors_list(errors: dict[str, str]) -> list[dict[str, str]]:
    """Per-field errors as [{"field": ..., "message": ...}] for problem+json bodies."""
    return [{"field": field, "message": message} for field, message in errors.items()]


def webargs_errors(messages: dict) -> list[dict[str, str]]:
    """Flatten webargs' {location: {field: [msg]}} into [{"field", "message"}]."""
    out: list[dict[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            out.append({"field": prefix or "body", "message": " ".join(value)})
        elif isinstance(value, list):
            for index, sub in enumerate(value):
                walk(f"{prefix}[{index}]", sub)
        else:
            out.append({"field": prefix or "body", "message": str(value)})

    for location, fields in messages.items():
        # Body fields are named bare ("email"); query/path fields by their own name ("limit").
        walk("" if location == "json" or isinstance(fields, dict) else str(location), fields)
    return out


def _render_html(status: int, title: str, detail: str) -> tuple[str, int]:
    from app.web import is_partial_request

    template = "errors/_error.html" if is_partial_request() else "errors/error.html"
    return render_template(template, status=status, title=title, detail=detail), status


def handle_service_error(error: ServiceError) -> Any:
    """Render a refused use case for the kind of client that asked."""
    from app.extensions import db

    db.session.rollback()  # a refused use case leaves nothing half-done in the session
    if wants_problem_json():
        response = problem(
            error.status,
            error.title,
            error.detail,
            error.type,
            errors=field_errors_list(error.errors),
            **error.extra,
        )
        response.headers.update(error.headers)
        return response
    from app.web import toast

    toast(error.detail, "error")
    return _render_html(error.status, error.title, error.detail)


def handle_http_exception(error: HTTPException) -> Any:
    """404, 405, 400 (CSRF), 413, 429 … rendered the same way as service errors."""
    status = error.code or 500
    title = error.name
    detail = error.description if status != 500 else "Something went wrong on our side."
    if wants_problem_json():
        messages = (getattr(error, "data", None) or {}).get("messages")
        if status == 422 and messages:  # webargs/marshmallow validation of an API request
            return problem(422, "Invalid input", "The request has invalid fields.", "validation-error",
                           errors=webargs_errors(messages))
        response = problem(status, title, detail, _slug(title))
    else:
        body, status = _render_html(status, title, detail)
        response = Response(body, status=status, mimetype="text/html")
    for key, value in error.get_headers():
        if key.lower() not in {"content-type", "content-length"}:
            response.headers[key] = value
    return response


def handle_unexpected(error: Exception) -> Any:
    """Any other exception is a bug: log it with the request id, answer a generic 500."""
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    log.exception("unhandled error (request %s)", g.get("request_id"))
    # Flask signals this only for exceptions no handler took; this handler takes them all, so it signals
    # them itself (error reporters such as Sentry's Flask integration listen to it).
    got_request_exception.send(current_app._get_current_object(), exception=error)
    from app.extensions import db

    db.session.rollback()
    if wants_problem_json():
        return problem(500, "Internal server error", "Something went wrong on our side.", "internal")
    return _render_html(500, "Internal server error", "Something went wrong on our side.")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers; registered after flask-smorest so that ours win."""
    app.register_error_handler(ServiceError, handle_service_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
