"""Standard Webhooks signatures (v1, HMAC-SHA256), as Svix sends them.

Headers: `webhook-id` (the message id, the same on every attempt), `webhook-timestamp` (Unix seconds of
this attempt) and `webhook-signature`: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, where
key is base64decode(secret without "whsec_"). During a secret rotation both signatures are sent,
space-separated, so receivers verifying with either secret accept the request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
MIN_BYTES, MAX_BYTES = 24, 64


def generate_secret(nbytes: int = 32) -> str:
    """A new endpoint secret: whsec_ + base64 of `nbytes` random bytes (24–64)."""
    if not MIN_BYTES <= nbytes <= MAX_BYTES:
        raise ValueError(f"a secret has {MIN_BYTES}–{MAX_BYTES} random bytes")
    return PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a whsec_ secret; ValueError if it is not one."""
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if not MIN_BYTES <= len(key) <= MAX_BYTES:
        raise ValueError(f"a webhook secret holds {MIN_BYTES}–{MAX_BYTES} bytes")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature."""
    if "." in msg_id:
        raise ValueError("a webhook id must not contain '.'")
    content = f"{msg_id}.{int(timestamp)}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_key(secret), content, hashlib.sha256).digest()).decode()


def headers(msg_id: str, timestamp: int, body: bytes, secrets_: list[str]) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every given secret (current first)."""
    if not secrets_:
        raise ValueError("at least one secret is needed")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets_),
    }
