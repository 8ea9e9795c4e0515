"""Move usage from Redis into usage_hourly / usage_daily exactly once: API-call counters, and the
aggregates of usage events (app/usage/events.py).

For each tenant and hour: a script atomically renames the hash to an in-progress copy stamped with a
new batch id (or, after a crash, returns the copy already in progress with its id). The values and the
batch id are written in one database transaction; only once the batch is recorded is the copy
deleted. So a crash before the write repeats it, a crash after it finds the batch already applied, and
usage counted meanwhile lands in a fresh hash for the next run.

Event aggregates merge by kind: counts and sums add up; a day keeps the largest max; `latest` keeps
the value with the newest event time (the larger value on a tie, so the order of batches never
matters); unique_count stores each distinct value once per day (usage_unique_values), so a period's
count is exact.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.extensions import db
from app.usage.events import event_hours_key, events_key
from app.usage.meter import counter_key, hour_label, hours_key
from app.usage.models import RollupBatch, UsageDaily, UsageHourly, UsageUniqueValue

TAKE = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PERSIST', KEYS[2])
  redis.call('HSET', KEYS[2], '__batch', ARGV[1])
end
return redis.call('HGETALL', KEYS[2])
"""
# Events: the same, but an hour found empty leaves the list of hours in the same atomic step (a late
# event for that hour, up to 35 days late, adds it back: it can never be left out).
TAKE_EVENTS = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SREM', KEYS[3], ARGV[2])
    return {}
  end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[2], '__batch', ARGV[1])
end
return redis.call('HGETALL', KEYS[2])
"""
BILLED_CLASS = "2xx"
CHUNK = 500  # distinct values looked up per query
log = logging.getLogger(__name__)


class RollupFailed(RuntimeError):
    """Some tenants' usage could not be rolled up this run (the rest was): the next run retries them."""


def taking_key(tenant_id: str, hour: str) -> str:
    return counter_key(tenant_id, hour) + ":taking"


def events_taking_key(tenant_id: str, hour: str) -> str:
    return events_key(tenant_id, hour) + ":taking"


def _pairs(flat: list[bytes]) -> dict[str, str]:
    return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}


def take(redis, tenant_id: str, hour: str) -> dict[str, str]:
    """The hour's counters as an in-progress batch (field '__batch' holds its id); {} when none."""
    return _pairs(redis.register_script(TAKE)(keys=[counter_key(tenant_id, hour), taking_key(tenant_id, hour)],
                                              args=[uuid.uuid4().hex]))


def take_events(redis, tenant_id: str, hour: str) -> dict[str, str]:
    """The hour's event aggregates as an in-progress batch ('__batch' holds its id); {} when none."""
    keys = [events_key(tenant_id, hour), events_taking_key(tenant_id, hour), event_hours_key(tenant_id)]
    return _pairs(redis.register_script(TAKE_EVENTS)(keys=keys, args=[uuid.uuid4().hex, hour]))


def apply(tenant_id: str, hour: str, counters: dict[str, str]) -> bool:
    """Add one batch to the tables in one transaction; False if that batch was applied before."""
    counters = dict(counters)
    batch = counters.pop("__batch")
    if db.session.get(RollupBatch, batch) is not None:
        return False
    start = datetime.strptime(hour, "%Y%m%d%H").replace(tzinfo=UTC)
    billed = 0
    for field, value in counters.items():
        key_id, route, status_class = field.split("|", 2)
        count = int(value)
        row = db.session.scalar(select(UsageHourly).where(
            UsageHourly.tenant_id == tenant_id, UsageHourly.hour == start, UsageHourly.api_key_id == key_id,
            UsageHourly.route == route, UsageHourly.status_class == status_class).with_for_update())
        if row is None:
            db.session.add(UsageHourly(tenant_id=tenant_id, hour=start, api_key_id=key_id, route=route,
                                       status_class=status_class, count=count))
        else:
            row.count += count
        if status_class == BILLED_CLASS:
            billed += count
    if billed:
        _add_daily(tenant_id, start.date(), "api_calls", billed)
    return _commit(tenant_id, batch)


