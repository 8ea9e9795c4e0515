"""verify_standard_webhook against an independent signer and verifier: the `standardwebhooks` package
(the Standard Webhooks reference library for Python)."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks import WebhookVerificationError as ReferenceRefused

from app import clock
from app.webhooks.inbound_standard import (
    StaleWebhook,
    VerifiedWebhook,
    WebhookVerificationError,
    decode_secret,
    verify_standard_webhook,
)

SECRET = "whsec_" + base64.b64encode(b"tenantry-standard-webhooks-test!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
BODY = '{"type":"invoice.paid","data":{"id":"inv_1","amount":1200}}'


def signed(body: str = BODY, secret: str = SECRET, msg_id: str = "msg_2a9Kx", at: datetime | None = None) -> dict:
    """Headers as a Standard Webhooks sender makes them, signed by the reference library."""
    at = at or datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body)}


def reference_accepts(headers: dict, body: str = BODY, secret: str = SECRET) -> bool:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except (ReferenceRefused, ValueError):
        return False
    return True


def test_a_valid_signature_is_accepted_like_the_reference_does():
    headers = signed()
    result = verify_standard_webhook(SECRET, headers, BODY.encode())
    assert result == VerifiedWebhook("msg_2a9Kx", int(headers["webhook-timestamp"]))
    assert verify_standard_webhook(SECRET, headers, BODY) == result  # str bodies too
    assert reference_accepts(headers)


def test_header_names_are_case_insensitive():
    headers = {key.title(): value for key, value in signed().items()}  # Webhook-Id, …
    assert verify_standard_webhook(SECRET, headers, BODY).id == "msg_2a9Kx"


def test_a_tampered_body_is_refused():
    headers = signed()
    tampered = BODY.replace("1200", "1")
    with pytest.raises(WebhookVerificationError) as caught:
        verify_standard_webhook(SECRET, headers, tampered)
    assert caught.type is WebhookVerificationError and caught.value.kind == "signature_failed"
    assert not reference_accepts(headers, tampered)


def test_a_tampered_id_or_timestamp_is_refused():
    headers = signed()
    for name, value in (("webhook-id", "msg_other"), ("webhook-timestamp", str(int(headers["webhook-timestamp"]) - 1))):
        changed = headers | {name: value}
        with pytest.raises(WebhookVerificationError):
            verify_standard_webhook(SECRET, changed, BODY)
        assert not reference_accepts(changed)


def test_a_signature_made_with_another_secret_is_refused():
    headers = signed(secret=OTHER_SECRET)
    with pytest.raises(WebhookVerificationError, match="no v1 signature matches"):
        verify_standard_webhook(SECRET, headers, BODY)
    assert not reference_accepts(headers)
    assert verify_standard_webhook(OTHER_SECRET, headers, BODY)  # its own secret verifies it


def test_old_and_future_timestamps_are_stale_even_when_signed():
    now = datetime.now(UTC)
    old = signed(at=now - timedelta(seconds=301))
    with pytest.raises(StaleWebhook, match="old") as caught:
        verify_standard_webhook(SECRET, old, BODY)
    assert caught.value.kind == "stale"
    assert not reference_accepts(old)
    future = signed(at=now + timedelta(seconds=301))
    with pytest.raises(StaleWebhook, match="future"):
        verify_standard_webhook(SECRET, future, BODY)
    assert not reference_accepts(future)
    # Within the tolerance either way: accepted by both.
    for seconds in (-290, 290):
        headers = signed(at=now + timedelta(seconds=seconds))
        assert verify_standard_webhook(SECRET, headers, BODY) and reference_accepts(headers)


def test_the_tolerance_is_a_parameter_and_time_comes_from_the_clock():
    at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    headers = signed(at=at)
    with clock.travel(at + timedelta(seconds=3600)):
        with pytest.raises(StaleWebhook):
            verify_standard_webhook(SECRET, headers, BODY)
        assert verify_standard_webhook(SECRET, headers, BODY, tolerance=3601).timestamp == int(at.timestamp())


def test_an_old_forgery_is_a_signature_failure_not_a_stale_request():
    headers = signed(secret=OTHER_SECRET, at=datetime.now(UTC) - timedelta(hours=2))
    with pytest.raises(WebhookVerificationError) as caught:
        verify_standard_webhook(SECRET, headers, BODY)
    assert caught.type is WebhookVerificationError


def test_one_valid_signature_among_several_is_enough():
    """During a secret rotation the sender signs with the old and the new secret (and maybe v1a)."""
    good = signed()["webhook-signature"]
    other = signed(secret=OTHER_SECRET)["webhook-signature"]
    headers = signed() | {"webhook-signature": f"{other} v1a,{base64.b64encode(os.urandom(64)).decode()} {good}"}
    assert verify_standard_webhook(SECRET, headers, BODY).id == "msg_2a9Kx"
    assert reference_accepts(headers | {"webhook-signature": f"{other} {good}"})
    only_wrong = headers | {"webhook-signature": f"{other} v1a,{good.split(',')[1]} v2,{good.split(',')[1]}"}
    with pytest.raises(WebhookVerificationError):
        verify_standard_webhook(SECRET, only_wrong, BODY)


@pytest.mark.parametrize("change", [
    {"webhook-id": ""}, {"webhook-timestamp": ""}, {"webhook-signature": ""},
    {"webhook-timestamp": "soon"}, {"webhook-timestamp": "1.7e9"}, {"webhook-timestamp": "-5"},
    {"webhook-signature": "v1"}, {"webhook-signature": "v1,"}, {"webhook-signature": "v1,%%%not-base64%%%"},
    {"webhook-signature": "nonsense"},
])
def test_missing_or_malformed_headers_raise_the_verification_error(change):
    headers = {k: v for k, v in (signed() | change).items() if v}
    with pytest.raises(WebhookVerificationError):
        verify_standard_webhook(SECRET, headers, BODY)


def test_a_malformed_secret_is_a_configuration_error():
    with pytest.raises(ValueError, match="base64"):
        verify_standard_webhook("whsec_not base64!", signed(), BODY)
    with pytest.raises(ValueError, match="empty"):
        decode_secret("whsec_")
    assert decode_secret(SECRET) == b"tenantry-standard-webhooks-test!"
    assert decode_secret(SECRET.removeprefix("whsec_")) == decode_secret(SECRET)  # the prefix is optional
