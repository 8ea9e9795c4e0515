"""The JSON API: flask-smorest wiring, the OpenAPI document, docs page, and shared API rules.

flask-smorest gives typed validation (marshmallow, via webargs) and an OpenAPI 3 document generated
from the same decorators that validate, so the spec cannot drift from the code.
"""

from __future__ import annotations

import time
from functools import wraps
from typing import Any

from apispec import BasePlugin
from flask import Flask, abort, g, render_template, request, send_from_directory
from flask_smorest import Blueprint
from swagger_ui_bundle import swagger_ui_path

from app import web
from app.extensions import api, csrf, limiter, login_manager
from app.security import public

JSON_TYPES = ("application/json", "application/problem+json", "application/merge-patch+json")
ERROR_RESPONSES = {
    "401": "Missing, malformed, revoked or expired API key.",
    "403": "The key lacks a scope (named in `missing_scope`), the tenant is suspended, or the key is of the "
           "wrong kind (a tenant key on /api/v1/admin/…, a platform key elsewhere).",
    "409": "Conflict: the Idempotency-Key was used with another body (or is still in progress), "
           "or the change clashes with the current state.",
    "415": "The body is not JSON.",
    "422": "Invalid input; `errors` lists each field and what is wrong with it.",
}

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": IDEMPOTENCY_HEADER,
    "required": False,
    "description": "Retry safely: the same key with the same body returns the stored response "
                   "(with `Idempotent-Replayed: true`) for 24 hours; with another body it is a 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


class ProblemResponsesPlugin(BasePlugin):
    """Documents the RFC 9457 problem responses every API operation can give."""

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs: Any) -> None:
        if not path or not path.startswith("/api/v1"):
            return
        for method, operation in (operations or {}).items():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_RESPONSES.items():
                if status in {"409", "415"} and method not in {"post", "put", "patch"}:
                    continue
                responses.setdefault(status, {
                    "description": description,
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                })
            if "{" in path:  # an id in the path: another tenant's or an unknown one is a 404
                responses.setdefault("404", {
                    "description": "No such resource in your tenant.",
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                })
            if method == "post":  # every API POST is wrapped in @idempotent
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("in") == "header" and p.get("name") == IDEMPOTENCY_HEADER for p in parameters):
                    parameters.append(IDEMPOTENCY_PARAMETER)


def init_api(app: Flask) -> None:
    """Bind flask-smorest, register every feature's API blueprint, and the docs page."""
    from app.api import schemas
    from app.auth.api import blp as keys_api
    from app.flags.api import blp as flags_api
    from app.flags.ofrep import blp as ofrep_api
    from app.staffapi.api import blp as staff_api
    from app.tenancy.api import blp as tenancy_api
    from app.usage.api import blp as usage_api
    from app.webhooks.api import blp as webhooks_api
    from app.webhooks.event_types_api import blp as webhook_event_types_api

    # Query strings are strict like JSON bodies: a misspelt parameter (?limt=5) is a 422 naming it, not
    # silently ignored (webargs' default drops unknown query parameters). Headers stay lenient.
    parser = Blueprint.ARGUMENTS_PARSER
    parser.DEFAULT_UNKNOWN_BY_LOCATION = {**parser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}
    api.init_app(app, spec_kwargs={
        "extra_plugins": [ProblemResponsesPlugin()],
        "security": [{"bearerAuth": []}],
        "info": {"description": "Tenantry's API for tenants, and the staff API under /api/v1/admin for operator "
                                "automation. Authenticate with `Authorization: Bearer <api key>`: a tenant key "
                                "(tnt_live_…) for tenant routes, a platform key (tnt_plat_…) for /api/v1/admin."},
    })
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer",
                                                       "description": "A tenant API key (tnt_live_…); on "
                                                       "/api/v1/admin/… a platform key (tnt_plat_…)"})
    api.spec.components.schema("Problem", schema=schemas.ProblemSchema)
    for blueprint in (tenancy_api, keys_api, usage_api, webhooks_api, webhook_event_types_api, flags_api, ofrep_api,
                      staff_api):
        api.register_blueprint(blueprint)
        csrf.exempt(blueprint)  # Bearer keys only, never cookies: nothing to forge
    # API limits are the request gate's (app/ratelimit), in its one round trip: Flask-Limiter's hooks are
    # skipped outright on API paths (its request filter alone still costs ~0.1 ms a request).
    limiter.request_filter(_is_api_request)
    _skip_on_api_paths(app, limiter)
    _skip_on_api_paths(app, login_manager)  # its remember-me cookie: API requests have no cookies
    spec_view = app.view_functions["api-docs.openapi_json"]
    app.view_functions["api-docs.openapi_json"] = public(lambda: spec_view())
    app.add_url_rule("/api/docs", "api_docs", public(_docs_page))
    app.add_url_rule("/api/docs/assets/<path:filename>", "api_docs_assets", public(_docs_asset))
    app.before_request(_require_json_body)
    app.after_request(_ratelimit_headers)


API_PREFIXES = web.API_PREFIXES  # Bearer-key routes behind the request gate (OFREP: app.flags)


def _is_api_request() -> bool:
    return request.path.startswith(API_PREFIXES)


def _skip_on_api_paths(app, extension) -> None:
    """Wrap the hooks `extension` installed on the app so that API requests bypass them."""
    def owned(fn) -> bool:  # a bound method of the extension, or a functools.partial over it
        return getattr(fn, "__self__", None) is extension or extension in getattr(fn, "args", ())

    def before(fn):
        return wraps(fn)(lambda: None if request.path.startswith(API_PREFIXES) else fn())

    def after(fn):
        return wraps(fn)(lambda response: response if request.path.startswith(API_PREFIXES) else fn(response))

    def teardown(fn):
        return wraps(fn)(lambda exc=None: None if request.path.startswith(API_PREFIXES) else fn(exc))

    for registry, wrap in ((app.before_request_funcs, before), (app.after_request_funcs, after),
                           (app.teardown_request_funcs, teardown)):
        funcs = registry.get(None, [])
        registry[None] = [wrap(fn) if owned(fn) else fn for fn in funcs]


def _docs_page() -> str:
    """Swagger UI for /api/openapi.json, served from the swagger-ui-bundle package (no CDN)."""
    return render_template("api_docs.html")


def _docs_asset(filename: str) -> Any:
    if filename not in {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}:
        abort(404)
    return send_from_directory(swagger_ui_path, filename, max_age=86400)


def _require_json_body() -> Any:
    """API writes must send JSON: anything else gets 415 before any handler runs."""
    req = request._get_current_object()
    if req.method not in {"POST", "PUT", "PATCH"} or not req.path.startswith("/api/v1/"):
        return None
    if req.routing_exception is not None:  # unknown route or method: the 404/405 says more than a 415
        return None
    if not req.content_length and not req.mimetype and not req.headers.get("Transfer-Encoding"):
        return None  # no body at all: the handler's validation names what is missing
    if req.mimetype not in JSON_TYPES:
        from app.errors import problem

        return problem(415, "Unsupported media type", "Send the body as application/json.", "unsupported-media-type")
    return None


def _ratelimit_headers(response: Any) -> Any:
    """RateLimit-Policy / RateLimit (IETF draft) and X-RateLimit-* on every API answer that was limited."""
    decision = g.get("ratelimit")  # set by the request gate (app.ratelimit.service), on API paths only
    if decision is not None:
        headers = response.headers
        for name, value in decision.headers(time.time()).items():
            headers.add(name, value)
    return response
