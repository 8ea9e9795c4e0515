"""Deferred bulk writes within a transaction: inside `block()`, a writer (the audit trail, the outbox) keeps
its rows in the session instead of writing one at a time; they are written in bulk when the block ends, or
earlier when the session commits (so they always commit with the change), and dropped with a transaction
that is rolled back. Blocks nest: the outermost one writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import db


class DeferredWrites:
    def __init__(self, key: str, write: Callable[[Session, list[dict[str, Any]]], Any]) -> None:
        self.key, self.write = key, write
        event.listen(Session, "before_commit", self._flush)
        event.listen(Session, "after_soft_rollback", self._drop)

    def pending(self, session: Session) -> list[dict[str, Any]] | None:
        """The rows kept by the block this session is in, or None outside one."""
        return session.info.get(self.key)

    @contextmanager
    def block(self, session: Session | None = None) -> Iterator[None]:
        session = session or db.session
        if self.key in session.info:  # nested: the outer block writes them
            yield
            return
        pending: list[dict[str, Any]] = []
        session.info[self.key] = pending
        try:
            yield
        except BaseException:
            session.info.pop(self.key, None)
            raise
        session.info.pop(self.key, None)
        self.write(session, pending)

    def _flush(self, session: Session) -> None:
        pending = session.info.get(self.key)
        if pending:
            rows = list(pending)
            pending.clear()
            self.write(session, rows)

    def _drop(self, session: Session, previous_transaction: Any) -> None:
        pending = session.info.get(self.key)
        if pending and not previous_transaction.nested:
            pending.clear()  # they belonged to the transaction that was rolled back
