"""Flag tests start from an empty snapshot (the database and Redis are emptied before every test)."""

from __future__ import annotations

import pytest

from app.security import Actor

STAFF = Actor(type="staff", id="usr_01jd0000000000000000000000", display="staff@example.com")


@pytest.fixture(autouse=True)
def _fresh_snapshot(request):
    from app.flags.snapshot import holder

    holder.reset()
    yield
    holder.reset()


@pytest.fixture
def create(ctx):
    """create(key, **fields) → a flag made through the service by a staff actor."""
    from app.flags import service

    def make(key: str, **fields):
        return service.create_flag(STAFF, {"key": key, **fields})

    return make
