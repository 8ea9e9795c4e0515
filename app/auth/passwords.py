"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 128

# argon2-cffi's defaults are argon2id, t=3, m=64 MiB, p=4: above OWASP's minimum.
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("timing-equaliser-not-a-password")


def policy_error(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if password.strip() != password or not password.strip():
        return "The password must not start or end with spaces."
    return None


def hash_password(password: str) -> str:
    """An $argon2id$ hash."""
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Check a password; with no stored hash the work is still done so timing reveals nothing."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
