"""Counting API calls: each answered call is buffered in the process and written to Redis in batches.

Why not a Redis call per request: the status code is only known once the handler has run, so counting
per request costs a second round trip after the gate's, which on this path costs more than the rest of
the request. Instead every worker process appends a `Call` to an in-memory buffer and a background
thread writes the buffer every `USAGE_FLUSH_SECONDS` (0.2 s by default; 0 writes at once, as the tests
do): one pipeline per flush, one script call per tenant in it. A process that exits flushes on the way
out (atexit), so a graceful restart loses nothing; a killed process loses at most one interval.

Counters live in one hash per tenant and hour, `us:{tenant}:<YYYYMMDDHH>`, field
`<api key id>|<method> <route>|<status class>`, and the hour is added to the set `us:{tenant}:hours`
so the rollup knows what to take; billed (2xx) calls also add to the month's counter that the gate
reads for hard quotas, and each key's last use is noted for the `flush_last_used` job. Every key
carries the tenant's hash tag (one Redis Cluster slot).

A flush that fails (Redis away) is kept and retried with the same batch ids: the script applies a
batch at most once (a guard key per batch), so a retry after an ambiguous failure never counts twice.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from flask import Flask, Response, current_app, g, request
from redis.exceptions import RedisError

from app import clock
from app.auth.keycache import cache as key_cache
from app.auth.keycache import last_used_key

log = logging.getLogger(__name__)
KEEP_SECONDS = 8 * 86400  # counters the rollup never took (it runs every minute) expire after 8 days
MONTH_SECONDS = 40 * 86400
GUARD_SECONDS = 3600  # how long a batch id is remembered (retries happen within seconds)
MAX_PENDING = 200_000  # calls kept for retry while Redis is away; older ones are dropped beyond this
WARN_AT = (80, 100)  # percent of the included calls
MAX_RELEASED_PER_CALL = 500
# Finished requests leave the in-flight sets on their process's next gate call for the tenant; those
# still waiting after this long (no such call came) leave in one pipeline from the flusher thread.
RELEASE_BATCH_SECONDS = 0.05

# KEYS[1] month counter, KEYS[2] hours set, KEYS[3] batch guard, KEYS[4] the keys' last use,
# KEYS[5..] hour hashes
# ARGV[1] billed calls to add, ARGV[2] hash TTL, ARGV[3] month TTL, ARGV[4] guard TTL, ARGV[5] the
# number of API keys u, then u (key id, last use in epoch seconds) pairs, then per hour hash: its
# label, its number of fields m, then m (field, increment) pairs.
# Returns the month's billed calls after the batch, or -1 when this batch was applied before.
SCRIPT = """
if not redis.call('SET', KEYS[3], 1, 'NX', 'EX', tonumber(ARGV[4])) then return -1 end
local billed = tonumber(ARGV[1])
local month
if billed > 0 then
  month = redis.call('INCRBY', KEYS[1], billed)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
else
  month = tonumber(redis.call('GET', KEYS[1]) or 0)
end
local a = 6
for _ = 1, tonumber(ARGV[5]) do
  redis.call('HSET', KEYS[4], ARGV[a], ARGV[a + 1])
  a = a + 2
end
for k = 5, #KEYS do
  redis.call('SADD', KEYS[2], ARGV[a])
  local m = tonumber(ARGV[a + 1])
  a = a + 2
  for _ = 1, m do
    redis.call('HINCRBY', KEYS[k], ARGV[a], tonumber(ARGV[a + 1]))
    a = a + 2
  end
  redis.call('EXPIRE', KEYS[k], tonumber(ARGV[2]))
end
return month
"""


def hour_label(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H")


def counter_key(tenant_id: str, hour: str) -> str:
    return f"us:{{{tenant_id}}}:{hour}"


def hours_key(tenant_id: str) -> str:
    return f"us:{{{tenant_id}}}:hours"


def month_key(tenant_id: str, moment: datetime) -> str:
    """The month's billed (2xx) calls, read by the request gate to enforce hard quotas."""
    return f"us:{{{tenant_id}}}:calls:{moment.astimezone(UTC).strftime('%Y%m')}"


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class Call(NamedTuple):
    """One answered API call, as the meter and the request log see it (a named tuple: one is made on
    every API call, at a third of a frozen dataclass's cost)."""

    tenant_id: str
    key_id: str
    method: str
    route: str  # the URL rule, e.g. /api/v1/members/<member_id>
    path: str
    status: int
    duration_ms: float
    at: datetime
    request_id: str
    ip: str
    included: int | None = None  # the plan's included calls (for the 80%/100% warnings); None: unlimited

    @property
    def billed(self) -> bool:
        return 200 <= self.status < 300

    @property
    def field(self) -> str:
        route = f"{self.method} {self.route}"[:120]  # usage_hourly.route holds 120 characters
        return f"{self.key_id}|{route}|{status_class(self.status)}"


