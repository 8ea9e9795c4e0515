"""Usage events reported through the API: validate a batch, then count it in one Redis call.

A batch is all-or-nothing: every event is checked first, and one bad event refuses the whole batch
(422, each bad event named by its index), so a client never has to work out which half got in.
Valid batches go to ingest.lua, which claims each event id (remembered USAGE_EVENT_ID_TTL) and adds
the new events to per-tenant, per-hour hashes `ue:{tenant}:<YYYYMMDDHH>` (the event's own hour), in
one atomic script. No SQL on this path: the rollup moves the hashes into usage_daily exactly once.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

from flask import current_app
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import select

from app.errors import Invalid, ServiceError
from app.extensions import db
from app.usage.meter import hour_label
from app.usage.models import UsageMetric

SCRIPT = Path(__file__).with_name("ingest.lua").read_text()
MAX_BATCH = 1000  # events per request
ID_MAX = 100
UNIQUE_MAX = 200  # characters of a unique_count value
VALUE_MAX = 10**15  # size of a numeric value in the metric's smallest unit (Lua compares them exactly)
VALUE_DIGITS = 15  # no accepted value has a digit above 10^15
NUMBER_CHARS = 40  # a number sent as a string
EVENT_FIELDS = frozenset({"id", "metric", "timestamp", "properties"})
KINDS = {"count": "c", "sum": "s", "max": "m", "latest": "l", "unique_count": "u"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_US = 3_600_000_000
CATALOG_SECONDS = 1.0  # another process's change to a metric is seen within this long


class Unavailable(ServiceError):
    status, type, title = 503, "unavailable", "Service unavailable"


@dataclass(frozen=True)
class Rule:
    """What ingestion needs of a metric (cached in-process)."""

    code: str
    aggregation: str
    field: str | None
    decimals: int
    archived: bool


class Catalog:
    """Every metric by code, reloaded at most once per CATALOG_SECONDS (one small query); and which
    metrics this process marked as having events since (so it marks each at most once a reload)."""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}
        self._loaded = float("-inf")
        self._lock = threading.Lock()
        self.marked: set[str] = set()

    def rules(self) -> dict[str, Rule]:
        if time.monotonic() - self._loaded > CATALOG_SECONDS:
            with self._lock:
                rows = db.session.scalars(select(UsageMetric)).all()
                self._rules = {m.code: Rule(m.code, m.aggregation, m.field, m.decimals, m.archived) for m in rows}
                self.marked = set()
                self._loaded = time.monotonic()
        return self._rules

    def clear(self) -> None:
        """Forget the cache (a service changed a metric in this process)."""
        self._loaded = float("-inf")


catalog = Catalog()


def events_key(tenant_id: str, hour: str) -> str:
    return f"ue:{{{tenant_id}}}:{hour}"


def event_hours_key(tenant_id: str) -> str:
    return f"ue:{{{tenant_id}}}:hours"


def event_id_key(tenant_id: str, event_id: str) -> str:
    return f"ue:{{{tenant_id}}}:id:{event_id}"


def used_key(code: str) -> str:
    """Exists once any event of the metric was accepted: its aggregation and field are fixed from then."""
    return f"ue:used:{code}"


def _number(raw: Any, decimals: int) -> int | str:
    """A numeric property as an integer of 10^-decimals, or the reason it is not one.

    Exact: the magnitude is checked on the exponent before any arithmetic (so "1e999999999" is too
    large, not an overflow, and "1e-999999999" has too many places, not rounded to 0), and the scaling
    runs with enough precision for every digit a NUMBER_CHARS-long string can hold.
    """
    if type(raw) is int:  # the common case, exact without Decimal
        scaled = raw * 10**decimals
        return scaled if -VALUE_MAX <= scaled <= VALUE_MAX else f"At most {VALUE_MAX // 10**decimals:,} in size."
    if isinstance(raw, bool) or not isinstance(raw, int | float | str) or (
            isinstance(raw, str) and len(raw) > NUMBER_CHARS):
        return "Send a number."
    try:
        value = Decimal(str(raw).strip()) if not isinstance(raw, int) else Decimal(raw)
    except InvalidOperation:
        return "Send a number."
    if not value.is_finite():
        return "Send a finite number."
    too_many_places = f"At most {decimals} decimal places." if decimals else "Send a whole number."
    if value and value.adjusted() > VALUE_DIGITS:
        return f"At most {VALUE_MAX // 10**decimals:,} in size."
    if value and value.adjusted() < -decimals:
        return too_many_places
    with localcontext(prec=2 * NUMBER_CHARS):
        scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        return too_many_places
    if abs(scaled) > VALUE_MAX:
        return f"At most {VALUE_MAX // 10**decimals:,} in size."
    return int(scaled)


def _unique(raw: Any) -> str | None:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return None
    value = str(raw)
    return value if 0 < len(value) <= UNIQUE_MAX else None


class _Clock:
    """Timestamps parsed once per distinct string in a batch, compared as integers (microseconds since
    the epoch, exact), with each hour's label formatted once."""

    def __init__(self, now: datetime) -> None:
        config = current_app.config
        self.now = now
        self.oldest = now - config["USAGE_EVENT_MAX_AGE"]
        self.newest = now + config["USAGE_EVENT_MAX_FUTURE"]
        self._oldest_us, self._newest_us = _epoch_us(self.oldest), _epoch_us(self.newest)
        self.now_hour, self.now_ms = hour_label(now), _epoch_us(now) // 1000
        self._seen: dict[str, tuple[str, int] | str] = {}
        self._hours: dict[int, str] = {}

    def check(self, raw: Any) -> tuple[str, int] | str:
        """(hour label, epoch ms) of an RFC 3339 timestamp, or the reason it is refused."""
        if not isinstance(raw, str):
            return "Send an RFC 3339 date-time such as 2026-01-31T12:00:00Z."
        found = self._seen.get(raw)
        if found is None:
            found = self._seen[raw] = self._parse(raw)
        return found

    def _parse(self, raw: str) -> tuple[str, int] | str:
        if not RFC3339.match(raw):
            return "Send an RFC 3339 date-time with a time zone, such as 2026-01-31T12:00:00Z."
        try:
            moment = datetime.fromisoformat(raw.upper())  # the regex made sure it has an offset
        except ValueError:
            return "Not a valid date-time."
        micros = _epoch_us(moment)
        if micros < self._oldest_us:
            return f"More than {_span(self.now - self.oldest)} in the past."
        if micros > self._newest_us:
            return f"More than {_span(self.newest - self.now)} in the future."
        hour = micros // HOUR_US
        label = self._hours.get(hour)
        if label is None:
            label = self._hours[hour] = hour_label(EPOCH + timedelta(hours=hour))
        return label, micros // 1000


