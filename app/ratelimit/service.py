"""The API request gate: key lookup (cached) → tenant and plan (cached) → every rate-limit bucket,
the tenant's cache epoch and the key's last use, in one Redis round trip.

When Redis is unreachable the gate fails open: the key is checked against the database instead and
no limit applies; a warning is logged and a short circuit breaker keeps later requests from waiting on
Redis timeouts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime

from flask import Request, current_app, g, request
from redis.exceptions import RedisError

from app import clock, queue
from app.auth import apikeys, keycache
from app.auth.keycache import CachedKey, CachedTenant, cache
from app.errors import Forbidden, ServiceError
from app.ops.metrics import RATE_LIMITED, REDIS_FAILURES, SHED
from app.ratelimit import blocks, policies, shedding
from app.ratelimit.gcra import GCRA, SERVICE_INFLIGHT_KEY, Bucket, Decision, Plan, Subject
from app.usage import meter

log = logging.getLogger(__name__)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BREAKER_SECONDS = 1.0


class RateLimited(ServiceError):
    status, type, title = 429, "rate-limit-exceeded", "Too many requests"


@dataclass
class _Breaker:
    open_until: float = 0.0

    def closed(self) -> bool:
        return time.monotonic() >= self.open_until

    def trip(self) -> None:
        self.open_until = time.monotonic() + BREAKER_SECONDS


_breaker = _Breaker()
_gcra: dict[int, GCRA] = {}


def reset() -> None:
    """Forget process state (the breaker, the key cache): for tests, and after a Redis switch-over."""
    _breaker.open_until = 0.0
    cache.clear()


def _gate() -> GCRA:
    client = queue.get_fast_redis()
    gate = _gcra.get(id(client))
    if gate is None:
        gate = _gcra[id(client)] = GCRA(client)
    return gate


def buckets_for(tenant: CachedTenant, key: CachedKey, method: str) -> list[Bucket]:
    """Every limit on this request but the client IP's: the tenant's per second, per minute and per day
    (the plan's, or staff's override), writes at half the per-second rate on top (a stricter route
    class), the key's own limits when staff set some, and the global ones. Exempt tenants and keys
    get none."""
    if tenant.exempt or key.limits.exempt:
        return []
    tag = f"rl:{{{tenant.id}}}"
    limits = key.limits
    wanted = [
        ("tenant-second", "t", tenant.per_second, 1, "gcra"),
        ("tenant-minute", "t", tenant.per_minute, 60, tenant.minute_strategy),
        ("tenant-day", "t", tenant.per_day, 86400, "fixed-window"),
        ("write-second", "w", tenant.per_second and max(1, tenant.per_second // 2) if method in WRITE_METHODS else None,
         1, "gcra"),
        ("key-second", f"k:{key.id}", limits.per_second, 1, "gcra"),
        ("key-minute", f"k:{key.id}", limits.per_minute, 60, limits.minute_strategy),
        ("key-day", f"k:{key.id}", limits.per_day, 86400, "fixed-window"),
    ]
    # The limit and strategy are part of the Redis key: a changed limit starts from a full bucket at once
    # rather than inheriting the old limit's state (the old key expires on its own).
    buckets = [Bucket(policy, f"{tag}:{scope}:{period}:{limit}:{strategy}", limit, period, strategy)
               for policy, scope, limit, period, strategy in wanted if limit]
    config = current_app.config
    if config["RATELIMIT_GLOBAL_PER_SECOND"]:  # one bucket for all tenants: a single Redis, not a cluster
        buckets.append(Bucket("global-second", "rl:global:s", config["RATELIMIT_GLOBAL_PER_SECOND"], 1))
    return buckets


def _ip_bucket(tenant_id: str, ip: str, config: dict) -> Bucket | None:
    per_minute = config["RATELIMIT_IP_PER_MINUTE"]
    if not per_minute or not ip:
        return None
    return Bucket("ip-minute", f"rl:{{{tenant_id}}}:ip:{ip}:m", per_minute, 60, "sliding-window")


_plans: dict[tuple[str, bool], tuple[CachedTenant, CachedKey, int, Plan]] = {}


def _plan(tenant: CachedTenant, key: CachedKey, method: str, now: datetime) -> Plan:
    """The prepared gate call for this tenant, key and route class, reused while the cache entries
    (and the month, for the quota counter) stay the same."""
    write = method in WRITE_METHODS
    month = now.year * 100 + now.month
    memo = _plans.get((key.id, write))
    if memo is not None and memo[0] is tenant and memo[1] is key and memo[2] == month:
        return memo[3]
    config = current_app.config
    quota = tenant.hard_quota or 0
    limited = not (tenant.exempt or key.limits.exempt)
    subject = Subject(key.tenant_id, key.id, config["RATELIMIT_BLOCK_AFTER"],
                      tuple(s * 1000 for s in config["RATELIMIT_BLOCK_SECONDS"]),
                      quota=quota, month_key=meter.month_key(key.tenant_id, now) if quota else "",
                      concurrency=(tenant.max_concurrent or 0) if limited else 0,
                      shedding=config["LOAD_SHED_MAX_INFLIGHT"] > 0)
    plan = Plan.build(buckets_for(tenant, key, method), subject=subject)
    if len(_plans) > 100_000:
        _plans.clear()
    _plans[(key.id, write)] = (tenant, key, month, plan)
    return plan


def _refusal_for(key: CachedKey | None, tenant: CachedTenant | None, now: datetime) -> ServiceError | None:
    """Why this key may not be used now, or None."""
    if key is None:
        return apikeys.unauthorized("The API key is not valid.")
    status = key.status(now)
    if status != "active":
        return apikeys.unauthorized(f"The API key is {status}.")
    if tenant is None or tenant.status != "active":
        return Forbidden(f"The tenant is {tenant.status if tenant else 'gone'}.")
    return None


class RedisDown(ServiceError):
    status, type, title = 503, "unavailable", "Service unavailable"


def _without_redis(raw: str) -> CachedKey:
    """Redis is out (or the breaker is open): by policy, check the key against the database and let the
    call through without limits (open, the default), or refuse it with 503 (closed)."""
    policy = current_app.config["RATELIMIT_API_ON_REDIS_DOWN"]
    REDIS_FAILURES.labels("api", policy).inc()
    if policy == "closed":
        raise RedisDown("Rate limits cannot be checked right now, so requests are refused. Retry shortly.",
                        headers={"Retry-After": str(int(BREAKER_SECONDS) + 1)})
    return _from_database(raw)


def _from_database(raw: str) -> CachedKey:
    key = CachedKey.from_row(apikeys.authenticate(raw))
    g.metered = (key.tenant_id, key.id)
    return key


def admit(raw: str, method: str, req: Request | None = None) -> CachedKey:
    """Authenticate `raw` and charge the tenant's rate limits; raise 401/403/429 as needed. `req` is the
    current request (looked up when not given)."""
    key_hash = apikeys.hash_key(raw)
    key = cache.cached_key(key_hash)
    if key is None and not apikeys.is_well_formed(raw):  # a cached key is well formed: skip the checksum
        if raw.startswith("tnt_plat_"):
            from app.auth.platform_keys import WrongKeyKind

            raise WrongKeyKind("Platform keys (tnt_plat_…) work only on the staff API (/api/v1/admin/…); "
                               "tenant routes need a tenant API key.")
        raise apikeys.unauthorized("The API key is malformed (wrong prefix, length or checksum).")
    config = current_app.config
    if not config["RATELIMIT_ENABLED"]:
        return _from_database(raw)  # authoritative, uncached: only while limits are off or Redis is out
    if not _breaker.closed():
        return _without_redis(raw)
    key = key or cache.key(key_hash)
    if key is None:
        raise apikeys.unauthorized("The API key is not valid.")
    tenant = cache.tenant(key.tenant_id)
    now = clock.now()
    refusal = _refusal_for(key, tenant, now)
    ip = (req or request).remote_addr or ""
    if refusal is None:
        plan = _plan(tenant, key, method, now)
        if ip and policies.ip_exempt(ip):
            plan = Plan.build([], subject=replace(plan.subject, concurrency=0))
        elif (ip_bucket := _ip_bucket(tenant.id, ip, config)) is not None and plan.buckets:
            plan = Plan.build([*plan.buckets, ip_bucket], subject=plan.subject)
    else:
        # A key or tenant the cache says is unusable charges nothing: the call only reads the epoch, in
        # case the cached "no" is out of date.
        plan = Plan.build([], subject=Subject(key.tenant_id))
    shed_at = shedding.threshold() if plan.subject.shedding else 0
    context = g._get_current_object()  # one proxy lookup, not one per attribute
    request_id = context.get("request_id", "")
    inflight = plan.subject.concurrency or shed_at
    released = meter.meter.take_releases(plan.subject.inflight_key) if inflight else ()
    try:
        result = _gate().run(plan, ip, request_id, shed_at, released)
    except RedisError as exc:
        _breaker.trip()
        cache.clear()  # bumps may be missed while Redis is out: reload everything once it is back
        log.warning("Redis unavailable on the API path (%s): failing %s for %.0f s", type(exc).__name__,
                    current_app.config["RATELIMIT_API_ON_REDIS_DOWN"], BREAKER_SECONDS)
        return _without_redis(raw)
    keycache.resend_unsent()
    if not cache.seen_epoch(key.tenant_id, result.epoch):  # something changed: reload from the database
        key = cache.key(key_hash)
        refusal = _refusal_for(key, cache.tenant(key.tenant_id) if key else None, now)
    if refusal is not None:
        raise refusal
    context.metered = (key.tenant_id, key.id)  # from here on the call counts, refused or not
    if result.shed:
        SHED.labels(shedding.current_priority()).inc()
        raise shedding.overloaded()
    if result.blocked_for:
        RATE_LIMITED.labels("api", "blocked").inc()
        raise _blocked(result.blocked_for)
    if result.over_quota:
        RATE_LIMITED.labels("api", "monthly-quota").inc()
        raise _quota_exceeded(tenant.included or plan.subject.quota, plan.subject.quota, now)
    if result.too_concurrent:
        RATE_LIMITED.labels("api", "concurrency").inc()
        raise _too_concurrent(plan.subject.concurrency)
    decision = result.decision
    if result.new_block_level:
        seconds = current_app.config["RATELIMIT_BLOCK_SECONDS"][
            min(result.new_block_level, len(plan.subject.block_ms)) - 1]
        blocks.record_block(key.tenant_id, key.id, key.name, result.new_block_level, seconds)
    if plan.buckets:
        context.ratelimit = decision
        if not decision.allowed:
            RATE_LIMITED.labels("api", decision.violated.policy if decision.violated else "unknown").inc()
            raise _refusal(decision)
    if inflight:  # admitted into the in-flight sets: leave them when done
        context.inflight = (plan.subject.inflight_key, SERVICE_INFLIGHT_KEY if shed_at else "", request_id)
    return key


def _quota_exceeded(included: int, cap: int, now) -> RateLimited:
    """429 quota-exceeded until the month turns (UTC)."""
    from datetime import UTC, datetime

    next_month = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    seconds = max(1, int((next_month - now).total_seconds()))
    grace = f" and its grace ({cap - included:,} more)" if cap > included else ""
    error = RateLimited(f"This month's quota of {included:,} API calls{grace} is used up; it renews on "
                        f"{next_month:%Y-%m-%d} (UTC). Upgrade the plan for more.",
                        headers={"Retry-After": str(seconds)}, violated_policy="monthly-quota")
    error.type = "quota-exceeded"
    return error


def _too_concurrent(limit: int) -> RateLimited:
    error = RateLimited(f"Too many requests in flight: the plan allows {limit} at once. Retry when one of "
                        f"them has finished.", headers={"Retry-After": "1"}, violated_policy="concurrency")
    error.type = "concurrency-limit-exceeded"
    return error


def _blocked(seconds: float) -> RateLimited:
    error = RateLimited(f"This API key is blocked for repeatedly exceeding its rate limits. "
                        f"Retry in {max(1, round(seconds))} s.", headers={"Retry-After": str(max(1, round(seconds)))},
                        violated_policy="blocked")
    error.type = "rate-limit-exceeded/blocked"
    return error


def _refusal(decision: Decision) -> RateLimited:
    policy = decision.violated.policy if decision.violated else "unknown"
    error = RateLimited(
        f"Rate limit '{policy}' exceeded: {decision.violated.limit} requests per {decision.violated.period} s. "
        f"Retry in {max(1, round(decision.retry_after))} s.",
        violated_policy=policy,
    )
    error.type = f"rate-limit-exceeded/{policy}"
    return error
