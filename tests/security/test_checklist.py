"""The security checklist of ../shared/reference/admin-security.md (section 3, OWASP ASVS 4.0.3), item by item:
each item names the tests that prove it (test_every_item_names_tests_that_exist fails if one is renamed or
removed), and the items no other file covers are proved here."""

from __future__ import annotations

import importlib
import logging

import pytest

CHECKLIST: dict[str, list[str]] = {
    "1 password hashing (argon2id, OWASP minimum)": [
        "tests/security/test_checklist.py::test_passwords_are_argon2id_above_the_owasp_minimum"],
    "2 brute-force limit (11th failure 429, no account enumeration)": [
        "tests/security/test_login_sessions.py::test_eleventh_failed_login_for_an_account_gets_429_even_with_the_right_password",
        "tests/security/test_login_sessions.py::test_failed_logins_from_one_ip_are_throttled_across_accounts",
        "tests/security/test_login_sessions.py::test_login_message_does_not_reveal_whether_the_account_exists"],
    "3 MFA for platform admins": [
        "tests/auth/test_two_factor.py::test_staff_must_enrol_before_any_admin_page",
        "tests/auth/test_two_factor.py::test_enrolled_staff_sign_in_with_a_code"],
    "4 TOTP replay rejected": [
        "tests/auth/test_two_factor.py::test_a_code_used_once_is_refused_the_second_time",
        "tests/auth/test_two_factor.py::test_an_older_code_is_refused_after_a_newer_one"],
    "5 recovery codes hashed, single use": [
        "tests/auth/test_two_factor.py::test_tenant_user_enrols_and_gets_ten_single_use_recovery_codes",
        "tests/auth/test_two_factor.py::test_a_recovery_code_signs_in_once"],
    "6 session rotation at login": ["tests/security/test_login_sessions.py::test_session_id_changes_at_login"],
    "7 logout really ends the session": [
        "tests/security/test_login_sessions.py::test_logout_ends_the_session_even_if_the_cookie_is_replayed"],
    "8 session cookie attributes": ["tests/security/test_login_sessions.py::test_session_cookie_flags"],
    "9 session timeouts (30 min idle, 12 h absolute)": [
        "tests/security/test_login_sessions.py::test_session_ends_after_30_idle_minutes_and_after_12_hours"],
    "10 ending other sessions (self and by an admin)": [
        "tests/security/test_login_sessions.py::test_sign_out_everywhere_ends_other_browsers",
        "tests/auth/test_reauth_sessions.py::test_staff_end_a_tenant_users_sessions_from_the_tenant_page"],
    "11 re-authentication for sensitive actions": [
        "tests/auth/test_reauth_sessions.py::test_key_creation_asks_for_the_password_again_then_goes_back",
        "tests/auth/test_reauth_sessions.py::test_plan_change_secret_rotation_and_tenant_close_need_a_recent_confirmation"],
    "12 CSRF (forms and htmx header; API takes only Bearer keys)": [
        "tests/security/test_login_sessions.py::test_post_without_csrf_token_is_refused",
        "tests/security/test_login_sessions.py::test_htmx_post_with_csrf_header_is_accepted",
        "tests/security/test_checklist.py::test_the_api_ignores_session_cookies"],
    "13 cross-tenant isolation (matrix, and row-level security on PostgreSQL)": [
        "tests/security/test_isolation.py::test_tenant_pages_never_show_another_tenants_objects",
        "tests/security/test_isolation.py::test_api_routes_never_show_another_tenants_objects",
        "tests/security/test_row_security.py::test_an_unfiltered_query_in_a_tenants_request_sees_only_that_tenant"],
    "14 deny by default (route inventory)": [
        "tests/security/test_route_inventory.py::test_every_route_carries_an_access_decision",
        "tests/security/test_route_inventory.py::test_signed_out_requests_are_refused_everywhere_but_public_routes"],
    "15 API key format and storage (prefix, checksum, shown once, only a hash stored)": [
        "tests/auth/test_apikeys.py::TestFormat::test_prefix_length_alphabet_checksum",
        "tests/security/test_checklist.py::test_no_plaintext_key_is_stored"],
    "16 API key enforcement (scope 403, revoked/expired 401, last used, roll)": [
        "tests/auth/test_apikeys.py::TestAuthenticate::test_revoked_key_is_refused",
        "tests/auth/test_apikeys.py::TestAuthenticate::test_expired_key_is_refused",
        "tests/auth/test_apikeys.py::TestAuthenticate::test_last_used_at_is_written_at_most_once_a_minute",
        "tests/auth/test_apikeys.py::TestRoll::test_roll_without_grace_ends_the_old_key_now"],
    "17 no keys in URLs": ["tests/security/test_checklist.py::test_a_key_in_the_url_is_refused"],
    "18 security headers (CSP without unsafe-inline, HSTS, nosniff, referrer policy, frame-ancestors)": [
        "tests/security/test_login_sessions.py::test_pages_carry_security_headers",
        "tests/security/test_checklist.py::test_the_csp_allows_no_inline_code_or_eval"],
    "19 webhook URL validation (SSRF), at save and send, pinned": [
        "tests/webhooks/test_outbound_ssrf.py::test_refused_addresses_are_rejected_at_save_time",
        "tests/webhooks/test_outbound_ssrf.py::test_refused_addresses_are_rejected_at_send_time",
        "tests/webhooks/test_outbound_ssrf.py::test_the_connection_is_pinned_to_the_checked_address"],
    "20 webhook signing (Standard Webhooks)": [
        "tests/webhooks/test_outbound_signing.py::test_the_standardwebhooks_package_verifies_our_signature"],
    "21 audit coverage without secrets": [
        "tests/audit/test_trail.py::test_secrets_are_masked_in_changes_and_metadata",
        "tests/security/test_checklist.py::test_logins_and_denials_are_audited_and_logs_hold_no_secrets"],
    "22 audit table locked, verify catches edits": [
        "tests/audit/test_tamper.py::test_update_through_sqlalchemy_is_rejected",
        "tests/audit/test_tamper.py::test_edited_row_is_named_by_its_seq",
        "tests/security/test_row_security.py::test_the_tenant_role_cannot_change_the_audit_trail"],
    "23 log injection (CR/LF encoded)": [
        "tests/security/test_checklist.py::test_newlines_in_input_are_encoded_in_logs"],
    "24 API input and CORS (415, no wildcard or null origin)": [
        "tests/api/test_lists_and_invites.py::TestInvite::test_non_json_body_is_415",
        "tests/security/test_checklist.py::test_cors_never_allows_null_or_any_origin"],
    "25 production hardening (no debug, no version header)": [
        "tests/security/test_checklist.py::test_production_config_has_no_debug_and_no_version_header"],
}


