"""Platform keys for the staff API tests."""

from __future__ import annotations

import pytest

from app.auth import platform_keys
from app.security import Actor


@pytest.fixture
def platform_key(make):
    """platform_key(scopes=None, name=...) → (PlatformApiKey, plaintext); every scope by default."""
    staff = make.staff()
    actor = Actor(type="staff", id=staff.id, display=staff.email)

    def create(scopes: list[str] | None = None, name: str = "automation") -> tuple:
        return platform_keys.create_key(actor, name, scopes or sorted(platform_keys.PLATFORM_SCOPES))

    create.actor = actor
    return create


@pytest.fixture
def plat_token(platform_key) -> str:
    """A platform key with every scope."""
    return platform_key()[1]
