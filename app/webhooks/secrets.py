"""Endpoint signing secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) under keys from config.

WEBHOOK_ENCRYPTION_KEYS lists Fernet keys, newest first: the first encrypts, any decrypts (MultiFernet),
so a key is rotated by putting a new one in front and re-encrypting at leisure. Unset, one key is derived
from SECRET_KEY (SHA-256 of a labelled SECRET_KEY), which keeps the embedded mode working with no setup.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, MultiFernet
from flask import current_app


def _fernet() -> MultiFernet:
    config = current_app.config
    keys = list(config.get("WEBHOOK_ENCRYPTION_KEYS") or [])
    if not keys:
        digest = hashlib.sha256(b"tenantry webhook secrets\0" + config["SECRET_KEY"].encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plaintext: str) -> str:
    """The secret encrypted under the current key (a Fernet token, ASCII)."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """The secret back; raises cryptography.fernet.InvalidToken if no configured key fits."""
    return _fernet().decrypt(token.encode()).decode()
