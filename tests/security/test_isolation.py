"""The tenant-isolation matrix: every tenant-scoped route, walked with another tenant's slug and ids.

Tenant A's owner (every permission) asks for tenant B's objects through tenant A's URLs, and for
tenant A's URLs under tenant B's slug. Every answer is 404: never 403, never data.
"""

from __future__ import annotations

from app import clock
from app.audit import queries as audit_queries
from app.audit.queries import AuditFilters
from app.auth import apikeys
from app.extensions import db
from app.security import Actor
from app.tenancy import members
from app.tenancy import queries as tenancy_queries
from app.webhooks.outbound_models import WebhookEndpoint

# URL argument → which of tenant B's objects fills it. A new route with an id argument that is not
# here fails test_every_tenant_route_argument_is_covered until it is added.
ARGUMENTS = {"membership_id": "membership", "invitation_id": "invitation", "key_id": "key", "event_id": "event",
             "request_id": "request", "endpoint_id": "webhook_endpoint", "message_id": "webhook_message",
             "name": "webhook_event_type", "recovery_id": "webhook_recovery", "invoice_id": "invoice"}
# Route arguments that name platform-wide objects (no tenant owns one, so tenant B has none to ask for): a flag
# key names one flag for every tenant; tests/flags/test_api.py checks that B's overrides never reach A.
PLATFORM_WIDE = {"key"}


def _tenant_rules(app, prefix: str):
    return [r for r in app.url_map.iter_rules()
            if getattr(app.view_functions[r.endpoint], "_access", "").startswith(prefix)]


def _objects_of(tenant) -> dict[str, str]:
    system = Actor.system("tests")
    invitation, _ = members.invite(system, tenant.id, f"pending@{tenant.slug}.example.com", "member")
    from tests.requestlog.helpers import entry, insert

    request = entry(tenant.id, request_id=f"req-of-{tenant.slug}")
    insert(request)
    from app.webhooks import catalogue, outbound

    catalogue.ensure_event_types()
    endpoint = WebhookEndpoint(tenant_id=tenant.id, url=f"https://{tenant.slug}.example.com/hook",
                               created_at=clock.now(), updated_at=clock.now(), secret_encrypted="unused")
    db.session.add(endpoint)
    db.session.commit()
    message, _ = outbound.publish(tenant.id, "member.added", {"of": tenant.slug})
    from app.webhooks import event_types

    own_type = event_types.create(system, tenant.id, {"name": f"{tenant.slug.replace('-', '_')}.private_event"})
    from app.webhooks import recovery

    own_recovery = recovery.recover(system, tenant.id, endpoint.id)
    from sqlalchemy import select

    from app.billing import invoices as billing_invoices
    from app.billing import subscriptions
    from app.billing.invoice_models import Invoice

    subscriptions.create(system, tenant.id, "pro", trial=False)
    invoice = db.session.scalar(select(Invoice).where(Invoice.tenant_id == tenant.id))
    billing_invoices.finalize(system, invoice.id)
    return {
        "membership": tenancy_queries.members(tenant.id)[0].id,
        "invitation": invitation.id,
        "key": apikeys.list_keys(tenant.id)[0].id,
        "event": audit_queries.list_events(AuditFilters(tenant_id=tenant.id), limit=1).events[0].id,
        "request": request["request_id"],
        "webhook_endpoint": endpoint.id,
        "webhook_message": message.id,
        "webhook_event_type": own_type.name,
        "webhook_recovery": own_recovery.id,
        "invoice": invoice.id,
    }


def _methods(rule):
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def test_every_tenant_route_argument_is_covered(app):
    unknown = {f"{rule.rule}: <{arg}>" for prefix in ("tenant:", "api:") for rule in _tenant_rules(app, prefix)
               for arg in rule.arguments if arg != "slug" and arg not in ARGUMENTS and arg not in PLATFORM_WIDE}
    assert not unknown, f"add these route arguments to the isolation matrix: {sorted(unknown)}"


def test_tenant_pages_never_show_another_tenants_objects(app, make, tenant_world, as_role):
    b = _objects_of(tenant_world["b"]["tenant"])
    client = as_role("owner", "a")
    token = client.csrf_token()
    leaks, checked = [], 0
    for rule in _tenant_rules(app, "tenant:"):
        ids = {arg: b[ARGUMENTS[arg]] for arg in rule.arguments - {"slug"}}
        # Under tenant B's slug (A's owner is no member of B), and with B's ids under A's own slug.
        for slug in ("tenant-b", "tenant-a") if ids else ("tenant-b",):
            url = rule.build({"slug": slug, **ids}, append_unknown=False)[1]
            for method in _methods(rule):
                data = {"csrf_token": token, "role": "viewer", "valid_for": "now"} if method == "POST" else None
                response = client.open(url, method=method, data=data)
                checked += 1
                if response.status_code != 404:
                    leaks.append(f"{method} {url} → {response.status_code}")
    assert checked > 10
    assert not leaks, "another tenant's slug or ids did not answer 404:\n" + "\n".join(leaks)
    # and nothing of tenant B changed
    assert len(tenancy_queries.members(tenant_world["b"]["tenant"].id)) == 4
    assert apikeys.list_keys(tenant_world["b"]["tenant"].id)[0].revoked_at is None


def test_api_routes_never_show_another_tenants_objects(app, make, tenant_world, client):
    b_tenant = tenant_world["b"]["tenant"]
    b = _objects_of(b_tenant)
    headers = {"Authorization": f"Bearer {tenant_world['a']['token']}"}
    leaks = []
    for rule in _tenant_rules(app, "api:"):
        args = rule.arguments
        if args and args <= PLATFORM_WIDE:
            continue
        if args:
            url = rule.build({arg: b[ARGUMENTS[arg]] for arg in args}, append_unknown=False)[1]
            for method in _methods(rule):
                response = client.open(url, method=method, headers=headers, json={} if method != "GET" else None)
                if response.status_code != 404:
                    leaks.append(f"{method} {url} → {response.status_code}")
        elif "GET" in rule.methods:
            body = client.get(rule.rule, headers=headers).get_data(as_text=True)
            for kind, object_id in b.items():
                if object_id in body or b_tenant.id in body:
                    leaks.append(f"GET {rule.rule} shows tenant B's {kind}")
    assert not leaks, "\n".join(leaks)
