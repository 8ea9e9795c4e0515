"""Tenants, their tags, memberships (user ↔ tenant with a role) and invitations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import ID_LENGTH, PublicIdMixin, TenantScopedMixin, TimestampMixin
from app.extensions import db

STATUSES = ("active", "suspended", "closed")


class Tenant(PublicIdMixin, TimestampMixin, db.Model):
    """A customer organisation."""

    __tablename__ = "tenants"
    id_prefix = "ten"

    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(12), default="active", index=True)
    status_reason: Mapped[str] = mapped_column(String(300), default="")
    country: Mapped[str] = mapped_column(String(2), default="US")
    billing_email: Mapped[str] = mapped_column(String(254), default="")
    plan_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("plans.id"), index=True)

    plan = relationship("Plan", lazy="joined")
    tag_rows: Mapped[list[TenantTag]] = relationship(
        back_populates="tenant", cascade="all, delete-orphan", lazy="selectin", order_by="TenantTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    @property
    def is_active(self) -> bool:
        return self.status == "active"


class TenantTag(db.Model):
    """One tag on a tenant (a row each, so filtering by tag is an indexed lookup on every database)."""

    __tablename__ = "tenant_tags"

    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("tenants.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)
    tenant: Mapped[Tenant] = relationship(back_populates="tag_rows")


class Membership(PublicIdMixin, TenantScopedMixin, TimestampMixin, db.Model):
    """A user's role in a tenant."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)
    id_prefix = "mem"

    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(12))

    user = relationship("User", lazy="joined")
    tenant = relationship("Tenant", lazy="joined")


class Invitation(PublicIdMixin, TenantScopedMixin, TimestampMixin, db.Model):
    """A single-use invitation token (stored as SHA-256) that expires."""

    __tablename__ = "invitations"
    id_prefix = "ivt"

    email: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[str] = mapped_column(String(12))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(200), default="")
    expires_at: Mapped[datetime] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    tenant = relationship("Tenant", lazy="joined")

    def status(self, now: datetime) -> str:
        """pending, accepted, revoked or expired."""
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "pending"
