"""GET /api/v1/flags (ETag, 304), GET /api/v1/flags/{key}, and OFREP's endpoints: shapes, error codes,
and that a tenant only ever evaluates as itself."""

from __future__ import annotations

import pytest

from app.flags import service
from app.flags.snapshot import holder
from app.security import Actor
from app.tenancy import service as tenancy_service
from tests.flags.conftest import STAFF


def _auth(world, name="a") -> dict[str, str]:
    return {"Authorization": f"Bearer {world[name]['token']}"}


@pytest.fixture
def flagged(ctx, tenant_world):
    b = tenant_world["b"]["tenant"]
    service.create_flag(STAFF, {"key": "new-ui", "enabled": True,
                                "rules": [{"type": "tenants", "tenant_ids": [b.id], "value": True}]})
    service.create_flag(STAFF, {"key": "banner", "type": "string", "default_value": "hello", "enabled": True})
    service.create_flag(STAFF, {"key": "max-items", "type": "number", "default_value": 25, "enabled": True})
    service.create_flag(STAFF, {"key": "theme", "type": "json", "default_value": {"color": "blue"}, "enabled": True})
    holder.reset()
    return tenant_world


def test_list_evaluates_every_flag_for_the_caller_with_an_etag(client, flagged):
    response = client.get("/api/v1/flags", headers=_auth(flagged))
    assert response.status_code == 200
    body = response.get_json()
    by_key = {item["key"]: item for item in body["data"]}
    assert by_key["new-ui"] == {"object": "flag_evaluation", "key": "new-ui", "type": "boolean", "value": False,
                                "variant": "default", "reason": "DEFAULT"}
    assert by_key["banner"]["value"] == "hello" and by_key["banner"]["reason"] == "STATIC"
    assert by_key["theme"]["value"] == {"color": "blue"}
    assert by_key["webhooks"]["value"] is True  # tenant A is on pro: a plan feature, read as a flag
    etag = response.headers["ETag"]
    again = client.get("/api/v1/flags", headers={**_auth(flagged), "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag and again.data == b""
    other = client.get("/api/v1/flags", headers=_auth(flagged, "b"))
    assert other.headers["ETag"] != etag  # the ETag is per tenant
    assert {i["key"]: i for i in other.get_json()["data"]}["new-ui"]["value"] is True
    service.update_flag(STAFF, "banner", {"default_value": "bye"})
    changed = client.get("/api/v1/flags", headers={**_auth(flagged), "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    tenancy_service.update_tenant(Actor.system("tests"), flagged["a"]["tenant"].id, {"plan_id": "free"})
    fresh = changed.headers["ETag"]
    moved = client.get("/api/v1/flags", headers={**_auth(flagged), "If-None-Match": fresh})
    assert moved.status_code == 200  # the tenant's plan changed what it gets
    assert {i["key"]: i for i in moved.get_json()["data"]}["webhooks"]["value"] is False


def test_one_flag_and_errors(client, flagged):
    response = client.get("/api/v1/flags/max-items", headers=_auth(flagged))
    assert response.get_json() == {"object": "flag_evaluation", "key": "max-items", "type": "number", "value": 25,
                                   "variant": "default", "reason": "STATIC"}
    missing = client.get("/api/v1/flags/nope", headers=_auth(flagged))
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    assert client.get("/api/v1/flags").status_code == 401


def test_flags_read_scope_is_required(client, make, flagged):
    _key, token = make.api_key(flagged["a"]["tenant"], scopes=["usage:read"])
    for method, url in (("GET", "/api/v1/flags"), ("POST", "/ofrep/v1/evaluate/flags/banner"),
                        ("POST", "/ofrep/v1/evaluate/flags")):
        response = client.open(url, method=method, headers={"Authorization": f"Bearer {token}"}, json={})
        assert response.status_code == 403
        assert response.get_json()["missing_scope"] == "flags:read"


def test_ofrep_single_evaluation_shapes(client, flagged):
    headers = _auth(flagged)
    ok = client.post("/ofrep/v1/evaluate/flags/banner", headers=headers, json={"context": {"targetingKey": "x"}})
    assert ok.status_code == 200
    assert ok.get_json() == {"key": "banner", "value": "hello", "reason": "STATIC", "variant": "default",
                             "metadata": {"flagType": "string"}}
    assert client.post("/ofrep/v1/evaluate/flags/theme", headers=headers, json={}).get_json()["value"] == \
        {"color": "blue"}
    no_body = client.post("/ofrep/v1/evaluate/flags/max-items", headers=headers)
    assert no_body.status_code == 200 and no_body.get_json()["value"] == 25


@pytest.mark.parametrize(("body", "content_type", "code"), [
    ("{not json", "application/json", "PARSE_ERROR"),
    ("[1, 2]", "application/json", "PARSE_ERROR"),
    ('{"context": 5}', "application/json", "INVALID_CONTEXT"),
    ('{"context": {"targetingKey": 7}}', "application/json", "INVALID_CONTEXT"),
])
def test_ofrep_bad_requests(client, flagged, body, content_type, code):
    single = client.post("/ofrep/v1/evaluate/flags/banner", headers=_auth(flagged), data=body,
                         content_type=content_type)
    assert single.status_code == 400
    assert single.get_json()["key"] == "banner" and single.get_json()["errorCode"] == code
    assert single.get_json()["errorDetails"]
    bulk = client.post("/ofrep/v1/evaluate/flags", headers=_auth(flagged), data=body, content_type=content_type)
    assert bulk.status_code == 400 and bulk.get_json()["errorCode"] == code and "key" not in bulk.get_json()


def test_ofrep_not_found_and_unauthorized(client, flagged):
    missing = client.post("/ofrep/v1/evaluate/flags/nope", headers=_auth(flagged), json={})
    assert missing.status_code == 404
    assert missing.get_json() == {"key": "nope", "errorCode": "FLAG_NOT_FOUND", "errorDetails": "No flag 'nope'."}
    assert client.post("/ofrep/v1/evaluate/flags/banner", json={}).status_code == 401
    bad = client.post("/ofrep/v1/evaluate/flags", json={}, headers={"Authorization": "Bearer tnt_live_nope"})
    assert bad.status_code == 401


def test_ofrep_bulk_with_etag(client, flagged):
    headers = _auth(flagged)
    response = client.post("/ofrep/v1/evaluate/flags", headers=headers, json={"context": {"targetingKey": "a"}})
    assert response.status_code == 200
    flags = {f["key"]: f for f in response.get_json()["flags"]}
    assert flags["new-ui"] == {"key": "new-ui", "value": False, "reason": "DEFAULT", "variant": "default",
                               "metadata": {"flagType": "boolean"}}
    etag = response.headers["ETag"]
    same = client.post("/ofrep/v1/evaluate/flags", headers={**headers, "If-None-Match": etag}, json={})
    assert same.status_code == 304 and same.headers["ETag"] == etag
    service.set_enabled(STAFF, "banner", False)
    later = client.post("/ofrep/v1/evaluate/flags", headers={**headers, "If-None-Match": etag}, json={})
    assert later.status_code == 200
    assert {f["key"]: f for f in later.get_json()["flags"]}["banner"]["reason"] == "DISABLED"


def test_a_tenant_never_evaluates_as_another(client, flagged):
    """Tenant B has an override; tenant A naming B in the context still gets its own value."""
    b = flagged["b"]["tenant"]
    context = {"context": {"targetingKey": b.id, "tenant_id": b.id, "tenantId": b.id}}
    single = client.post("/ofrep/v1/evaluate/flags/new-ui", headers=_auth(flagged), json=context)
    assert single.get_json()["value"] is False and single.get_json()["reason"] == "DEFAULT"
    bulk = client.post("/ofrep/v1/evaluate/flags", headers=_auth(flagged), json=context)
    assert {f["key"]: f for f in bulk.get_json()["flags"]}["new-ui"]["value"] is False
    listed = client.get(f"/api/v1/flags/new-ui?tenant_id={b.id}", headers=_auth(flagged))
    assert listed.get_json()["value"] is False  # no parameter names another tenant
    own = client.post("/ofrep/v1/evaluate/flags/new-ui", headers=_auth(flagged, "b"), json={})
    assert own.get_json()["value"] is True and own.get_json()["reason"] == "TARGETING_MATCH"
