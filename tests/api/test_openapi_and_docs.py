"""/api/openapi.json is valid OpenAPI 3 and complete; /api/docs works offline from local assets."""

from __future__ import annotations

import re

import jsonschema
import pytest

from app.config import ROOT


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_spec_is_valid_openapi_3(spec):
    # The official OpenAPI 3.0 JSON Schema, as shipped with schemathesis.
    from schemathesis.specs.openapi.definitions import OPENAPI_30

    assert spec["openapi"].startswith("3.0")
    jsonschema.validators.validator_for(OPENAPI_30)(OPENAPI_30).validate(spec)


def test_spec_lists_every_api_route(app, spec):
    routes = {(openapi_path(rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.rule.startswith(("/api/v1/", "/ofrep/v1/"))
              for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, operations in spec["paths"].items()
                  for method in operations if method in {"get", "post", "put", "patch", "delete"}}
    assert routes, "no /api/v1 routes registered"
    assert routes <= documented, routes - documented
    assert documented <= routes, documented - routes


def test_every_operation_documents_auth_and_problems(spec):
    assert spec["components"]["securitySchemes"]["bearerAuth"] == spec["components"]["securitySchemes"][
        "bearerAuth"] | {"type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"bearerAuth": []}]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation["responses"]
            assert {"401", "403"} <= set(responses), (path, method)
            problem = responses["401"]["content"]["application/problem+json"]["schema"]
            assert problem == {"$ref": "#/components/schemas/Problem"}
            if method == "post" and path.startswith("/api/v1/"):  # OFREP's POSTs are reads with OFREP's errors
                assert {"409", "415", "422"} <= set(responses), (path, method)
                headers = [p for p in operation.get("parameters", []) if p["in"] == "header"]
                assert [p["name"] for p in headers] == ["Idempotency-Key"], (path, method)


def test_problem_schema(spec):
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "errors", "missing_scope"} <= set(problem["properties"])


def test_docs_page_uses_only_local_assets(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r'data-spec-url="([^"]+)"', html)
    assert urls
    remote = [u for u in urls if re.match(r"^(?:[a-z]+:)?//", u, re.IGNORECASE)]
    assert remote == []
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content_length or asset.get_data()
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_docs_do_not_call_the_public_swagger_validator(client):
    # Swagger UI's default shows a badge fetched from validator.swagger.io: off the box and blocked by the CSP.
    script = (ROOT / "static" / "js" / "api-docs.js").read_text()
    assert re.search(r"validatorUrl\s*:\s*null", script)


def test_docs_assets_are_allowlisted(client):
    assert client.get("/api/docs/assets/swagger-ui.css").status_code == 200
    assert client.get("/api/docs/assets/index.html").status_code == 404
    assert client.get("/api/docs/assets/../../app/config.py").status_code == 404
