"""Platform API keys: operator automation on /api/v1/admin/…, owned by no tenant (so not tenant-scoped)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import ID_LENGTH, PublicIdMixin, TimestampMixin
from app.extensions import db


class PlatformApiKey(PublicIdMixin, TimestampMixin, db.Model):
    """A platform key (``tnt_plat_…``) made by staff. Only its SHA-256 is stored; the key is shown once."""

    __tablename__ = "platform_api_keys"
    id_prefix = "pkey"

    name: Mapped[str] = mapped_column(String(80))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(20))  # "tnt_plat_AbCd", for recognition
    last4: Mapped[str] = mapped_column(String(4))
    scopes: Mapped[list] = mapped_column(default=list)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_by_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)
    revoked_by: Mapped[str] = mapped_column(String(254), default="")

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_at is not None else "active"

    @property
    def masked(self) -> str:
        return f"{self.prefix}…{self.last4}"
