"""Deny by default: every route makes exactly one access decision, and the decision holds."""

from __future__ import annotations

from app.db import new_id

PUBLIC_PREFIXES = ("/login", "/admin/login", "/logout", "/invitations/", "/livez", "/readyz", "/metrics",
                   "/api/openapi.json",
                   "/api/docs", "/vendor/", "/static/", "/webhooks/")
ARG_VALUES = {"slug": "tenant-a", "token": "not-a-real-token", "filename": "app.css"}


def _rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"]


def _url(rule) -> str:
    values = {}
    for name in rule.arguments:
        if name in ARG_VALUES:
            values[name] = ARG_VALUES[name]
        else:  # any id argument: a well-formed id that exists nowhere
            values[name] = new_id("xyz")
    return rule.build(values, append_unknown=False)[1]


def test_every_route_carries_an_access_decision(app):
    missing = [f"{rule.rule} ({rule.endpoint})" for rule in _rules(app)
               if getattr(app.view_functions[rule.endpoint], "_access", None) is None]
    assert not missing, "routes without an access decorator:\n" + "\n".join(missing)


def test_access_decisions_match_the_face_of_the_route(app):
    wrong = []
    for rule in _rules(app):
        access = app.view_functions[rule.endpoint]._access
        path = rule.rule
        if path.startswith("/admin") and not path.startswith("/admin/login") and access != "staff":
            wrong.append(f"{path}: staff pages need staff_required, has {access}")
        if path.startswith("/t/") and not access.startswith("tenant:"):
            wrong.append(f"{path}: tenant pages need tenant_permission, has {access}")
        if access.startswith("tenant:") and "slug" not in rule.arguments:
            wrong.append(f"{path}: tenant_permission without <slug>")
        if path.startswith("/api/v1/admin/") and not access.startswith("platform:"):
            wrong.append(f"{path}: staff API routes need platform_scope, has {access}")
        elif path.startswith("/api/v1/") and not path.startswith("/api/v1/admin/") and not access.startswith("api:"):
            wrong.append(f"{path}: API routes need api_scope, has {access}")
        if access == "public" and not path.startswith(PUBLIC_PREFIXES):
            wrong.append(f"{path}: public, but not on the list of public routes")
    assert not wrong, "\n".join(wrong)


def test_every_api_post_honours_idempotency_keys(app):
    missing = [rule.rule for rule in _rules(app)
               if rule.rule.startswith("/api/v1/") and "POST" in rule.methods
               and not getattr(app.view_functions[rule.endpoint], "_idempotent", False)]
    assert not missing, f"API POSTs without @idempotent: {missing}"


def test_signed_out_requests_are_refused_everywhere_but_public_routes(app, client):
    """Walk every non-public route with every method it allows: nothing answers 2xx to a stranger."""
    refused = []
    token = client.csrf_token()
    walked = 0
    for rule in _rules(app):
        access = app.view_functions[rule.endpoint]._access
        if access == "public":
            continue
        url = _url(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            kwargs = {"data": {"csrf_token": token}} if method != "GET" and not url.startswith("/api/") else {}
            if url.startswith("/api/") and method != "GET":
                kwargs = {"json": {}}
            # Each request from its own address: the walk must not run into the per-IP page limit (a
            # stranger's 429 would be a refusal too, but not the one this test is about).
            walked += 1
            address = f"10.{walked // 65536 % 256}.{walked // 256 % 256}.{walked % 256}"
            response = client.open(url, method=method, environ_base={"REMOTE_ADDR": address}, **kwargs)
            if access.startswith(("api:", "platform:")):
                ok = response.status_code == 401 and response.mimetype == "application/problem+json"
            else:
                location = response.headers.get("Location", "")
                ok = response.status_code == 302 and "login" in location
            if not ok:
                refused.append(f"{method} {url} ({access}) → {response.status_code}")
    assert not refused, "signed-out requests that were not sent to sign in:\n" + "\n".join(refused)


def test_non_staff_users_never_reach_staff_pages(app, make, as_role):
    client = as_role("owner")
    leaks = []
    for rule in _rules(app):
        if app.view_functions[rule.endpoint]._access != "staff" or "GET" not in rule.methods:
            continue
        response = client.get(_url(rule))
        if response.status_code != 404:
            leaks.append(f"GET {_url(rule)} → {response.status_code}")
    assert not leaks, "\n".join(leaks)
