"""A real OpenFeature client: the Python SDK (openfeature-sdk) with its OFREP provider
(openfeature-provider-ofrep), unchanged, against Tenantry served over HTTP by a threaded server."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from app.flags import service
from tests.flags.conftest import STAFF

openfeature_api = pytest.importorskip("openfeature.api")
from openfeature.contrib.provider.ofrep import OFREPProvider  # noqa: E402
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import ErrorCode  # noqa: E402
from openfeature.flag_evaluation import Reason  # noqa: E402


@pytest.fixture
def server(app) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def _client(base: str, token: str):
    domain = f"tenantry-{uuid.uuid4().hex[:8]}"
    openfeature_api.set_provider(OFREPProvider(base, headers_factory=lambda: {"Authorization": f"Bearer {token}"}),
                                 domain)
    return openfeature_api.get_client(domain)


def test_the_openfeature_sdk_evaluates_every_type_through_ofrep(ctx, tenant_world, server):
    a = tenant_world["a"]
    b = tenant_world["b"]["tenant"]
    service.create_flag(STAFF, {"key": "new-ui", "enabled": True,
                                "rules": [{"type": "tenants", "tenant_ids": [a["tenant"].id], "value": True}]})
    service.create_flag(STAFF, {"key": "banner", "type": "string", "default_value": "hello", "enabled": True})
    service.create_flag(STAFF, {"key": "max-items", "type": "number", "default_value": 25, "enabled": True})
    service.create_flag(STAFF, {"key": "ratio", "type": "number", "default_value": 0.25, "enabled": True})
    service.create_flag(STAFF, {"key": "theme", "type": "json", "default_value": {"color": "blue"}, "enabled": True})
    service.create_flag(STAFF, {"key": "copy", "type": "string", "default_value": "a", "enabled": True, "rules": [
        {"type": "variants", "variants": [{"name": "short", "value": "a", "weight": 50},
                                          {"name": "long", "value": "b", "weight": 50}]}]})
    client = _client(server, a["token"])
    context = EvaluationContext(targeting_key=b.id, attributes={"plan": "enterprise"})  # ignored: the key decides

    details = client.get_boolean_details("new-ui", False, context)
    assert (details.value, details.reason, details.variant) == (True, Reason.TARGETING_MATCH, "on")
    assert client.get_string_value("banner", "fallback", context) == "hello"
    assert client.get_integer_value("max-items", 0, context) == 25
    assert client.get_float_value("ratio", 0.0, context) == 0.25
    assert client.get_object_value("theme", {}, context) == {"color": "blue"}
    split = client.get_string_details("copy", "z", context)
    assert split.reason == Reason.SPLIT and split.value == {"short": "a", "long": "b"}[split.variant]
    assert client.get_boolean_value("webhooks", False) is True  # a plan feature (pro), no context at all

    missing = client.get_boolean_details("nope", False, context)
    assert missing.value is False and missing.error_code == ErrorCode.FLAG_NOT_FOUND
    mismatch = client.get_integer_details("banner", 7, context)
    assert mismatch.value == 7 and mismatch.error_code == ErrorCode.TYPE_MISMATCH

    service.set_enabled(STAFF, "banner", False)
    disabled = client.get_string_details("banner", "fallback", context)
    assert disabled.reason == Reason.DISABLED and disabled.value == "hello"

    stranger = _client(server, "tnt_live_not_a_key")
    refused = stranger.get_boolean_details("new-ui", False)
    assert refused.value is False and refused.error_code == ErrorCode.GENERAL
