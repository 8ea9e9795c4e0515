"""Declarative base, prefixed time-sortable ids, UTC timestamps and the tenant-scoped mixin."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, ForeignKey, MetaData, Select, String, TypeDecorator, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, registry

from app import clock

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 40
_ID_RE = re.compile(r"^[a-z]{2,5}_[0-9a-hjkmnp-tv-z]{26}$")


_last_ulid: list[int] = [0, 0]  # (milliseconds, random part) of the last id this process made
_ulid_lock = threading.Lock()


def new_id(prefix: str) -> str:
    """A public id: prefix + lowercase ULID, sortable by creation time (from clock.now()).

    Within one millisecond the random part counts up (a monotonic ULID), so ids made one after the
    other in a process also sort in that order.
    """
    millis = int(clock.now().timestamp() * 1000)
    with _ulid_lock:
        if millis == _last_ulid[0]:
            randomness = _last_ulid[1] + 1
        else:
            randomness = int.from_bytes(os.urandom(10), "big") >> 1  # leave room to count up
        _last_ulid[0], _last_ulid[1] = millis, randomness
    value = (millis << 80) | (randomness & ((1 << 80) - 1))
    return f"{prefix}_{_ulid_text(value)}"


_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_SHIFTS = tuple(range(125, -1, -5))


def _ulid_text(value: int) -> str:
    """str(ULID.from_int(value)).lower(): the 128 bits as 26 lowercase Crockford base32 digits, written
    here because ids are made by the ten thousand in the billing run (three times faster)."""
    return "".join([_CROCKFORD[(value >> shift) & 31] for shift in _SHIFTS])


def is_id(value: Any, prefix: str) -> bool:
    """True if value is a well-formed id with the given prefix."""
    return isinstance(value, str) and value.startswith(prefix + "_") and bool(_ID_RE.match(value))


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use app.clock.now()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON that is JSONB on PostgreSQL and plain JSON elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """The declarative base with a naming convention so migrations are stable across databases."""

    registry = registry(
        metadata=MetaData(naming_convention=NAMING),
        type_annotation_map={datetime: UTCDateTime(), dict: JSONType, list: JSONType},
    )


class PublicIdMixin:
    """A string primary key `<prefix>_<ulid>`; set `id_prefix` on the model."""

    id_prefix: ClassVar[str]

    @declared_attr
    def id(cls) -> Mapped[str]:  # noqa: N805 - declared_attr receives the class
        return mapped_column(String(ID_LENGTH), primary_key=True, default=lambda: new_id(cls.id_prefix))


class TimestampMixin:
    """created_at and updated_at, from clock.now()."""

    created_at: Mapped[datetime] = mapped_column(default=clock.now, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now, nullable=False)


class TenantScopedMixin:
    """A non-null, indexed tenant_id: every tenant-owned row carries one."""

    @declared_attr
    def tenant_id(cls) -> Mapped[str]:  # noqa: N805
        return mapped_column(String(ID_LENGTH), ForeignKey("tenants.id"), nullable=False, index=True)


def like_escape(term: str) -> str:
    """Escape LIKE wildcards in user input (use with escape="\\")."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class Page:
    """One page of a numbered listing (pages of tables)."""

    items: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def paginate(session: Any, stmt: Select, page: int, per_page: int) -> Page:
    """Run `stmt` for one numbered page, with the total count."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    page = max(1, min(page, max(1, -(-total // per_page))))
    items = list(session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).unique())
    return Page(items, total, page, per_page)


@dataclass
class Slice:
    """One slice of a cursor-paginated listing, newest first (the API's list shape)."""

    items: list
    has_more: bool


def keyset(session: Any, stmt: Select, id_column: Any, limit: int, starting_after: str | None) -> Slice:
    """Newest first by time-sortable id; `starting_after` is the last id of the previous slice."""
    if starting_after:
        stmt = stmt.where(id_column < starting_after)
    rows = list(session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)).unique())
    return Slice(rows[:limit], len(rows) > limit)


def init_sqlite_pragmas(app: Any) -> None:
    """On SQLite: WAL (web, worker and scheduler share the file), a busy timeout, and foreign keys."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") or event.contains(Engine, "connect", _pragmas):
        return
    event.listen(Engine, "connect", _pragmas)


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
