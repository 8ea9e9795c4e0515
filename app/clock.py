"""The single source of time. Tests travel in time through travel()."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

_frozen: datetime | None = None


def now() -> datetime:
    """The current time, UTC and timezone-aware."""
    return _frozen if _frozen is not None else datetime.now(UTC)


@contextmanager
def travel(to: datetime) -> Iterator[None]:
    """Freeze now() at `to` (must be timezone-aware) for the duration of the block."""
    global _frozen
    if to.tzinfo is None:
        raise ValueError("clock.travel needs a timezone-aware datetime")
    previous, _frozen = _frozen, to.astimezone(UTC)
    try:
        yield
    finally:
        _frozen = previous


def advance(delta: timedelta) -> None:
    """Move a frozen clock forward (only inside travel())."""
    global _frozen
    if _frozen is None:
        raise RuntimeError("clock.advance works only inside clock.travel()")
    _frozen = _frozen + delta
