"""API listings (cursor pagination) and POST /api/v1/members (validation, 415, Idempotency-Key)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth import apikeys
from app.auth.apikeys import hash_key
from app.extensions import db
from app.tenancy.models import Invitation


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def invitations() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Invitation))


def walk(client, url: str, token: str, limit: int) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        query = f"{url}?limit={limit}" + (f"&starting_after={cursor}" if cursor else "")
        response = client.get(query, headers=bearer(token))
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["object"] == "list"
        pages.append(body["data"])
        if not body["has_more"]:
            return pages
        cursor = body["data"][-1]["id"]
        assert len(pages) < 50


class TestPagination:
    def test_members_pages_cover_everyone_once_newest_first(self, client, tenant_world, make):
        a = tenant_world["a"]
        for _ in range(3):
            make.member(a["tenant"], "viewer")
        pages = walk(client, "/api/v1/members", a["token"], limit=2)
        assert [len(p) for p in pages] == [2, 2, 2, 1]
        ids = [m["id"] for page in pages for m in page]
        assert len(ids) == len(set(ids)) == 7
        assert ids == sorted(ids, reverse=True)
        assert {m["email"] for page in pages for m in page} >= {u.email for u in a["users"].values()}
        assert all(m["object"] == "member" and m["role"] for page in pages for m in page)

    def test_exact_fit_has_no_more(self, client, tenant_world):
        response = client.get("/api/v1/members?limit=4", headers=bearer(tenant_world["a"]["token"]))
        body = response.get_json()
        assert len(body["data"]) == 4 and body["has_more"] is False

    def test_default_limit_is_20(self, client, tenant_world, make):
        a = tenant_world["a"]
        for n in range(20):
            make.api_key(a["tenant"], name=f"key {n}")
        body = client.get("/api/v1/api-keys", headers=bearer(a["token"])).get_json()
        assert len(body["data"]) == 20 and body["has_more"] is True

    @pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=-1", "limit=ten", "starting_after=nope", "limt=5",
                                       "starting_after=mem_123", "starting_after=MEM_01ARZ3NDEKTSV4RRFFQ69G5FAV"])
    def test_bad_arguments_are_422_naming_the_field(self, client, tenant_world, query):
        for url in ("/api/v1/members", "/api/v1/api-keys"):
            response = client.get(f"{url}?{query}", headers=bearer(tenant_world["a"]["token"]))
            assert response.status_code == 422, (url, query)
            assert response.mimetype == "application/problem+json"
            fields = [e["field"] for e in response.get_json()["errors"]]
            assert fields == [query.split("=")[0]]

    def test_api_keys_listing_never_contains_a_secret(self, client, tenant_world, make):
        a = tenant_world["a"]
        plaintexts = [a["token"]] + [make.api_key(a["tenant"], name=f"k{n}")[1] for n in range(3)]
        body = client.get("/api/v1/api-keys?limit=100", headers=bearer(a["token"]))
        text = body.get_data(as_text=True)
        for plaintext in plaintexts:
            assert plaintext not in text
            assert plaintext[13:-4] not in text
        keys = body.get_json()["data"]
        assert len(keys) == 4
        for key in keys:
            assert set(key) >= {"id", "name", "masked", "scopes", "status"}
            assert not {"key_hash", "key", "secret", "token"} & set(key)
            assert key["masked"].startswith("tnt_live_") and "…" in key["masked"]
        assert not [p for p in plaintexts if hash_key(p) in text]

    def test_key_status_shows_revoked(self, client, tenant_world, make):
        a = tenant_world["a"]
        key, _ = make.api_key(a["tenant"], name="old")
        apikeys.revoke_key(make.actor_for(a["tenant"]), a["tenant"].id, key.id)
        keys = client.get("/api/v1/api-keys", headers=bearer(a["token"])).get_json()["data"]
        assert {k["id"]: k["status"] for k in keys}[key.id] == "revoked"


class TestInvite:
    def test_created_with_a_single_use_accept_link(self, client, tenant_world):
        response = client.post("/api/v1/members", json={"email": "New@Example.com", "role": "viewer"},
                               headers=bearer(tenant_world["a"]["token"]))
        assert response.status_code == 201, response.get_data(as_text=True)
        body = response.get_json()
        assert body == body | {"object": "invitation", "email": "new@example.com", "role": "viewer",
                               "status": "pending"}
        assert body["id"].startswith("ivt_")
        assert body["accept_url"].startswith("http") and "/invitations/" in body["accept_url"]
        token = body["accept_url"].rsplit("/", 1)[1]
        page = client.get(f"/invitations/{token}")
        assert page.status_code == 200
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "member.invited"))
        assert event.actor_type == "api_key" and event.actor_id == tenant_world["a"]["key"].id
        assert token not in json.dumps([event.meta, event.changes])

    def test_role_defaults_to_member(self, client, tenant_world):
        response = client.post("/api/v1/members", json={"email": "plain@example.com"},
                               headers=bearer(tenant_world["a"]["token"]))
        assert response.status_code == 201
        assert response.get_json()["role"] == "member"

    def test_keys_cannot_invite_owners(self, client, tenant_world):
        response = client.post("/api/v1/members", json={"email": "boss@example.com", "role": "owner"},
                               headers=bearer(tenant_world["a"]["token"]))
        assert response.status_code == 422
        assert response.get_json()["errors"][0]["field"] == "role"
        assert invitations() == 0

    def test_existing_member_is_a_conflict(self, client, tenant_world):
        response = client.post("/api/v1/members", json={"email": "VIEWER@a.example.com"},
                               headers=bearer(tenant_world["a"]["token"]))
        assert response.status_code == 409
        assert response.get_json()["errors"] == [{"field": "email", "message": "Already a member."}]

    @pytest.mark.parametrize(
        ("body", "fields"),
        [
            ({"email": "not-an-email", "role": "boss"}, {"email", "role"}),
            ({"role": "member"}, {"email"}),
            ({"email": "a@example.com", "role": "member", "extra": 1}, {"extra"}),
            ({"email": "x" * 250 + "@example.com"}, {"email"}),
            ({"email": 12}, {"email"}),
            ([], {"_schema"}),
        ],
    )
    def test_bad_input_is_422_with_per_field_errors_and_creates_nothing(self, client, tenant_world, body, fields):
        response = client.post("/api/v1/members", json=body, headers=bearer(tenant_world["a"]["token"]))
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.mimetype == "application/problem+json"
        problem = response.get_json()
        assert {e["field"] for e in problem["errors"]} == fields
        assert all(e["message"] for e in problem["errors"])
        assert invitations() == 0

    def test_address_that_the_schema_accepts_but_the_service_refuses_is_422(self, client, tenant_world):
        # marshmallow accepts dotless domains; the email validator does not.
        response = client.post("/api/v1/members", json={"email": "someone@localhost"},
                               headers=bearer(tenant_world["a"]["token"]))
        assert response.status_code == 422
        assert [e["field"] for e in response.get_json()["errors"]] == ["email"]
        assert invitations() == 0

    @pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
    def test_non_json_body_is_415(self, client, tenant_world, content_type):
        response = client.post("/api/v1/members", data="email=x@example.com", content_type=content_type,
                               headers=bearer(tenant_world["a"]["token"]))
        assert response.status_code == 415
        assert response.mimetype == "application/problem+json"
        assert invitations() == 0

    def test_no_body_at_all_is_422_naming_the_missing_field(self, client, tenant_world):
        response = client.post("/api/v1/members", headers=bearer(tenant_world["a"]["token"]))
        assert response.status_code == 422, response.get_data(as_text=True)
        assert [e["field"] for e in response.get_json()["errors"]] == ["email"]

    def test_unsupported_method_is_405_not_415(self, client, tenant_world):
        for method in (client.put, client.patch):
            response = method("/api/v1/tenant", data="x", content_type="text/plain",
                              headers=bearer(tenant_world["a"]["token"]))
            assert response.status_code == 405
            assert "GET" in response.headers["Allow"]

    def test_malformed_json_is_a_problem_not_a_500(self, client, tenant_world):
        response = client.post("/api/v1/members", data="{not json", content_type="application/json",
                               headers=bearer(tenant_world["a"]["token"]))
        assert response.status_code in (400, 422)
        assert response.mimetype == "application/problem+json"

    def test_seat_limit_is_409(self, client, tenant_world, make):
        from app.tenancy import service as tenancy_service

        a = tenant_world["a"]
        tenancy_service.update_tenant(make.system, a["tenant"].id, {"plan_id": "free"})  # 4 members > 3 seats
        response = client.post("/api/v1/members", json={"email": "more@example.com"}, headers=bearer(a["token"]))
        assert response.status_code == 409
        assert "3 members" in response.get_json()["detail"]


class TestIdempotency:
    def test_same_key_same_body_replays_the_stored_response(self, client, tenant_world):
        headers = bearer(tenant_world["a"]["token"], **{"Idempotency-Key": "invite-1"})
        first = client.post("/api/v1/members", json={"email": "once@example.com"}, headers=headers)
        second = client.post("/api/v1/members", json={"email": "once@example.com"}, headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.get_json() == first.get_json()
        assert second.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        assert invitations() == 1
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "member.invited")) == 1

    def test_same_key_other_body_is_409(self, client, tenant_world):
        headers = bearer(tenant_world["a"]["token"], **{"Idempotency-Key": "invite-2"})
        assert client.post("/api/v1/members", json={"email": "one@example.com"}, headers=headers).status_code == 201
        response = client.post("/api/v1/members", json={"email": "two@example.com"}, headers=headers)
        assert response.status_code == 409
        assert response.mimetype == "application/problem+json"
        assert "Idempotency-Key" in response.get_json()["detail"]
        assert invitations() == 1

    def test_keys_are_per_tenant(self, client, tenant_world):
        body = {"email": "shared@example.com"}
        for name in ("a", "b"):
            headers = bearer(tenant_world[name]["token"], **{"Idempotency-Key": "same-key"})
            response = client.post("/api/v1/members", json=body, headers=headers)
            assert response.status_code == 201
            assert "Idempotent-Replayed" not in response.headers
        assert invitations() == 2

    def test_failed_request_is_not_stored(self, client, tenant_world):
        headers = bearer(tenant_world["a"]["token"], **{"Idempotency-Key": "retry-me"})
        bad = client.post("/api/v1/members", json={"email": "nope"}, headers=headers)
        assert bad.status_code == 422
        again = client.post("/api/v1/members", json={"email": "nope"}, headers=headers)
        assert again.status_code == 422 and "Idempotent-Replayed" not in again.headers
        # The key was not used up by the failures: a corrected body goes through with it.
        fixed = client.post("/api/v1/members", json={"email": "fixed@example.com"}, headers=headers)
        assert fixed.status_code == 201
        assert invitations() == 1

    @pytest.mark.parametrize("key", ["", "x" * 256])
    def test_bad_idempotency_key_is_422(self, client, tenant_world, key):
        headers = bearer(tenant_world["a"]["token"], **{"Idempotency-Key": key})
        response = client.post("/api/v1/members", json={"email": "k@example.com"}, headers=headers)
        assert response.status_code == 422
        assert [e["field"] for e in response.get_json()["errors"]] == ["Idempotency-Key"]
        assert invitations() == 0

    def test_every_post_route_is_idempotent(self, app):
        posts = [rule for rule in app.url_map.iter_rules()
                 if rule.rule.startswith("/api/v1/") and "POST" in (rule.methods or ())]
        assert posts
        for rule in posts:
            assert getattr(app.view_functions[rule.endpoint], "_idempotent", False), rule.rule
