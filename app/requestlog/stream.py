"""The request log's Redis stream: the usage meter appends every metered API call to it in its
flush pipeline (no extra round trip on the request path), and a job drains it into the database.

The stream `reqlog` is capped (XADD MAXLEN ~): if the drain falls far behind, the oldest entries go
rather than Redis memory. An entry may be appended twice (a meter flush retried after an ambiguous
failure); its request id makes the drain skip the copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.usage.meter import Call

STREAM_KEY = "reqlog"


def add(pipe, calls: Iterable[Call], maxlen: int) -> None:
    """Queue an XADD per call on `pipe` (a redis pipeline)."""
    for call in calls:
        pipe.xadd(STREAM_KEY, {
            "at": int(call.at.timestamp() * 1000), "t": call.tenant_id, "k": call.key_id, "m": call.method,
            "r": call.route, "p": call.path, "s": call.status, "d": call.duration_ms, "id": call.request_id,
            "ip": call.ip,
        }, maxlen=maxlen, approximate=True)


def parse(fields: dict[bytes, bytes]) -> dict:
    """A stream entry as the request log's columns."""
    value = {k.decode(): v.decode() for k, v in fields.items()}
    return {
        "at": datetime.fromtimestamp(int(value["at"]) / 1000, UTC), "tenant_id": value["t"], "api_key_id": value["k"],
        "method": value["m"], "route": value["r"], "path": value["p"], "status": int(value["s"]),
        "duration_ms": float(value["d"]), "request_id": value["id"], "ip": value["ip"],
    }