def _epoch_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (a float timestamp can be off by one)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _span(delta: timedelta) -> str:
    if delta % timedelta(days=1) == timedelta(0):
        days = delta // timedelta(days=1)
        return f"{days} day{'s' * (days != 1)}"
    if delta % timedelta(hours=1) == timedelta(0):
        hours = delta // timedelta(hours=1)
        return f"{hours} hour{'s' * (hours != 1)}"
    return f"{int(delta.total_seconds()) // 60} minutes"


def _event(index: int, event: Any, rules: dict[str, Rule], clock: _Clock,
           errors: dict[str, str]) -> tuple | None:
    """(id, hour, metric, kind, value, ms) of one event, or None with its problems added to `errors`."""
    where = f"events[{index}]"
    if not isinstance(event, dict):
        errors[where] = "Send an event object."
        return None
    before = len(errors)
    if not EVENT_FIELDS.issuperset(event):
        for name in event.keys() - EVENT_FIELDS:
            errors[f"{where}.{name}"] = "Unknown field."
    event_id = event.get("id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= ID_MAX or not event_id.isprintable():
        errors[f"{where}.id"] = f"Send the event's own id: 1–{ID_MAX} printable characters."
    code = event.get("metric")
    rule = rules.get(code) if isinstance(code, str) else None
    if rule is None or rule.archived:
        errors[f"{where}.metric"] = (f"The metric {code} is archived." if rule else
                                     "Unknown metric: use the code of a metric defined for your plan.")
    stamp = clock.check(event["timestamp"]) if event.get("timestamp") is not None else (clock.now_hour,
                                                                                         clock.now_ms)
    if isinstance(stamp, str):
        errors[f"{where}.timestamp"] = stamp
    properties = event.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        errors[f"{where}.properties"] = "Send an object."
        properties = {}
    value: int | str = ""
    if rule is not None and not rule.archived and rule.aggregation != "count":
        path = f"{where}.properties.{rule.field}"
        raw = properties.get(rule.field)
        if raw is None:
            errors[path] = f"Required: the metric {rule.code} takes the {rule.aggregation} of {rule.field}."
        elif rule.aggregation == "unique_count":
            value = _unique(raw)
            if value is None:
                errors[path] = f"Send a string of 1–{UNIQUE_MAX} characters or an integer."
        else:
            value = _number(raw, rule.decimals)
            if isinstance(value, str):
                errors[path] = value
    if len(errors) > before:
        return None
    hour, ms = stamp
    return event_id, hour, rule.code, KINDS[rule.aggregation], value, ms if rule.aggregation == "latest" else ""


def validate(body: Any, now: datetime) -> list[tuple]:
    """Every event of a batch, checked; raises Invalid naming each problem when any event is bad."""
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object with an events list.", errors={"body": "Send a JSON object."})
    events = body.get("events")
    errors = dict.fromkeys(sorted(body.keys() - {"events"}), "Unknown field.")
    if not isinstance(events, list) or not 0 < len(events) <= MAX_BATCH:
        errors["events"] = f"Send a list of 1–{MAX_BATCH:,} events (at most {MAX_BATCH:,} per batch)."
    if errors:
        raise Invalid("The batch is not valid; nothing was recorded.", errors=errors)
    rules, clock = catalog.rules(), _Clock(now)
    checked = [_event(i, event, rules, clock, errors) for i, event in enumerate(events)]
    if errors:
        bad = len({name.split(".", 1)[0] for name in errors})
        raise Invalid(f"{bad} of {len(events)} events are not valid; nothing was recorded. "
                      "Fix them and send the batch again.", errors=errors)
    return checked


def ingest(tenant_id: str, body: Any, now: datetime) -> tuple[int, int]:
    """Validate and count a batch; returns (accepted, duplicates). Safe to retry: ids count once."""
    checked = validate(body, now)
    hours: dict[str, int] = {}
    args: list[Any] = []
    for _, hour, code, kind, value, ms in checked:
        args += (hours.setdefault(hour, len(hours) + 1), code, kind, value, ms)
    keys = [event_hours_key(tenant_id), *(events_key(tenant_id, hour) for hour in hours),
            *(event_id_key(tenant_id, event[0]) for event in checked)]
    ttl = int(current_app.config["USAGE_EVENT_ID_TTL"].total_seconds())
    from app.queue import get_redis

    redis = get_redis()
    try:
        _mark_used(redis, {event[2] for event in checked})  # first: a metric never has events yet looks unused
        accepted, duplicates = redis.register_script(SCRIPT)(keys=keys, args=[ttl, len(hours), *hours, *args])
    except ResponseError as exc:
        if "overflow" not in str(exc):
            raise
        metric = str(exc).rsplit(" ", 1)[-1]
        raise Invalid(f"The hour's total of {metric} would pass 10^16 of its smallest unit.",
                      errors={"events": f"Too large a sum for {metric} in one hour."}) from None
    except RedisError as exc:
        raise Unavailable("Usage events could not be recorded just now. Retry the batch: events that were "
                          "counted already are recognised by their ids and not counted twice.",
                          headers={"Retry-After": "1"}) from exc
    return int(accepted), int(duplicates)


def _mark_used(redis: Any, codes: set[str]) -> None:
    """Note that these metrics have events, so their definitions stay fixed (staff pages check it).
    Done before the batch is counted, so a failure in between leaves a metric fixed, never loose."""
    new = codes - catalog.marked
    if new:
        pipe = redis.pipeline(transaction=False)
        for code in new:
            pipe.set(used_key(code), 1)
        pipe.execute()
        catalog.marked.update(new)
