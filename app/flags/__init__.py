"""Feature flags and entitlements: rules evaluated in process from a snapshot refreshed through Redis pub/sub.

The app's own code asks `flags.is_enabled(key, tenant)` or `flags.value(key, tenant, default)`; a plan's
feature keys read as boolean flags too (true for the tenants whose plan includes them) unless a flag of
that key says otherwise.
"""

from __future__ import annotations

from typing import Any


def evaluate_for(flag_key: str, tenant: Any):
    """The Evaluation (value, variant, reason) of a flag for a tenant; never touches the database or Redis
    once the process's snapshot is built."""
    from app.flags.snapshot import holder

    return holder.evaluate(flag_key, tenant)


def is_enabled(flag_key: str, tenant: Any) -> bool:
    """True when the flag serves a truthy value to the tenant (False for an unknown flag)."""
    return bool(value(flag_key, tenant, False))


def value(flag_key: str, tenant: Any, default: Any = None) -> Any:
    """The flag's value for the tenant, or `default` when the flag is unknown or failed to evaluate."""
    evaluation = evaluate_for(flag_key, tenant)
    return default if evaluation.reason == "ERROR" else evaluation.value
