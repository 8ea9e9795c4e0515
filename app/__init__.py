"""Tenantry: the control plane of a multi-tenant SaaS API.

create_app() builds the app: config → extensions → blueprints → error handlers → CLI. It does no I/O.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.config import ROOT, Config


def create_app(config: Any = None) -> Flask:
    """The application factory; `config` is a Config instance or a mapping of overrides."""
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"),
                instance_path=str(ROOT / "instance"))
    settings = config if isinstance(config, Config) else Config()
    app.config.from_mapping(settings.as_dict())
    if isinstance(config, dict):
        app.config.from_mapping(config)
    from app.ops import logs

    logs.configure(app)  # JSON or text lines with the request id; Sentry when SENTRY_DSN is set

    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    _init_extensions(app)
    _register_blueprints(app)
    from app import errors

    errors.register_error_handlers(app)
    from app import cli

    cli.register(app)
    from app.billing import stripe_events  # noqa: F401  (registers the inbound Stripe event handlers)

    return app


MODEL_MODULES = ("plans", "tenancy", "auth", "audit", "events", "api", "ratelimit", "usage", "requestlog",
                 "webhooks", "billing", "flags", "staffjobs", "ops")


def _import_models() -> None:
    """Import every feature's models so the metadata (and migrations) see all tables."""
    import importlib

    for feature in MODEL_MODULES:
        importlib.import_module(f"app.{feature}.models")


def _init_extensions(app: Flask) -> None:
    from app import web
    from app.auth import keycache, sessions
    from app.extensions import csrf, db, htmx, limiter, migrate

    _import_models()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    htmx.init_app(app)
    web.init_app(app)  # first: its before_request gives every request (even a refused one) its id
    limiter.init_app(app)
    sessions.init_app(app)
    keycache.install(app)
    from app import db as db_module
    from app import queue  # noqa: F401 - its Session listeners register now, never inside another commit hook

    db_module.init_sqlite_pragmas(app)


def _register_blueprints(app: Flask) -> None:
    from app.api import init_api
    from app.audit.admin import bp as audit_admin
    from app.audit.portal import bp as audit_portal
    from app.auth.admin import bp as auth_admin
    from app.auth.platform_admin import bp as platform_keys_admin
    from app.auth.portal import bp as auth_portal
    from app.auth.two_factor_views import bp as two_factor
    from app.auth.views import bp as auth_views
    from app.billing.admin import bp as billing_admin
    from app.billing.catalog_admin import bp as billing_catalog_admin
    from app.billing.portal import bp as billing_portal
    from app.billing.revenue_admin import bp as revenue_admin
    from app.console.admin import bp as console_admin
    from app.flags.admin import bp as flags_admin
    from app.ops.admin import bp as ops_admin
    from app.ops.health import bp as ops_health
    from app.ops.metrics import bp as ops_metrics
    from app.plans.admin import bp as plans_admin
    from app.ratelimit.admin import bp as ratelimit_admin
    from app.requestlog.admin import bp as requestlog_admin
    from app.requestlog.portal import bp as requestlog_portal
    from app.staffjobs.admin import bp as staffjobs_admin
    from app.tenancy.admin import bp as tenancy_admin
    from app.tenancy.portal import bp as tenancy_portal
    from app.usage.admin import bp as usage_admin
    from app.usage.metrics_admin import bp as usage_metrics_admin
    from app.usage.portal import bp as usage_portal
    from app.webhooks.admin import bp as webhooks_admin
    from app.webhooks.inbound_views import bp as webhooks_inbound
    from app.webhooks.portal import bp as webhooks_portal
    from app.webhooks.portal_event_types import bp as webhook_event_types_portal

    for blueprint in (auth_views, auth_admin, auth_portal, tenancy_admin, tenancy_portal, plans_admin,
                      audit_admin, audit_portal, console_admin, ratelimit_admin, usage_admin, usage_metrics_admin,
                      usage_portal, requestlog_admin, requestlog_portal, ops_health, revenue_admin,
                      ops_metrics, webhooks_admin, webhooks_inbound, webhooks_portal, webhook_event_types_portal,
                      billing_portal, billing_admin, billing_catalog_admin, flags_admin, two_factor,
                      platform_keys_admin, staffjobs_admin, ops_admin):
        app.register_blueprint(blueprint)
    init_api(app)
    from app.usage import meter

    meter.init_app(app)
    from app.flags import snapshot as flag_snapshot

    flag_snapshot.install(app)
