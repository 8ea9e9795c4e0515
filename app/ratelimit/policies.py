"""Staff's overrides of a tenant's or key's limits, and exemptions (client IPs, keys, tenants).

Overrides and key/tenant exemptions reach the request gate through the key cache: a change bumps the
tenant's cache epoch after commit, so every process reloads that tenant on its next request. Exempt IP
networks apply to every tenant; each process reloads them every `IP_REFRESH_SECONDS`.
"""

from __future__ import annotations

import ipaddress
import threading
import time

from sqlalchemy import select

from app.audit import service as audit
from app.audit.service import Target
from app.auth import keycache
from app.auth.models import ApiKey
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.ratelimit.gcra import MAX_PER_SECOND, STRATEGIES
from app.ratelimit.limits import Limits
from app.ratelimit.models import RateLimitExemption, RateLimitOverride
from app.security import Actor
from app.tenancy.models import Tenant

IP_REFRESH_SECONDS = 30
KINDS = ("ip", "key", "tenant")
LIMIT_FIELDS = ("per_second", "per_minute", "per_day")
LIMIT_MAX = {"per_second": MAX_PER_SECOND, "per_minute": 60 * MAX_PER_SECOND, "per_day": 10**9}


def _override(tenant_id: str, api_key_id: str = "") -> RateLimitOverride | None:
    return db.session.scalar(select(RateLimitOverride).where(RateLimitOverride.tenant_id == tenant_id,
                                                             RateLimitOverride.api_key_id == api_key_id))


def _exempt(kind: str, value: str) -> bool:
    return db.session.scalar(select(RateLimitExemption.id).where(RateLimitExemption.kind == kind,
                                                                 RateLimitExemption.value == value)) is not None


def tenant_limits(tenant: Tenant) -> Limits:
    """The plan's limits with staff's tenant override applied (read when the key cache loads a tenant)."""
    plan, override = tenant.plan, _override(tenant.id)
    if override is None:
        return Limits(plan.rate_limit_per_second, plan.rate_limit_per_minute, exempt=_exempt("tenant", tenant.id))
    return Limits(override.per_second or plan.rate_limit_per_second, override.per_minute or plan.rate_limit_per_minute,
                  override.per_day, override.minute_strategy, exempt=_exempt("tenant", tenant.id))


def key_limits(key: ApiKey) -> Limits:
    """A key's own limits on top of its tenant's (none unless staff set them)."""
    override = _override(key.tenant_id, key.id)
    exempt = _exempt("key", key.id)
    if override is None:
        return Limits(exempt=exempt)
    return Limits(override.per_second, override.per_minute, override.per_day, override.minute_strategy, exempt)


def overrides() -> list[RateLimitOverride]:
    return list(db.session.scalars(select(RateLimitOverride).order_by(RateLimitOverride.created_at.desc())))


def exemptions() -> list[RateLimitExemption]:
    return list(db.session.scalars(select(RateLimitExemption).order_by(RateLimitExemption.kind,
                                                                       RateLimitExemption.value)))


def _limits_from(data: dict) -> dict:
    values, errors = {}, {}
    for field in LIMIT_FIELDS:
        raw = str(data.get(field) or "").strip()
        if not raw:
            values[field] = None
            continue
        try:
            number = int(raw)
        except ValueError:
            errors[field] = "Enter a whole number, or leave it blank."
            continue
        top = LIMIT_MAX[field]
        if not 1 <= number <= top:
            errors[field] = f"Between 1 and {top:,}."
        values[field] = number
    strategy = str(data.get("minute_strategy") or "gcra")
    if strategy not in STRATEGIES:
        errors["minute_strategy"] = "Choose GCRA, fixed window or sliding window."
    values["minute_strategy"] = strategy
    if not errors and not any(values[f] for f in LIMIT_FIELDS):
        errors["per_second"] = "Set at least one limit."
    values["reason"] = str(data.get("reason") or "").strip()[:300]
    if not values["reason"]:
        errors["reason"] = "Say why: it is shown next to the override and kept in the audit trail."
    if errors:
        raise Invalid("Check the override.", errors=errors)
    return values


def _resolve_key(tenant_id: str, api_key_id: str) -> ApiKey:
    key = db.session.get(ApiKey, api_key_id)
    if key is None or key.tenant_id != tenant_id:
        raise Invalid("Check the override.", errors={"api_key_id": "No such API key in this tenant."})
    return key


def _find_tenant(id_or_slug: str) -> Tenant | None:
    from app.tenancy.queries import find_by_id_or_slug

    return find_by_id_or_slug(id_or_slug)


