"""People (users and operator staff), their sign-in sessions, and API keys."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import ID_LENGTH, PublicIdMixin, TenantScopedMixin, TimestampMixin
from app.extensions import db


def key_status(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> str:
    """An API key's status: revoked, expired or active."""
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "active"


class User(PublicIdMixin, TimestampMixin, UserMixin, db.Model):
    """A person. Email is stored normalised so that one person cannot register twice by case."""

    __tablename__ = "users"
    id_prefix = "usr"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    is_staff: Mapped[bool] = mapped_column(default=False)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)
    session_version: Mapped[int] = mapped_column(default=1)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    # Two-factor (TOTP): the secret Fernet-encrypted (set while enrolling, before it is confirmed), when
    # it was confirmed (None: 2FA off), and the last accepted 30-second time step (replay protection).
    totp_secret: Mapped[str | None] = mapped_column(String(300), default=None)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(default=None)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, default=None)

    session_id = None  # the AuthSession this request runs under; set by the session loader
    auth_session = None  # that AuthSession itself

    def get_id(self) -> str | None:  # Flask-Login stores the session id, not the user id
        return self.session_id

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.disabled_at is None

    @property
    def display(self) -> str:
        return self.name or self.email

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_enabled_at is not None


class AuthSession(PublicIdMixin, db.Model):
    """One signed-in browser session; the cookie holds only its id. Revoked on logout."""

    __tablename__ = "auth_sessions"
    id_prefix = "ses"

    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"), index=True)
    user_version: Mapped[int] = mapped_column()  # the user's session_version when created
    created_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime] = mapped_column()
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(400), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    mfa_at: Mapped[datetime | None] = mapped_column(default=None)  # when a second factor was proven
    reauth_at: Mapped[datetime | None] = mapped_column(default=None)  # the last password/code confirmation

    user: Mapped[User] = relationship(lazy="joined")


class RecoveryCode(PublicIdMixin, db.Model):
    """A single-use two-factor recovery code; only the SHA-256 of the (80-bit random) code is stored."""

    __tablename__ = "recovery_codes"
    id_prefix = "rc"

    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiKey(PublicIdMixin, TenantScopedMixin, TimestampMixin, db.Model):
    """A tenant API key. Only its SHA-256 is stored; the key itself is shown once."""

    __tablename__ = "api_keys"
    id_prefix = "key"

    name: Mapped[str] = mapped_column(String(80))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(20))  # e.g. "tnt_live_AbCd" for recognition
    last4: Mapped[str] = mapped_column(String(4))
    scopes: Mapped[list] = mapped_column(default=list)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    rolled_from_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)

    def status(self, now: datetime) -> str:
        """active, expired or revoked (a rolled key stays active until its expiry)."""
        return key_status(self.revoked_at, self.expires_at, now)

    @property
    def masked(self) -> str:
        return f"{self.prefix}…{self.last4}"
