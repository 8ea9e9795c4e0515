"""Move API-call counters from Redis into usage_hourly / usage_daily exactly once.

For each tenant and hour: a script atomically renames the counters hash to an in-progress copy
stamped with a new batch id (or, after a crash, returns the copy already in progress with its id).
The counts and the batch id are written in one database transaction; only then is the copy deleted.
So a crash before the write repeats it, a crash after it finds the batch already applied, and calls
counted meanwhile land in a fresh hash for the next run.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.extensions import db
from app.usage.meter import counter_key, hour_label, hours_key
from app.usage.models import RollupBatch, UsageDaily, UsageHourly

TAKE = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PERSIST', KEYS[2])
  redis.call('HSET', KEYS[2], '__batch', ARGV[1])
end
return redis.call('HGETALL', KEYS[2])
"""
BILLED_CLASS = "2xx"


def taking_key(tenant_id: str, hour: str) -> str:
    return counter_key(tenant_id, hour) + ":taking"


def take(redis, tenant_id: str, hour: str) -> dict[str, str]:
    """The hour's counters as an in-progress batch (field '__batch' holds its id); {} when none."""
    flat = redis.register_script(TAKE)(keys=[counter_key(tenant_id, hour), taking_key(tenant_id, hour)],
                                       args=[uuid.uuid4().hex])
    return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}


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
            UsageHourly.route == route, UsageHourly.status_class == status_class))
        if row is None:
            db.session.add(UsageHourly(tenant_id=tenant_id, hour=start, api_key_id=key_id, route=route,
                                       status_class=status_class, count=count))
        else:
            row.count += count
        if status_class == BILLED_CLASS:
            billed += count
    if billed:
        _add_daily(tenant_id, start.date(), "api_calls", billed)
    db.session.add(RollupBatch(id=batch, tenant_id=tenant_id, applied_at=clock.now()))
    try:
        db.session.commit()
    except IntegrityError:  # another run applied the same batch at the same moment
        db.session.rollback()
        return False
    return True


def _add_daily(tenant_id: str, day: date, metric: str, value: int) -> None:
    row = db.session.scalar(select(UsageDaily).where(UsageDaily.tenant_id == tenant_id, UsageDaily.day == day,
                                                     UsageDaily.metric == metric))
    if row is None:
        db.session.add(UsageDaily(tenant_id=tenant_id, day=day, metric=metric, value=value))
    else:
        row.value += value


def rollup_tenant(redis, tenant_id: str) -> int:
    """Roll up every hour with counters for one tenant; returns how many batches were applied."""
    applied = 0
    settled = hour_label(clock.now() - timedelta(hours=2))  # no call can still land in hours before this
    for raw in sorted(redis.smembers(hours_key(tenant_id))):
        hour = raw.decode()
        counters = take(redis, tenant_id, hour)
        if counters:
            applied += apply(tenant_id, hour, counters)
            redis.delete(taking_key(tenant_id, hour))
        elif hour < settled:
            redis.srem(hours_key(tenant_id), hour)
    return applied


def rollup_all(batch: int = 500) -> int:
    """Roll up every tenant (the scheduler runs this every minute; running it twice is harmless)."""
    from app.queue import get_redis
    from app.tenancy.queries import tenant_id_batches

    redis = get_redis()
    return sum(rollup_tenant(redis, tenant_id) for ids in tenant_id_batches(batch) for tenant_id in ids)
