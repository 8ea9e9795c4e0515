"""The request log: one row per answered API call, kept for REQUEST_LOG_RETENTION_DAYS."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import ID_LENGTH, TenantScopedMixin
from app.extensions import db

ROUTE_LENGTH = 200
PATH_LENGTH = 200
REQUEST_ID_LENGTH = 64  # X-Request-ID as accepted by app.web (8 to 64 characters)


class RequestLogEntry(TenantScopedMixin, db.Model):
    """One API request as it was answered: when, what, how, by which key and from where.

    The request id is the one in the response's X-Request-ID. A client may choose it, so it is unique
    only together with the tenant and the time: a client that sends the same id twice gets two rows,
    and no tenant can shadow another's. The drain inserts with ON CONFLICT DO NOTHING on that key, so
    an entry delivered twice is stored once.
    """

    __tablename__ = "request_log"
    __table_args__ = (
        UniqueConstraint("request_id", "tenant_id", "at"),
        # Newest first, ties broken by id: the listings' order, for one tenant and across all of them.
        Index("ix_request_log_tenant_at", "tenant_id", "at", "id"),
        Index("ix_request_log_at", "at", "id"),
        Index("ix_request_log_tenant_key_at", "tenant_id", "api_key_id", "at"),
        Index("ix_request_log_tenant_route_at", "tenant_id", "route", "at"),
        Index("ix_request_log_tenant_status_at", "tenant_id", "status", "at"),
    )

    # Indexed by the composite indexes below, which all lead with it (no separate index to maintain on
    # the busiest table).
    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("tenants.id"), nullable=False)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                                    autoincrement=True)
    at: Mapped[datetime] = mapped_column()  # when it was answered (UTC, millisecond precision)
    method: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(ROUTE_LENGTH))  # the URL rule, e.g. /api/v1/members/<member_id>
    path: Mapped[str] = mapped_column(String(PATH_LENGTH))
    status: Mapped[int] = mapped_column(SmallInteger)
    duration_ms: Mapped[float] = mapped_column(Float)
    api_key_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    request_id: Mapped[str] = mapped_column(String(REQUEST_ID_LENGTH))
    ip: Mapped[str] = mapped_column(String(64), default="")

    @property
    def status_class(self) -> str:
        return f"{self.status // 100}xx"

    @property
    def status_kind(self) -> str:
        """The badge for the status: success, warning (4xx) or error (5xx)."""
        return "success" if self.status < 400 else "warning" if self.status < 500 else "error"
