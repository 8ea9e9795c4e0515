"""Priority load shedding: when the service has too many API requests in flight, refuse the least
important first.

The service's in-flight requests are one Redis sorted set, joined and checked by the request gate in
its one round trip (only when `LOAD_SHED_MAX_INFLIGHT` is set) and left when the response is done.
Each route has a priority; a request is refused with 503 and `Retry-After` once the set holds its
priority's share of the maximum: low-priority routes (analytics) at 60%, normal ones at 85%, critical
ones (reporting usage, which would otherwise be lost) only at 100%.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request

from app.errors import ServiceError

SHARE = {"low": 0.60, "normal": 0.85, "critical": 1.0}
RETRY_AFTER = {"low": 5, "normal": 2, "critical": 1}


class Overloaded(ServiceError):
    status, type, title = 503, "overloaded", "Service overloaded"


def priority(level: str) -> Callable[[Callable], Callable]:
    """Mark a view's priority for load shedding: low, normal (the default) or critical."""
    if level not in SHARE:
        raise ValueError(f"unknown priority {level}")

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        view.shed_priority = level  # functools.wraps in outer decorators copies it along
        return view

    return decorator


def current_priority() -> str:
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "shed_priority", "normal")


def threshold() -> int:
    """The service's in-flight count at which this request is shed."""
    return max(1, int(current_app.config["LOAD_SHED_MAX_INFLIGHT"] * SHARE[current_priority()]))


def overloaded() -> Overloaded:
    level = current_priority()
    return Overloaded(f"The service is overloaded and is turning away {level}-priority requests first. "
                      f"Retry in {RETRY_AFTER[level]} s.", headers={"Retry-After": str(RETRY_AFTER[level])})