def apply_events(tenant_id: str, hour: str, aggregates: dict[str, str]) -> bool:
    """Merge one batch of event aggregates into usage_daily in one transaction; False if applied before."""
    aggregates = dict(aggregates)
    batch = aggregates.pop("__batch")
    if db.session.get(RollupBatch, batch) is not None:
        return False
    day = datetime.strptime(hour, "%Y%m%d%H").date()
    distinct: dict[str, list[str]] = {}
    for field, raw in aggregates.items():
        metric, kind, *value = field.split("|", 2)
        if kind in {"c", "s"}:
            _add_daily(tenant_id, day, metric, int(raw))
        elif kind == "m":
            row = _daily(tenant_id, day, metric, int(raw))
            row.value = max(row.value, int(raw))
        elif kind == "l":
            millis, number = (int(part) for part in raw.split(":"))
            at = datetime.fromtimestamp(millis // 1000, UTC) + timedelta(milliseconds=millis % 1000)
            row = _daily(tenant_id, day, metric, number, at)
            if row.observed_at is None or (at, number) > (row.observed_at, row.value):
                row.value, row.observed_at = number, at
        elif kind == "u":
            distinct.setdefault(metric, []).extend(value)
    for metric, values in distinct.items():
        _add_distinct(tenant_id, day, metric, values)
    return _commit(tenant_id, batch)


def _commit(tenant_id: str, batch: str) -> bool:
    db.session.add(RollupBatch(id=batch, tenant_id=tenant_id, applied_at=clock.now()))
    try:
        db.session.commit()
    except IntegrityError:  # another run wrote the same batch (or the same new row) at the same moment
        db.session.rollback()
        return False
    except BaseException:  # nothing of the batch was written: it stays in Redis for the next run
        db.session.rollback()
        raise
    return True


def _daily(tenant_id: str, day: date, metric: str, value: int, observed_at: datetime | None = None) -> UsageDaily:
    """The day's row for a metric, created with `value` when there is none yet. Locked until the batch
    commits: two runs applying different batches to the same day never overwrite each other's sum."""
    row = db.session.scalar(select(UsageDaily).where(UsageDaily.tenant_id == tenant_id, UsageDaily.day == day,
                                                     UsageDaily.metric == metric).with_for_update())
    if row is None:
        row = UsageDaily(tenant_id=tenant_id, day=day, metric=metric, value=value, observed_at=observed_at)
        db.session.add(row)
    return row


def _add_daily(tenant_id: str, day: date, metric: str, value: int) -> None:
    row = _daily(tenant_id, day, metric, 0)
    row.value += value


def _add_distinct(tenant_id: str, day: date, metric: str, values: list[str]) -> None:
    """Store the values the day has not seen yet; the day's value counts its distinct values."""
    added = 0
    for start in range(0, len(values), CHUNK):
        chunk = values[start:start + CHUNK]
        known = set(db.session.scalars(select(UsageUniqueValue.value).where(
            UsageUniqueValue.tenant_id == tenant_id, UsageUniqueValue.metric == metric,
            UsageUniqueValue.day == day, UsageUniqueValue.value.in_(chunk))))
        new = [{"tenant_id": tenant_id, "metric": metric, "day": day, "value": v} for v in chunk if v not in known]
        if new:
            db.session.execute(insert(UsageUniqueValue), new)
            added += len(new)
    if added:
        _add_daily(tenant_id, day, metric, added)


def _applied(batch: str) -> bool:
    return db.session.get(RollupBatch, batch) is not None


def rollup_tenant(redis, tenant_id: str) -> int:
    """Roll up every hour with API calls or usage events for one tenant; returns how many batches
    were applied. An in-progress copy is deleted only once its batch is recorded as applied."""
    applied = 0
    settled = hour_label(clock.now() - timedelta(hours=2))  # no call can still land in hours before this
    for raw in sorted(redis.smembers(hours_key(tenant_id))):
        hour = raw.decode()
        counters = take(redis, tenant_id, hour)
        if counters:
            done = apply(tenant_id, hour, counters)
            applied += done
            if done or _applied(counters["__batch"]):
                redis.delete(taking_key(tenant_id, hour))
        elif hour < settled:
            redis.srem(hours_key(tenant_id), hour)
    for raw in sorted(redis.smembers(event_hours_key(tenant_id))):
        hour = raw.decode()
        aggregates = take_events(redis, tenant_id, hour)
        if aggregates:
            done = apply_events(tenant_id, hour, aggregates)
            applied += done
            if done or _applied(aggregates["__batch"]):
                redis.delete(events_taking_key(tenant_id, hour))
    return applied


def rollup_all(batch: int = 500) -> int:
    """Roll up every tenant (the scheduler runs this every minute; running it twice is harmless).

    A tenant whose rollup fails (a database error) is logged and skipped so the others still get
    theirs; its batches stay in Redis for the next run, and RollupFailed at the end marks the job as
    failed. Redis being unreachable stops the run at once."""
    from app.queue import get_redis
    from app.tenancy.queries import tenant_id_batches

    redis = get_redis()
    applied, failed = 0, []
    for ids in tenant_id_batches(batch):
        for tenant_id in ids:
            try:
                applied += rollup_tenant(redis, tenant_id)
            except RedisError:
                raise
            except Exception:
                db.session.rollback()
                log.exception("usage rollup failed for tenant %s; the next run retries it", tenant_id)
                failed.append(tenant_id)
    if failed:
        raise RollupFailed(f"usage rollup failed for {len(failed)} tenant{'s' * (len(failed) != 1)} "
                           f"({', '.join(failed[:5])}); {applied} batches applied")
    return applied