def set_override(actor: Actor, tenant_ref: str, data: dict) -> RateLimitOverride:
    """Create or replace the override of a tenant (by id or slug), or with api_key_id of one of its keys."""
    tenant = _find_tenant(str(tenant_ref or "").strip())
    if tenant is None:
        raise Invalid("Check the override.", errors={"tenant": "No tenant has this id or slug."})
    tenant_id = tenant.id
    api_key_id = str(data.get("api_key_id") or "").strip()
    key = _resolve_key(tenant_id, api_key_id) if api_key_id else None
    values = _limits_from(data)
    override = _override(tenant_id, api_key_id)
    before = {f: getattr(override, f) for f in (*LIMIT_FIELDS, "minute_strategy")} if override else {}
    if override is None:
        override = RateLimitOverride(tenant_id=tenant_id, api_key_id=api_key_id)
        db.session.add(override)
    for field, value in values.items():
        setattr(override, field, value)
    override.created_by = actor.display[:254]
    db.session.flush()
    after = {f: getattr(override, f) for f in (*LIMIT_FIELDS, "minute_strategy")}
    targets = [Target("tenant", tenant.id, tenant.name)] + ([Target("api_key", key.id, key.name)] if key else [])
    audit.record(actor, "ratelimit.override_set", tenant_id=tenant_id, targets=targets,
                 changes={f: [before.get(f), after[f]] for f in after if before.get(f) != after[f]},
                 metadata={"override": override.id, "reason": values["reason"]})
    keycache.bump_after_commit(db.session, [tenant_id])
    db.session.commit()
    return override


def remove_override(actor: Actor, override_id: str) -> None:
    override = db.session.get(RateLimitOverride, override_id)
    if override is None:
        raise NotFound("No such override.")
    before = {f: getattr(override, f) for f in (*LIMIT_FIELDS, "minute_strategy")}
    audit.record(actor, "ratelimit.override_removed", tenant_id=override.tenant_id,
                 targets=[Target("tenant", override.tenant_id)]
                 + ([Target("api_key", override.api_key_id)] if override.api_key_id else []),
                 changes={f: [v, None] for f, v in before.items() if v is not None})
    db.session.delete(override)
    keycache.bump_after_commit(db.session, [override.tenant_id])
    db.session.commit()


def _exemption_subject(kind: str, raw: str) -> tuple[str, str | None, str]:
    """(normalised value, tenant id, label) for an exemption, or Invalid."""
    if kind == "ip":
        try:
            network = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            raise Invalid("Check the exemption.", errors={"value": "Enter an IP address or a network such as "
                                                                   "203.0.113.0/24."}) from None
        return str(network), None, str(network)
    if kind == "key":
        key = db.session.get(ApiKey, raw)
        if key is None:
            raise Invalid("Check the exemption.", errors={"value": "No API key has this id (key_…)."})
        return key.id, key.tenant_id, key.name
    tenant = _find_tenant(raw)
    if tenant is None:
        raise Invalid("Check the exemption.", errors={"value": "No tenant has this id or slug."})
    return tenant.id, tenant.id, tenant.name


def add_exemption(actor: Actor, data: dict) -> RateLimitExemption:
    kind, raw = str(data.get("kind") or ""), str(data.get("value") or "").strip()
    reason = str(data.get("reason") or "").strip()[:300]
    errors = {}
    if kind not in KINDS:
        errors["kind"] = "Choose an IP network, an API key or a tenant."
    if not raw:
        errors["value"] = "Required."
    if not reason:
        errors["reason"] = "Say why: exemptions are powerful and kept in the audit trail."
    if errors:
        raise Invalid("Check the exemption.", errors=errors)
    value, tenant_id, label = _exemption_subject(kind, raw)
    if _exempt(kind, value):
        raise Conflict(f"{label} is already exempt.")
    exemption = RateLimitExemption(kind=kind, value=value, tenant_id=tenant_id, label=label[:200], reason=reason,
                                   created_by=actor.display[:254])
    db.session.add(exemption)
    db.session.flush()
    audit.record(actor, "ratelimit.exemption_added", tenant_id=tenant_id, severity="warning",
                 targets=[Target(kind if kind != "key" else "api_key", value, label)],
                 metadata={"exemption": exemption.id, "kind": kind, "value": value, "reason": reason})
    if tenant_id:
        keycache.bump_after_commit(db.session, [tenant_id])
    db.session.commit()
    _ip_networks.expire()
    return exemption


def remove_exemption(actor: Actor, exemption_id: str) -> RateLimitExemption:
    exemption = db.session.get(RateLimitExemption, exemption_id)
    if exemption is None:
        raise NotFound("No such exemption.")
    audit.record(actor, "ratelimit.exemption_removed", tenant_id=exemption.tenant_id,
                 targets=[Target(exemption.kind if exemption.kind != "key" else "api_key", exemption.value,
                                 exemption.label)],
                 metadata={"exemption": exemption.id, "kind": exemption.kind, "value": exemption.value})
    db.session.delete(exemption)
    if exemption.tenant_id:
        keycache.bump_after_commit(db.session, [exemption.tenant_id])
    db.session.commit()
    _ip_networks.expire()
    return exemption


class _IpNetworks:
    """The exempt networks, reloaded from the database at most every IP_REFRESH_SECONDS per process."""

    def __init__(self) -> None:
        self._networks: tuple = ()
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def expire(self) -> None:
        self._loaded_at = float("-inf")

    def contains(self, ip: str) -> bool:
        if time.monotonic() - self._loaded_at > IP_REFRESH_SECONDS:
            with self._lock:
                rows = db.session.scalars(select(RateLimitExemption.value).where(RateLimitExemption.kind == "ip"))
                self._networks = tuple(ipaddress.ip_network(v) for v in rows)
                self._loaded_at = time.monotonic()
        if not self._networks or not ip:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self._networks)


_ip_networks = _IpNetworks()


def ip_exempt(ip: str) -> bool:
    return _ip_networks.contains(ip)
