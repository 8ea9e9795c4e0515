"""Ids are written as the ulid package writes them (app.db encodes them itself, for speed)."""

from __future__ import annotations

import random

from ulid import ULID

from app.db import _ulid_text


def test_ulid_text_matches_the_ulid_package():
    rng = random.Random(5)
    values = [0, 1, 2**80, 2**127, 2**128 - 1] + [rng.getrandbits(128) for _ in range(20_000)]
    values += [(rng.getrandbits(48) << 80) | rng.getrandbits(80) for _ in range(20_000)]
    for value in values:
        assert _ulid_text(value) == str(ULID.from_int(value)).lower()
