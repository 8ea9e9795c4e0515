"""Platform API keys: staff make them for operator automation on the staff API (/api/v1/admin/…).

Same format as tenant keys with a ``tnt_plat_`` prefix (26 random base62 characters and a CRC32 checksum),
stored as SHA-256 only and shown once. A platform key belongs to no tenant and works only on the staff
API; a tenant key is refused there (403) and a platform key is refused on tenant routes (403). Each key
carries scopes from PLATFORM_SCOPES. Creating and revoking are audited on the platform chain; every change
made with a key is audited by the service that makes it, with the key as the actor (type ``platform_key``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import current_app, g
from redis.exceptions import RedisError
from sqlalchemy import select, update

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.auth.apikeys import (
    BASE62,
    CHECKSUM_CHARS,
    KEY_RE,
    RANDOM_CHARS,
    bearer_token,
    checksum,
    hash_key,
    unauthorized,
)
from app.auth.platform_models import PlatformApiKey
from app.errors import Forbidden, Invalid, NotFound, ServiceError
from app.extensions import db
from app.security import Actor, deny, request_context

PREFIX = "tnt_plat_"
PLATFORM_KEY_RE = re.compile(r"^tnt_plat_[0-9A-Za-z]{%d}$" % (RANDOM_CHARS + CHECKSUM_CHARS))
LAST_USED_WRITE_INTERVAL = timedelta(seconds=60)

PLATFORM_SCOPES: dict[str, str] = {
    "admin:read": "Read the overview figures and tenants",
    "admin:tenants:write": "Create and change tenants: profile, suspend, resume, change plan",
    "admin:users:read": "Read users and their memberships (personal data)",
    "admin:activity:read": "Read the audit trail of every tenant and the platform",
}
# What a tenants:write key may do inside the services it calls (they check tenant permissions).
IMPLIED_PERMISSIONS = {"admin:tenants:write": frozenset({"tenant:write", "billing:write", "members:write"})}


class WrongKeyKind(Forbidden):
    type, title = "wrong-key-kind", "Wrong kind of API key"


class PlatformRateLimited(ServiceError):
    status, type, title = 429, "rate-limit-exceeded", "Too many requests"


def generate() -> str:
    """A new plaintext platform key."""
    body = PREFIX + "".join(secrets.choice(BASE62) for _ in range(RANDOM_CHARS))
    return body + checksum(body)


def is_well_formed(key: str) -> bool:
    if not PLATFORM_KEY_RE.match(key or ""):
        return False
    return checksum(key[:-CHECKSUM_CHARS]) == key[-CHECKSUM_CHARS:]


def looks_like_platform_key(raw: str) -> bool:
    """The prefix alone: enough to tell someone they sent a platform key to a tenant route."""
    return (raw or "").startswith(PREFIX)


def _check(name: str, scopes: list[str]) -> tuple[str, list[str]]:
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the key a name, e.g. 'provisioning bot'."
    elif len(name) > 80:
        errors["name"] = "A name has at most 80 characters."
    scopes = sorted(set(scopes or []))
    unknown = [s for s in scopes if s not in PLATFORM_SCOPES]
    if not scopes:
        errors["scopes"] = "Choose at least one scope."
    elif unknown:
        errors["scopes"] = f"Unknown scope: {', '.join(unknown)}."
    if errors:
        raise Invalid("Some fields need attention.", errors=errors)
    return name, scopes


def create_key(actor: Actor, name: str, scopes: list[str]) -> tuple[PlatformApiKey, str]:
    """Create a platform key (staff only); the plaintext is returned once and never stored."""
    if actor.type != "staff":
        raise Forbidden("Only staff create platform keys.")
    name, scopes = _check(name, scopes)
    plaintext = generate()
    key = PlatformApiKey(name=name, key_hash=hash_key(plaintext), prefix=plaintext[:13], last4=plaintext[-4:],
                         scopes=scopes, created_by=(actor.display or "")[:254], created_by_id=actor.id)
    db.session.add(key)
    db.session.flush()
    audit.record(actor, "platform_key.created", targets=[Target("platform_key", key.id, key.name)],
                 changes={"name": [None, key.name], "scopes": [None, key.scopes]}, severity="warning")
    db.session.commit()
    return key, plaintext


def get_key(key_id: str) -> PlatformApiKey:
    key = db.session.get(PlatformApiKey, key_id)
    if key is None:
        raise NotFound("No such platform key.")
    return key


def revoke_key(actor: Actor, key_id: str) -> PlatformApiKey:
    """Revoke now: the next request with the key gets 401. Revoking a revoked key changes nothing."""
    if actor.type != "staff":
        raise Forbidden("Only staff revoke platform keys.")
    key = get_key(key_id)
    if key.revoked_at is not None:
        return key
    key.revoked_at, key.revoked_by = clock.now(), (actor.display or "")[:254]
    audit.record(actor, "platform_key.revoked", targets=[Target("platform_key", key.id, key.name)],
                 changes={"revoked_at": [None, key.revoked_at]}, severity="warning")
    db.session.commit()
    return key


def list_keys() -> list[PlatformApiKey]:
    """Every platform key, active ones first, newest first."""
    keys = list(db.session.scalars(select(PlatformApiKey).order_by(PlatformApiKey.id.desc())))
    return sorted(keys, key=lambda k: k.revoked_at is not None)


# --- the gate of the staff API ---------------------------------------------------------------------------


def authenticate(raw: str) -> PlatformApiKey:
    """The active platform key for a plaintext key, or 401/403 saying why."""
    if KEY_RE.match(raw or ""):
        raise WrongKeyKind("Tenant API keys cannot call the staff API (/api/v1/admin/…). Use a platform key "
                           "(tnt_plat_…), which staff create on the API keys page of the console.")
    if not is_well_formed(raw):
        raise unauthorized("The API key is malformed (wrong prefix, length or checksum).")
    key = db.session.scalar(select(PlatformApiKey).where(PlatformApiKey.key_hash == hash_key(raw)))
    if key is None:
        raise unauthorized("The API key is not valid.")
    if key.revoked_at is not None:
        raise unauthorized("The API key is revoked.")
    now = clock.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_WRITE_INTERVAL:
        db.session.execute(update(PlatformApiKey).where(PlatformApiKey.id == key.id).values(last_used_at=now))
        db.session.commit()
    return key


def _charge(key: PlatformApiKey) -> None:
    """The key's own fixed limits (config PLATFORM_KEY_PER_SECOND / _PER_MINUTE), in one Redis call."""
    config = current_app.config
    if not config.get("RATELIMIT_ENABLED", True):
        return
    from app.ratelimit import service as gate  # its script on its per-thread connection, and its breaker
    from app.ratelimit.gcra import Bucket, Plan

    tag = f"rl:{{plat:{key.id}}}"
    wanted = [("platform-key-second", config.get("PLATFORM_KEY_PER_SECOND", 20), 1),
              ("platform-key-minute", config.get("PLATFORM_KEY_PER_MINUTE", 600), 60)]
    buckets = [Bucket(policy, f"{tag}:{period}:{limit}", limit, period) for policy, limit, period in wanted if limit]
    if not buckets:
        return
    result = None
    if gate._breaker.closed():  # not while Redis failed a moment ago: no waiting on it again yet
        try:
            result = gate._gate().run(Plan.build(buckets))
        except RedisError:
            gate._breaker.trip()
    if result is None:
        if config.get("RATELIMIT_API_ON_REDIS_DOWN") == "closed":
            raise gate.RedisDown("Rate limits cannot be checked right now, so requests are refused. Retry shortly.",
                                 headers={"Retry-After": "2"})
        return  # fail open, as the tenant gate does
    decision = result.decision
    g.ratelimit = decision
    if not decision.allowed:
        bucket = decision.violated
        raise PlatformRateLimited(
            f"Rate limit '{bucket.policy}' exceeded: {bucket.limit} requests per {bucket.period} s. "
            f"Retry in {max(1, round(decision.retry_after))} s.", violated_policy=bucket.policy)


def platform_scope(scope: str) -> Callable[[Callable], Callable]:
    """A staff API route: a valid platform key (else 401; a tenant key 403) with `scope` (else 403)."""
    if scope not in PLATFORM_SCOPES:
        raise ValueError(f"unknown platform scope {scope}")

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = authenticate(bearer_token())
            g.platform_key = key
            permissions = frozenset(key.scopes).union(*(IMPLIED_PERMISSIONS.get(s, ()) for s in key.scopes))
            g.actor = Actor(type="platform_key", id=key.id, display=key.name, permissions=permissions,
                            **request_context())
            _charge(key)  # before the scope check: a flood of refused calls is limited too
            if scope not in key.scopes:
                deny(g.actor, scope)
            return view(*args, **kwargs)

        wrapper._access = f"platform:{scope}"  # type: ignore[attr-defined]
        return wrapper

    return decorator
