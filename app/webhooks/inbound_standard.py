"""Verify an inbound Standard Webhooks request (standardwebhooks.com spec v1.0.0, `v1` HMAC-SHA256).

Signed content is "{webhook-id}.{webhook-timestamp}.{raw body}"; the key is the base64-decoded secret
after its "whsec_" prefix; `webhook-signature` is a space-separated list of "<version>,<base64>" (more
than one during a secret rotation), and one matching `v1` entry is enough. The signature is checked
before the timestamp, so a StaleWebhook is always an authentic (signed) request that came too late
or too early, never a forgery. Asymmetric `v1a` (ed25519) entries are skipped, like the reference
libraries do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from app import clock

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


class WebhookVerificationError(Exception):
    """The request is not a genuine one: missing or malformed headers, or no matching signature."""

    kind = "signature_failed"  # the inbound security count it falls under


class StaleWebhook(WebhookVerificationError):
    """Signed correctly, but its timestamp is outside the tolerance (a replay, or a badly skewed clock)."""

    kind = "stale"


@dataclass(frozen=True)
class VerifiedWebhook:
    """What the headers said, once verified: the message id (the deduplication key) and its timestamp."""

    id: str
    timestamp: int


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a "whsec_<base64>" secret. A bad secret is a configuration error (ValueError)."""
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret is not base64 (after its whsec_ prefix)") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():  # header names are case-insensitive, whatever the mapping
        if key.lower() == name:
            return (value or "").strip()
    return ""


def verify_standard_webhook(secret: str, headers: Mapping[str, str], body: bytes | str,
                            tolerance: int = 300) -> VerifiedWebhook:
    """Check a Standard Webhooks request against `secret`; raise WebhookVerificationError (or its
    StaleWebhook) if it is not authentic and recent, within `tolerance` seconds either way."""
    key = decode_secret(secret)
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    missing = [name for name, value in (("webhook-id", msg_id), ("webhook-timestamp", stamp),
                                        ("webhook-signature", signatures)) if not value]
    if missing:
        raise WebhookVerificationError(f"missing header{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise WebhookVerificationError("webhook-timestamp is not a Unix time in seconds")
    payload = body.encode() if isinstance(body, str) else bytes(body)
    expected = hmac.new(key, f"{msg_id}.{stamp}.".encode() + payload, hashlib.sha256).digest()
    matched = False
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        matched = hmac.compare_digest(candidate, expected) or matched  # no early exit: constant time per entry
    if not matched:
        raise WebhookVerificationError("no v1 signature matches the body with this secret")
    timestamp = int(stamp)
    now = clock.now().timestamp()
    if timestamp < now - tolerance:
        raise StaleWebhook(f"webhook-timestamp is more than {tolerance} s old")
    if timestamp > now + tolerance:
        raise StaleWebhook(f"webhook-timestamp is more than {tolerance} s in the future")
    return VerifiedWebhook(msg_id, timestamp)