@dataclass
class _Batch:
    """One tenant's calls in one flush, with the id that makes applying it idempotent."""

    tenant_id: str
    calls: list[Call]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def script_args(self) -> tuple[list[str], list[str | int]]:
        per_hour: dict[str, Counter] = defaultdict(Counter)
        labels: dict[int, str] = {}  # hour since the epoch → its label (a flush spans one hour, or two)
        last_used: dict[str, int] = {}
        for call in self.calls:  # this runs in the web process for every call: one timestamp each
            seconds = int(call.at.timestamp())
            hour = labels.get(seconds // 3600)
            if hour is None:
                hour = labels[seconds // 3600] = hour_label(call.at)
            per_hour[hour][call.field] += 1
            last_used[call.key_id] = seconds
        billed = sum(call.billed for call in self.calls)
        month = month_key(self.tenant_id, self.calls[-1].at)
        keys = [month, hours_key(self.tenant_id), f"us:{{{self.tenant_id}}}:batch:{self.id}",
                last_used_key(self.tenant_id)]
        args: list[str | int] = [billed, KEEP_SECONDS, MONTH_SECONDS, GUARD_SECONDS, len(last_used)]
        for key_id, seconds in last_used.items():
            args.extend([key_id, seconds])
        for hour, counts in per_hour.items():
            keys.append(counter_key(self.tenant_id, hour))
            args.extend([hour, len(counts)])
            for name, count in counts.items():
                args.extend([name, count])
        return keys, args


class Meter:
    """The per-process buffer and its flusher thread."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()  # guards the buffer
        self._flushing = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._calls: list[Call] = []
        self._releases: list[tuple[str, str, str]] = []  # (tenant set, service set, request id) to leave
        self._release_due = False  # the flusher thread was woken to write releases, not yet written
        self._max_calls = 2000
        self._retry: list[_Batch] = []
        self._thread: threading.Thread | None = None
        self._app: Flask | None = None
        self._outage_logged = False

    def submit(self, app: Flask, call: Call) -> None:
        if self._pid != os.getpid():  # a forked worker starts with its own, empty buffer
            self._reset()
        self._app = app
        with self._lock:
            self._calls.append(call)
        interval = app.config["USAGE_FLUSH_SECONDS"]
        if not interval:
            self.flush()
            return
        if self._thread is None:
            self._max_calls = app.config["USAGE_FLUSH_MAX_CALLS"]
            self._start(interval)
        if len(self._calls) >= self._max_calls:
            self._wake.set()

    def release(self, app: Flask, inflight: tuple[str, str, str]) -> None:
        """A finished request leaves the in-flight sets it joined: on the process's next gate call for
        the tenant (`take_releases`), or at most RELEASE_BATCH_SECONDS later from the flusher thread, so
        the concurrency limit sees it gone without any request waiting on a Redis call of its own."""
        if self._pid != os.getpid():
            self._reset()
        self._app = app
        with self._lock:
            self._releases.append(inflight)
            wake, self._release_due = not self._release_due, True
        interval = app.config["USAGE_FLUSH_SECONDS"]
        if not interval:
            self._write_releases()
            return
        if self._thread is None:
            self._start(interval)
        # Wake the thread once per batch, not once per request: under load the next gate call takes each
        # release before the thread gets to it, and waking a thread per request costs the request more
        # (a lock handed between threads, the interpreter lock taken back) than the rest of this hook.
        if wake:
            self._wake.set()

    def _start(self, interval: float) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, args=(interval,), name="usage-meter", daemon=True)
            self._thread.start()
        atexit.register(self.flush)

    def _run(self, interval: float) -> None:
        due = time.monotonic() + interval
        while True:
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()
            try:
                if self._release_due:
                    time.sleep(RELEASE_BATCH_SECONDS)  # gather the releases of the next few ms into one call
                    self._write_releases()
                if time.monotonic() >= due or len(self._calls) >= self._max_calls:
                    due = time.monotonic() + interval
                    self.flush()
            except Exception:  # the flusher must outlive any one bad flush
                log.exception("usage meter flush failed")

    def take_releases(self, tenant_set: str) -> list[str]:
        """The ids of this tenant's finished requests not yet released (they ride on the gate's call)."""
        if not self._releases or self._pid != os.getpid():
            return []
        with self._lock:
            mine = [r for r in self._releases if r[0] == tenant_set][:MAX_RELEASED_PER_CALL]
            if mine:
                taken = set(mine)
                self._releases = [r for r in self._releases if r not in taken]
        return [request_id for _, _, request_id in mine]

    def _write_releases(self) -> None:
        from app.queue import get_fast_redis

        with self._lock:
            releases, self._releases = self._releases, []
            self._release_due = False  # a release from now on wakes the thread again
        if not releases or self._app is None:
            return
        with self._app.app_context():
            pipe = get_fast_redis().pipeline(transaction=False)
            for tenant_set, service_set, request_id in releases:
                for key in (tenant_set, service_set):
                    if key:
                        pipe.zrem(key, request_id)
            try:
                pipe.execute()
            except RedisError as exc:  # the entries expire as stale (STALE_INFLIGHT_US) instead
                log.warning("in-flight release failed (%s): %d requests count as in flight for up to 30 s",
                            type(exc).__name__, len(releases))

    def pending(self) -> int:
        return len(self._calls) + sum(len(b.calls) for b in self._retry)

    def flush(self) -> None:
        """Write every buffered call (and any batch a failed flush kept) to Redis."""
        if self._app is None:
            return
        with self._flushing:
            with self._lock:
                calls, self._calls = self._calls, []
            by_tenant: dict[str, list[Call]] = defaultdict(list)
            for call in calls:
                by_tenant[call.tenant_id].append(call)
            batches = self._retry + [_Batch(tenant, tenant_calls) for tenant, tenant_calls in by_tenant.items()]
            self._retry = []
            if batches:
                with self._app.app_context():
                    self._write(batches)

    def _write(self, batches: list[_Batch]) -> None:
        from app.queue import get_fast_redis
        from app.requestlog import stream

        redis = get_fast_redis()
        script = redis.register_script(SCRIPT)
        try:
            pipe = redis.pipeline(transaction=False)
            for batch in batches:
                keys, args = batch.script_args()
                script(keys=keys, args=args, client=pipe)
            stream.add(pipe, [call for batch in batches for call in batch.calls],
                       current_app.config["REQUEST_LOG_STREAM_MAX"])
            replies = pipe.execute()
        except RedisError as exc:
            self._keep(batches, exc)
            return
        if self._outage_logged:
            log.warning("usage meter: Redis is back, %d batches written", len(batches))
            self._outage_logged = False
        for batch, month in zip(batches, replies, strict=False):
            if int(month) >= 0:
                _announce_thresholds(batch, int(month))

    def _keep(self, batches: list[_Batch], exc: Exception) -> None:
        kept, total = [], 0
        for batch in reversed(batches):  # the newest survive when there are too many
            total += len(batch.calls)
            if total > MAX_PENDING:
                log.error("usage meter: dropping %d calls of tenant %s, Redis away too long",
                          len(batch.calls), batch.tenant_id)
                continue
            kept.append(batch)
        self._retry = list(reversed(kept))
        if not self._outage_logged:
            log.warning("usage meter: Redis unavailable (%s); keeping %d calls to retry", type(exc).__name__, total)
            self._outage_logged = True


def _announce_thresholds(batch: _Batch, month_total: int) -> None:
    """The batch that takes the month's billed count across 80% or 100% of the quota reports it: the
    script's INCRBY is atomic, so exactly one batch crosses each threshold."""
    included = batch.calls[-1].included
    billed = sum(call.billed for call in batch.calls)
    if not included or not billed:
        return
    before = month_total - billed
    for percent in WARN_AT:
        threshold = -(-included * percent // 100)  # ceiling
        if before < threshold <= month_total:
            from app.usage import service

            service.threshold_reached(batch.tenant_id, percent, threshold, included, batch.calls[-1].at)


meter = Meter()


def _leave_inflight(_exc: BaseException | None = None) -> None:
    """The request is done (teardown runs whatever happened, once the response is built): it leaves the
    in-flight sets it joined."""
    inflight = g.pop("inflight", None)
    if inflight is not None:
        meter.release(current_app._get_current_object(), inflight)


def _after_api_request(response: Response) -> Response:
    context = g._get_current_object()  # one proxy lookup each for g and request: this runs on every API call
    metered = context.get("metered")
    if metered is None:
        return response
    req = request._get_current_object()
    if req.url_rule is None:
        return response
    tenant_id, key_id = metered
    cached = key_cache.tenant(tenant_id)
    started = context.get("started_at")
    call = Call(
        tenant_id=tenant_id, key_id=key_id, method=req.method, route=req.url_rule.rule,
        path=req.path[:200], status=response.status_code,
        duration_ms=round((time.perf_counter() - started) * 1000, 2) if started else 0.0,
        at=clock.now(), request_id=context.get("request_id", ""), ip=req.remote_addr or "",
        included=cached.included if cached else None,
    )
    app = current_app._get_current_object()
    response.call_on_close(lambda: meter.submit(app, call))  # after the body has gone out
    return response


def init_app(app: Flask) -> None:
    app.after_request(_after_api_request)
    app.teardown_request(_leave_inflight)
