"""Seeding the webhook event-type catalogue from migrations: each migration that adds event types lists
them (as app.webhooks.catalogue does at that point) and calls these, so a fresh database has them without
the app running. Types already present are kept; the downgrade removes the migration's own."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


def seed(event_types: list[tuple[str, str, dict]]) -> None:
    """Insert the (name, description, example) types that are missing."""
    table = sa.table("webhook_event_types", sa.column("name", sa.String), sa.column("description", sa.String),
                     sa.column("example", sa.JSON), sa.column("deprecated", sa.Boolean),
                     sa.column("created_at", sa.DateTime(timezone=True)))
    bind = op.get_bind()
    known = {row[0] for row in bind.execute(sa.text("SELECT name FROM webhook_event_types"))}
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    rows = [{"name": name, "description": description, "example": example, "deprecated": False, "created_at": now}
            for name, description, example in event_types if name not in known]
    if rows:
        op.bulk_insert(table, rows)


def unseed(event_types: list[tuple[str, str, dict]]) -> None:
    """Remove these types (a downgrade)."""
    op.get_bind().execute(sa.text("DELETE FROM webhook_event_types WHERE name IN :names")
                          .bindparams(sa.bindparam("names", expanding=True)),
                          {"names": [name for name, _, _ in event_types]})
