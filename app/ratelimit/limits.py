"""The effective rate limits of a tenant or an API key, as the key cache keeps them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """None: no such bucket. The per-minute limit may use a window strategy instead of GCRA; the daily
    cap is a fixed window (00:00 UTC). Exempt: no rate limit applies (quotas still do)."""

    per_second: int | None = None
    per_minute: int | None = None
    per_day: int | None = None
    minute_strategy: str = "gcra"
    exempt: bool = False


NO_LIMITS = Limits()