def _resolve(node: str):
    path, *names = node.split("::")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    target = module
    for name in names:
        target = getattr(target, name)
    return target


def test_every_item_names_tests_that_exist():
    assert len(CHECKLIST) == 25
    missing = []
    for item, nodes in CHECKLIST.items():
        for node in nodes:
            try:
                _resolve(node)
            except (ImportError, AttributeError):
                missing.append(f"{item}: {node}")
    assert not missing, "checklist entries naming tests that do not exist:\n" + "\n".join(missing)


def test_passwords_are_argon2id_above_the_owasp_minimum(make):
    from argon2 import extract_parameters

    from app.auth.models import User
    from app.extensions import db

    user = make.user("hash@example.com")
    stored = db.session.get(User, user.id).password_hash
    params = extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2 and params.parallelism >= 1


def test_the_api_ignores_session_cookies(app, make, client, tenant_world):
    from tests.conftest import login
    from tests.factories import Factories

    owner = tenant_world["a"]["users"]["owner"]
    login(client, owner.email, Factories.PASSWORD)
    assert client.get("/api/v1/tenant").status_code == 401  # a signed-in browser is not an API client


def test_no_plaintext_key_is_stored(make, tenant_world):
    from sqlalchemy import text

    from app.extensions import db

    token = tenant_world["a"]["token"]
    for table in ("api_keys", "audit_events", "request_log", "idempotency_keys"):
        dump = " ".join(str(row) for row in db.session.execute(text(f"SELECT * FROM {table}")))
        assert token not in dump and token[-20:] not in dump, table


def test_a_key_in_the_url_is_refused(client, tenant_world):
    token = tenant_world["a"]["token"]
    for query in (f"api_key={token}", f"access_token={token}", f"key={token}"):
        response = client.get(f"/api/v1/tenant?{query}")
        assert response.status_code in (400, 401), query
    assert client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_the_csp_allows_no_inline_code_or_eval(client):
    csp = client.get("/login").headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";") if part.strip())
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'self'"
    assert directives["script-src"] == "'self'"


def test_logins_and_denials_are_audited_and_logs_hold_no_secrets(app, make, client, caplog, tenant_world):
    from sqlalchemy import select

    from app.audit.models import AuditEvent
    from app.extensions import db
    from tests.conftest import login
    from tests.factories import Factories

    caplog.set_level(logging.DEBUG)
    user = tenant_world["a"]["users"]["member"]
    client.form("/login", {"email": user.email, "password": "not the password at all"})
    login(client, user.email, Factories.PASSWORD)
    assert client.get("/t/tenant-a/audit").status_code == 403  # a member may not read the audit trail
    token = tenant_world["a"]["token"]
    client.get("/api/v1/members", headers={"Authorization": f"Bearer {token}"})
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"auth.login_failed", "auth.login", "access.denied"} <= actions
    logged = caplog.text
    assert "not the password at all" not in logged and token not in logged


@pytest.mark.parametrize("kind", ["json", "text"])
def test_newlines_in_input_are_encoded_in_logs(kind):
    from app.ops.logs import make_formatter

    record = logging.LogRecord("app.auth", logging.WARNING, __file__, 1, "sign-in failed for %s",
                               ("x@example.com\r\n2030-01-01 INFO app.auth: admin signed in",), None)
    line = make_formatter(kind).format(record)
    assert "\n" not in line and "\r" not in line and "admin signed in" in line


def test_cors_never_allows_null_or_any_origin(client, tenant_world):
    token = tenant_world["a"]["token"]
    for origin in ("null", "https://evil.example"):
        response = client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {token}", "Origin": origin})
        allowed = response.headers.get("Access-Control-Allow-Origin")
        assert allowed in (None, "") or (allowed not in ("*", "null") and allowed != origin)


def test_production_config_has_no_debug_and_no_version_header(monkeypatch):
    from app.config import Config

    monkeypatch.setenv("SECRET_KEY", "x" * 64)
    settings = Config()
    assert not getattr(settings, "DEBUG", False) and not getattr(settings, "TESTING", False)


@pytest.mark.parametrize("path", ["/login", "/livez", "/api/v1/tenant"])
def test_no_version_header_is_sent(client, path):
    response = client.get(path)
    assert "Server" not in response.headers and "X-Powered-By" not in response.headers
