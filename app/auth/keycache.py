"""In-process cache of API keys and their tenants for the request path (no SQL when warm).

Entries are dropped when the tenant's cache epoch in Redis changes: services bump it after commit
whenever a key is revoked or rolled, a tenant changes, or its plan changes. The request gate reads the
epoch in the same round trip as the rate-limit check, so a revocation is seen on the very next request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ApiKey, key_status
from app.extensions import db
from app.ratelimit.limits import NO_LIMITS, Limits

log = logging.getLogger(__name__)
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class CachedKey:
    id: str
    tenant_id: str
    name: str
    scopes: frozenset[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    limits: Limits = NO_LIMITS  # staff's limits for this key alone, if any; or its exemption

    def status(self, now: datetime) -> str:
        return key_status(self.revoked_at, self.expires_at, now)

    @classmethod
    def from_row(cls, row: ApiKey, limits: Limits | None = None) -> CachedKey:
        return cls(row.id, row.tenant_id, row.name, frozenset(row.scopes), row.expires_at, row.revoked_at,
                   limits or Limits())


@dataclass(frozen=True)
class CachedTenant:
    """What the request path needs of a tenant, and its public profile (GET /api/v1/tenant)."""

    id: str
    status: str
    per_second: int | None
    per_minute: int | None
    per_day: int | None = None
    minute_strategy: str = "gcra"
    exempt: bool = False  # staff exempted the tenant from rate limits (not from quotas)
    slug: str = ""
    name: str = ""
    country: str = ""
    billing_email: str = ""
    tags: tuple[str, ...] = ()
    plan: str | None = None
    created_at: datetime | None = None
    hard_quota: int | None = None  # API calls a month at which calls are refused (quota + grace; no overage)
    max_concurrent: int | None = None  # API requests in flight at once (None: no limit)
    included: int | None = None  # API calls a month included in the plan (None: unlimited)


def epoch_key(tenant_id: str) -> str:
    """The tenant's cache epoch (hash-tagged with the tenant, like every request-path key)."""
    return f"rl:{{{tenant_id}}}:epoch"


def last_used_key(tenant_id: str) -> str:
    """Hash of API key id → last use (epoch seconds), written by the usage meter, flushed to the database."""
    return f"rl:{{{tenant_id}}}:last_used"


class KeyCache:
    """Keys by SHA-256, tenants by id, and the epoch each tenant's entries were loaded under."""

    def __init__(self) -> None:
        self._keys: dict[str, CachedKey] = {}
        self._tenants: dict[str, CachedTenant] = {}
        self._epochs: dict[str, int] = {}
        self._lock = threading.Lock()

    def key(self, key_hash: str) -> CachedKey | None:
        """The cached key, loading it (and its tenant) from the database on a miss."""
        cached = self._keys.get(key_hash)
        if cached is None:
            cached = self._load_key(key_hash)
        return cached

    def cached_key(self, key_hash: str) -> CachedKey | None:
        """The key if it is already cached; never touches the database."""
        return self._keys.get(key_hash)

    def tenant(self, tenant_id: str) -> CachedTenant | None:
        cached = self._tenants.get(tenant_id)
        if cached is None:
            cached = self._load_tenant(tenant_id)
        return cached

    def seen_epoch(self, tenant_id: str, epoch: int) -> bool:
        """Record the epoch the gate saw; False (and the tenant's entries dropped) if it moved on."""
        known = self._epochs.get(tenant_id)
        if known == epoch:
            return True
        with self._lock:
            if known is not None:
                self._drop_tenant(tenant_id)
            self._epochs[tenant_id] = epoch
        return known is None

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
            self._tenants.clear()
            self._epochs.clear()

    def _drop_tenant(self, tenant_id: str) -> None:
        self._tenants.pop(tenant_id, None)
        for key_hash in [h for h, k in self._keys.items() if k.tenant_id == tenant_id]:
            self._keys.pop(key_hash, None)

    def _load_key(self, key_hash: str) -> CachedKey | None:
        row = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))
        if row is None:
            return None
        from app.ratelimit.policies import key_limits

        cached = CachedKey.from_row(row, key_limits(row))
        with self._lock:
            if len(self._keys) >= MAX_ENTRIES:
                self._keys.clear()
            self._keys[key_hash] = cached
        return cached

    def _load_tenant(self, tenant_id: str) -> CachedTenant | None:
        from app.tenancy.models import Tenant

        tenant = db.session.get(Tenant, tenant_id)
        if tenant is None:
            return None
        from app.ratelimit.policies import tenant_limits

        plan, limits = tenant.plan, tenant_limits(tenant)
        cached = CachedTenant(tenant.id, tenant.status, limits.per_second, limits.per_minute, limits.per_day,
                              limits.minute_strategy, limits.exempt, slug=tenant.slug, name=tenant.name,
                              country=tenant.country,
                              billing_email=tenant.billing_email, tags=tuple(tenant.tags), plan=plan.code,
                              created_at=tenant.created_at,
                              hard_quota=plan.hard_cap("api_calls"), max_concurrent=plan.max_concurrent_requests,
                              included=plan.included("api_calls"))
        with self._lock:
            if len(self._tenants) >= MAX_ENTRIES:
                self._tenants.clear()
            self._tenants[tenant_id] = cached
        return cached


cache = KeyCache()


def bump_after_commit(session: Session, tenant_ids: Iterable[str]) -> None:
    """Once the transaction commits, move these tenants' cache epochs on (every process drops them)."""
    pending: set[str] = session.info.setdefault("epoch_bumps", set())
    pending.update(tenant_ids)


_unsent: set[str] = set()  # bumps Redis missed while it was down; sent again once it answers


def bump_now(tenant_ids: Iterable[str]) -> None:
    from app.queue import get_redis

    ids = set(tenant_ids) | _unsent
    if not ids:
        return
    try:
        pipe = get_redis().pipeline(transaction=False)
        for tenant_id in ids:
            pipe.incr(epoch_key(tenant_id))
        pipe.execute()
        _unsent.difference_update(ids)
    except RedisError:
        # Redis down: every gate falls back to the database meanwhile; the bump is kept and sent
        # again with the next one or by the gate once Redis answers, so no process keeps a stale entry.
        _unsent.update(ids)
        log.warning("could not bump cache epochs for %d tenant(s); will retry", len(ids))
    for tenant_id in ids:
        cache.seen_epoch(tenant_id, -1)  # this process drops its entries at once


def resend_unsent() -> None:
    """Send bumps that failed while Redis was down (called by the gate once Redis answers)."""
    if _unsent:
        bump_now(())


def _on_commit(session: Session) -> None:
    pending = session.info.pop("epoch_bumps", None)
    if pending:
        bump_now(pending)


def _on_rollback(session: Session) -> None:
    session.info.pop("epoch_bumps", None)


def install(_app: Any = None) -> None:
    """Hook the epoch bumps to SQLAlchemy session commits (idempotent)."""
    from sqlalchemy import event

    if not event.contains(Session, "after_commit", _on_commit):
        event.listen(Session, "after_commit", _on_commit)
        event.listen(Session, "after_rollback", _on_rollback)
