"""GCRA rate limiting for several buckets in one Redis round trip (see gcra.lua).

A limit of L requests per P seconds becomes a bucket with emission interval T = P / L that admits a
burst of up to L at once and then one request every T. GCRA is equivalent to a token bucket and a
leaky bucket, keeps one key per bucket (its theoretical arrival time) and never drifts with clocks:
Redis TIME is the only clock.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from redis import Redis
from redis.exceptions import NoScriptError, ResponseError

SCRIPT = Path(__file__).with_name("gcra.lua").read_text()
MICRO = 1_000_000


STRATEGIES = {"gcra": 1, "fixed-window": 2, "sliding-window": 3}
SERVICE_INFLIGHT_KEY = "rl:service:inflight"
MAX_PER_SECOND = MICRO  # GCRA's clock ticks in µs: a limit may allow at most one request per µs
STALE_INFLIGHT_US = 30 * MICRO  # an in-flight entry older than this belongs to a request whose process died


@dataclass(frozen=True)
class Bucket:
    """One limit on one subject: policy name (for headers), Redis key, limit per period (seconds), and
    the strategy: GCRA (the default), or a fixed or sliding window where window semantics are wanted
    (a daily cap that resets at midnight UTC)."""

    policy: str
    key: str
    limit: int
    period: int
    strategy: str = "gcra"

    def args(self) -> tuple[int, int, int]:
        period_us = self.period * MICRO
        code = STRATEGIES[self.strategy]
        # GCRA counts in microseconds: above one request per µs (see MAX_PER_SECOND) T would round to 0
        return code, (max(1, period_us // self.limit) if code == 1 else self.limit), period_us


class BucketState(NamedTuple):  # (named tuples: several are made on every API call)
    bucket: Bucket
    remaining: int
    reset: float  # seconds until the bucket is full again (or, when refused, until it frees up)


@dataclass(frozen=True)
class Decision:
    """The outcome for a request: allowed or not, which policy refused, and every bucket's state."""

    allowed: bool
    violated: Bucket | None
    retry_after: float
    states: list[BucketState] = field(default_factory=list)
    policy_header: str = ""

    def tightest(self) -> BucketState | None:
        """The bucket closest to refusing (the refusing one when refused)."""
        if self.violated is not None:
            return next(s for s in self.states if s.bucket is self.violated)
        tight = None
        for state in self.states:  # (a loop, not min() with a key: this runs on every API call)
            if tight is None or (state.remaining, -state.reset) < (tight.remaining, -tight.reset):
                tight = state
        return tight

    def headers(self, now_epoch: float) -> dict[str, str]:
        """draft-ietf-httpapi-ratelimit-headers-10 fields plus the common X-RateLimit-* trio."""
        if not self.states:
            return {}
        policies = self.policy_header or ", ".join(
            f'"{s.bucket.policy}";q={s.bucket.limit};w={s.bucket.period}' for s in self.states)
        ceil = math.ceil
        current = ", ".join([f'"{s.bucket.policy}";r={s.remaining};t={ceil(s.reset)}' for s in self.states])
        tight = self.tightest()
        headers = {
            "RateLimit-Policy": policies,
            "RateLimit": current,
            "X-RateLimit-Limit": str(tight.bucket.limit),
            "X-RateLimit-Remaining": str(tight.remaining),
            "X-RateLimit-Reset": str(math.ceil(now_epoch + tight.reset)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


@dataclass(frozen=True)
class Subject:
    """Who is being limited beyond the buckets: the tenant (hash tag) and, optionally, its API key."""

    tenant_id: str
    key_id: str = ""
    block_after: int = 0  # refusals in one minute that block the key (0: never)
    block_ms: tuple[int, ...] = (60_000,)
    quota: int = 0  # the month's hard quota of billed calls (0: none)
    month_key: str = ""  # where the usage meter counts this month's billed calls
    concurrency: int = 0  # the tenant's requests in flight at once (0: no limit)
    shedding: bool = False  # the service sheds load: this request joins the service's in-flight set

    @property
    def block_key(self) -> str:
        return f"rl:{{{self.tenant_id}}}:block:key:{self.key_id}"

    @property
    def violations_key(self) -> str:
        return f"rl:{{{self.tenant_id}}}:violations"

    @property
    def inflight_key(self) -> str:
        return f"rl:{{{self.tenant_id}}}:inflight"

    def keys(self) -> list[str]:
        """The script's extra keys, in its order. Without load shedding the last is one of the tenant's
        own (never touched), so that every key stays in the tenant's Redis Cluster slot."""
        tag = f"rl:{{{self.tenant_id}}}"  # (gcra.lua tells the placeholder by its ':no-shedding' suffix)
        return [f"{tag}:epoch", self.block_key, f"{tag}:blocklevel:key:{self.key_id}", self.violations_key,
                self.month_key or f"{tag}:no-quota", self.inflight_key,
                SERVICE_INFLIGHT_KEY if self.shedding else f"{tag}:no-shedding"]


class GateResult(NamedTuple):
    decision: Decision
    epoch: int = 0
    blocked_for: float = 0.0  # seconds left on an existing block (the request was refused)
    over_quota: bool = False  # the month's hard quota is used up (the request was refused)
    new_block_level: int = 0  # this request's refusal started a block at this level
    too_concurrent: bool = False  # the tenant has its limit of requests in flight (refused)
    shed: bool = False  # the service is shedding load at this request's priority (refused)


@dataclass(frozen=True)
class Plan:
    """A prepared gate call: the buckets and the script's keys and arguments, built once per tenant, key
    and route class and reused for every request until the tenant's cache entry changes."""

    buckets: tuple[Bucket, ...]
    subject: Subject
    keys: tuple[str, ...]
    args: tuple[int | str, ...]
    policy_header: str  # RateLimit-Policy, which only changes with the buckets

    @classmethod
    def build(cls, buckets: list[Bucket], cost: int = 1, subject: Subject | None = None) -> Plan:
        keys = [b.key for b in buckets]
        argv: list[int | str] = [cost, len(buckets), "", 0, "", 0, 0]
        if subject is not None:
            keys.extend(subject.keys())
            argv[2:7] = [subject.key_id, subject.block_after, ",".join(map(str, subject.block_ms)), subject.quota,
                         subject.concurrency]
        for bucket in buckets:
            argv.extend(bucket.args())
        policy = ", ".join(f'"{b.policy}";q={b.limit};w={b.period}' for b in buckets)
        return cls(tuple(buckets), subject or Subject(""), tuple(keys), tuple(argv), policy)


class GCRA:
    """Checks (and, when all allow, charges) a list of buckets atomically, with the extras of the gate."""

    def __init__(self, redis: Redis):
        self._redis = redis
        self._script = redis.register_script(SCRIPT)
        pool = getattr(redis, "connection_pool", None)
        # Each thread keeps a connection of its own for the gate (made like the pool's): a pool checkout
        # costs a lock and a readiness poll (three system calls) on every request, a tenth of this call.
        self._connection_args = ((pool.connection_class, pool.connection_kwargs)
                                 if hasattr(pool, "connection_kwargs") else None)
        self._local = threading.local()

    def _evalsha(self, *args: int | str) -> list:
        """EVALSHA on this thread's connection (any other client: its own evalsha)."""
        if self._connection_args is None:
            return self._redis.evalsha(self._script.sha, *args)
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.pid != os.getpid():  # the first call, or a forked child
            connection_class, kwargs = self._connection_args
            connection = self._local.connection = connection_class(**kwargs)
        try:
            connection.send_packed_command(connection.pack_command("EVALSHA", self._script.sha, *args),
                                           check_health=False)
            return connection.read_response()
        except ResponseError:  # a whole reply (e.g. NOSCRIPT): the connection is still in step
            raise
        except BaseException:  # anything else may leave a reply unread: start afresh next time
            connection.disconnect()
            raise

    def check(self, buckets: list[Bucket], cost: int = 1, subject: Subject | None = None, ip: str = "") -> GateResult:
        return self.run(Plan.build(buckets, cost, subject), ip)

    def run(self, plan: Plan, ip: str = "", request_id: str = "", shed_at: int = 0,
            released: list[str] | tuple[str, ...] = ()) -> GateResult:
        """One gate call. `request_id` names the request in the in-flight sets; `shed_at` is the
        service's in-flight count at which this request's priority is shed (0: never); `released` are
        the tenant's finished requests that leave the in-flight sets in the same call."""
        per_request = (ip, request_id, shed_at, STALE_INFLIGHT_US, len(released), *released)
        try:
            raw = self._evalsha(len(plan.keys), *plan.keys, *plan.args, *per_request)
        except NoScriptError:  # a restarted Redis forgot the script: load it once more
            raw = self._script(keys=plan.keys, args=(*plan.args, *per_request))
        denied, retry_us, epoch, new_level = raw[0], raw[1], raw[2], raw[3]
        if denied < 0:
            refused = Decision(False, None, retry_us / MICRO)
            return GateResult(refused, epoch, blocked_for=retry_us / MICRO if denied == -1 else 0.0,
                              over_quota=denied == -2, too_concurrent=denied == -3, shed=denied == -4)
        buckets = plan.buckets
        states = [BucketState(bucket, raw[4 + 2 * i], raw[5 + 2 * i] / MICRO) for i, bucket in enumerate(buckets)]
        violated = buckets[denied - 1] if denied else None
        decision = Decision(denied == 0, violated, retry_us / MICRO, states, plan.policy_header)
        return GateResult(decision, epoch, new_block_level=new_level)
