"""A staff job: a bulk action on tenants, an export or an import, run by an RQ worker with its progress
(`done` of `total`) committed as it goes, the rows it could not handle (`errors`, with a line number or a
tenant) and, for an export, the file to download (gzip-compressed in `result`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from app.db import ID_LENGTH, PublicIdMixin
from app.extensions import db

KINDS = ("bulk", "export", "import")
STATUSES = ("queued", "running", "succeeded", "failed")
MAX_ERRORS = 1000  # rows with a problem kept per job (the count goes on)


class StaffJob(PublicIdMixin, db.Model):
    """Platform-wide: staff start it; it may touch many tenants."""

    __tablename__ = "staff_jobs"
    __table_args__ = (Index("ix_staff_jobs_created_at", "created_at"),)
    id_prefix = "job"

    kind: Mapped[str] = mapped_column(String(10))
    action: Mapped[str] = mapped_column(String(40))  # bulk: change_plan…; export/import: the dataset
    params: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list] = mapped_column(default=list)
    summary: Mapped[dict] = mapped_column(default=dict)
    message: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, default=None))  # an import's file
    result: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, default=None))  # an export's file, gzipped
    result_name: Mapped[str] = mapped_column(String(200), default="")
    result_size: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def percent(self) -> int:
        if self.status == "succeeded":
            return 100
        return min(100, 100 * self.done // self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed")

    def note_error(self, where: Any, message: str) -> None:
        """Count a row that failed and keep the first MAX_ERRORS of them."""
        self.failed += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors = [*self.errors, {"at": where, "message": message[:300]}]
