"""Feature flags and their scheduled changes (platform-wide: no tenant owns a flag)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import ID_LENGTH, JSONType, PublicIdMixin
from app.extensions import db

FLAG_TYPES = ("boolean", "string", "number", "json")
SCHEDULE_ACTIONS = ("enable", "disable", "set_rollout", "set_rules")


class Flag(PublicIdMixin, db.Model):
    """A flag: a default value, an on/off kill switch and ordered rules (first match wins).

    `changed_at` moves on every change by a person, key or schedule (stale detection reads it);
    `last_evaluated_at` is written at most once a minute per process from in-memory marks, never per
    evaluation. `version` counts changes (editors send it back to refuse lost updates).
    """

    __tablename__ = "flags"
    id_prefix = "flag"

    key: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(1000), default="")
    type: Mapped[str] = mapped_column(String(10))
    default_value: Mapped[Any] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(default=False)
    tags: Mapped[list] = mapped_column(default=list)
    owner: Mapped[str] = mapped_column(String(200), default="")
    meta: Mapped[dict] = mapped_column("metadata", default=dict)
    rules: Mapped[list] = mapped_column(default=list)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column()
    changed_at: Mapped[datetime] = mapped_column()
    last_evaluated_at: Mapped[datetime | None] = mapped_column(default=None)
    archived_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class FlagSchedule(PublicIdMixin, db.Model):
    """A change to make to a flag at a set time: enable, disable, set_rollout ({"percentage", "rule"?})
    or set_rules ({"rules"}). Run by the scheduler; `done_at` once applied (or failed, with `error`)."""

    __tablename__ = "flag_schedules"
    __table_args__ = (Index("ix_flag_schedules_due", "done_at", "at"),)
    id_prefix = "fsc"

    flag_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("flags.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column()
    action: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column()
    done_at: Mapped[datetime | None] = mapped_column(default=None)
    canceled_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str] = mapped_column(String(500), default="")

    flag = relationship("Flag", lazy="joined", innerjoin=True)

    @property
    def status(self) -> str:
        """pending, done, failed or canceled."""
        if self.canceled_at:
            return "canceled"
        if self.done_at:
            return "failed" if self.error else "done"
        return "pending"
