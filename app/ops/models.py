"""Alert rules staff configure, and the alerts they raise (platform-wide: no tenant owns them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import ID_LENGTH, PublicIdMixin
from app.extensions import db

# kind → what it watches
KINDS: dict[str, str] = {
    "webhook_success_rate": "Webhook success rate below a percentage over the last N minutes",
    "queue_oldest_job": "Oldest queued job (any queue) older than N seconds",
    "readiness_failing": "/readyz reports fail",
    "audit_chain_broken": "The daily audit chain verification found a break",
}


class AlertRule(PublicIdMixin, db.Model):
    """A condition checked every minute; it fires once it has held for `for_seconds`, and resolves when it
    stops holding. `pending_since` is when it started holding (None: not holding)."""

    __tablename__ = "alert_rules"
    id_prefix = "alr"

    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    window_minutes: Mapped[int] = mapped_column(default=15)
    for_seconds: Mapped[int] = mapped_column(default=0)
    enabled: Mapped[bool] = mapped_column(default=True)
    webhook_url: Mapped[str] = mapped_column(String(2000), default="")
    signing_secret: Mapped[str] = mapped_column(Text, default="")  # encrypted (app.webhooks.secrets)
    pending_since: Mapped[datetime | None] = mapped_column(default=None)
    last_value: Mapped[float | None] = mapped_column(Float, default=None)
    last_evaluated_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()

    @property
    def describe(self) -> str:
        if self.kind == "webhook_success_rate":
            return f"Webhook success below {self.threshold:g}% over {self.window_minutes} min"
        if self.kind == "queue_oldest_job":
            return f"Oldest queued job older than {self.threshold:g} s"
        return KINDS.get(self.kind, self.kind)


class Alert(PublicIdMixin, db.Model):
    """One firing of a rule: from fired_at until resolved_at (None: still firing)."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_rule_resolved", "rule_id", "resolved_at"),
                      Index("ix_alerts_resolved_fired", "resolved_at", "fired_at"))
    id_prefix = "alrt"

    rule_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("alert_rules.id", ondelete="CASCADE"))
    fired_at: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    value: Mapped[float | None] = mapped_column(Float, default=None)
    message: Mapped[str] = mapped_column(String(500), default="")
    notify_error: Mapped[str] = mapped_column(String(500), default="")
