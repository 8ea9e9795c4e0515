"""Standard Webhooks signatures, checked by the independent `standardwebhooks` package; secrets at rest."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from standardwebhooks import Webhook, WebhookVerificationError

from app.extensions import db
from app.webhooks import secrets, signing
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import owner

receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures


def test_generated_secrets_are_whsec_base64_of_24_to_64_random_bytes():
    for n in (24, 32, 64):
        secret = signing.generate_secret(n)
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret[6:])) == n
    assert signing.generate_secret() != signing.generate_secret()
    for n in (23, 65):
        with pytest.raises(ValueError):
            signing.generate_secret(n)


def test_the_standardwebhooks_package_verifies_our_signature():
    secret = signing.generate_secret()
    body = b'{"type":"member.added","data":{"email":"a@example.com"}}'
    ts = int(datetime.now(UTC).timestamp())
    headers = signing.headers("msg_01jd0000000000000000000000", ts, body, [secret])
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers) == {"type": "member.added", "data": {"email": "a@example.com"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_during_rotation_both_signatures_are_sent_and_either_secret_verifies():
    old, new = signing.generate_secret(), signing.generate_secret()
    body = b"{}"
    headers = signing.headers("msg_1", int(datetime.now(UTC).timestamp()), body, [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(body, headers) == {}
    assert Webhook(old).verify(body, headers) == {}


def test_malformed_secrets_and_ids_are_refused():
    for bad in ("nope", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError):
            signing.sign(bad, "msg_1", 1, b"{}")
    with pytest.raises(ValueError):
        signing.sign(signing.generate_secret(), "msg.1", 1, b"{}")


def test_secrets_are_encrypted_at_rest_and_never_audited(webhook_env, make):
    from app.audit.models import AuditEvent
    from app.webhooks import outbound

    tenant = make.tenant()
    endpoint, secret = outbound.create_endpoint(owner(tenant), tenant.id, {"url": "http://127.0.0.1:9/x"})
    stored = db.session.execute(text("SELECT secret_encrypted FROM webhook_endpoints")).scalar()
    assert secret not in stored and secret[6:] not in stored
    assert secrets.decrypt(stored) == secret
    assert outbound.signing_secrets(endpoint) == [secret]
    for event in db.session.scalars(db.select(AuditEvent)):
        assert secret[6:] not in str(event.changes) + str(event.meta)


def test_key_rotation_of_the_encryption_key(ctx, monkeypatch):
    from cryptography.fernet import Fernet

    token = secrets.encrypt("whsec_abc")
    monkeypatch.setitem(ctx.config, "WEBHOOK_ENCRYPTION_KEYS", [Fernet.generate_key().decode()])
    with pytest.raises(Exception):  # noqa: B017 - InvalidToken: the derived key is no longer configured
        secrets.decrypt(token)
