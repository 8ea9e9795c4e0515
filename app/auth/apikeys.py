"""Tenant API keys: format with checksum, SHA-256 storage, scopes, expiry, revoke, roll, authentication.

Format: ``tnt_<env>_<26 base62 chars, ~155 bits><6 base62 chars of CRC32>``. Only the first four
random characters are ever displayed (with the last four), so ≥128 bits always stay secret. The checksum lets us
recognise a leaked key and reject a mistyped one without touching the database.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib
from datetime import datetime, timedelta

from flask import current_app, request
from sqlalchemy import select, update

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.auth import keycache
from app.auth.models import ApiKey
from app.db import Slice, keyset
from app.errors import Forbidden, Invalid, NotFound, Unauthorized
from app.events import service as events
from app.extensions import db
from app.security import PERMISSIONS, Actor

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_CHARS = 26  # 26 base62 ≈ 155 bits; the 22 never displayed ≈ 131 bits
CHECKSUM_CHARS = 6
KEY_RE = re.compile(r"^tnt_(live|test)_([0-9A-Za-z]{%d})$" % (RANDOM_CHARS + CHECKSUM_CHARS))
URL_TOKEN_PARAMS = ("api_key", "apikey", "key", "token", "access_token")
LAST_USED_WRITE_INTERVAL = timedelta(seconds=60)


def _base62(number: int, width: int) -> str:
    chars = []
    while number:
        number, rem = divmod(number, 62)
        chars.append(BASE62[rem])
    return "".join(reversed(chars)).rjust(width, "0")


def checksum(body: str) -> str:
    """Six base62 characters of the CRC32 of everything before the checksum."""
    return _base62(zlib.crc32(body.encode()), CHECKSUM_CHARS)


def generate(environment: str = "live") -> str:
    """A new plaintext key."""
    body = f"tnt_{environment}_" + "".join(secrets.choice(BASE62) for _ in range(RANDOM_CHARS))
    return body + checksum(body)


def is_well_formed(key: str) -> bool:
    """Prefix, length, alphabet and checksum all check out."""
    if not KEY_RE.match(key or ""):
        return False
    return checksum(key[:-CHECKSUM_CHARS]) == key[-CHECKSUM_CHARS:]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _check_scopes(actor: Actor, scopes: list[str]) -> list[str]:
    scopes = sorted(set(scopes or []))
    if not scopes:
        raise Invalid(errors={"scopes": "Choose at least one scope."})
    unknown = [s for s in scopes if s not in PERMISSIONS]
    if unknown:
        raise Invalid(errors={"scopes": f"Unknown scope: {', '.join(unknown)}."})
    beyond = [s for s in scopes if not actor.can(s)]
    if beyond:
        raise Forbidden(f"You cannot grant scopes you do not have: {', '.join(beyond)}.",
                        errors={"scopes": f"You do not have: {', '.join(beyond)}."})
    return scopes


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid(errors={"name": "Give the key a name, e.g. 'production backend'."})
    if len(name) > 80:
        raise Invalid(errors={"name": "A name has at most 80 characters."})
    return name


def _check_expiry(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise Invalid(errors={"expires_at": "Give a timezone (e.g. 2027-01-31T00:00:00Z)."})
    if expires_at <= clock.now():
        raise Invalid(errors={"expires_at": "The expiry must be in the future."})
    return expires_at


def _new_key_row(tenant_id: str, name: str, scopes: list[str], expires_at: datetime | None, actor: Actor,
                 rolled_from: str | None = None) -> tuple[ApiKey, str]:
    plaintext = generate(current_app.config["API_KEY_ENVIRONMENT"])
    key = ApiKey(tenant_id=tenant_id, name=name, key_hash=hash_key(plaintext), prefix=plaintext[:13],
                 last4=plaintext[-4:], scopes=scopes, expires_at=expires_at, created_by=actor.display[:200],
                 rolled_from_id=rolled_from)
    db.session.add(key)
    db.session.flush()
    return key, plaintext


def _event_payload(key: ApiKey) -> dict:
    return {"id": key.id, "name": key.name, "scopes": key.scopes, "expires_at": key.expires_at}


def create_key(actor: Actor, tenant_id: str, name: str, scopes: list[str],
               expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Create a key; the plaintext is returned once and never stored."""
    key, plaintext = _new_key_row(tenant_id, _check_name(name), _check_scopes(actor, scopes),
                                  _check_expiry(expires_at), actor)
    audit.record(actor, "api_key.created", tenant_id=tenant_id, targets=[Target("api_key", key.id, key.name)],
                 changes={"name": [None, key.name], "scopes": [None, key.scopes], "expires_at": [None, key.expires_at]})
    events.publish(tenant_id, "api_key.created", _event_payload(key))
    db.session.commit()
    return key, plaintext


def get_key(tenant_id: str, key_id: str) -> ApiKey:
    """A key of this tenant, or NotFound (another tenant's key is not found either)."""
    key = db.session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id))
    if key is None:
        raise NotFound("No such API key.")
    return key


def revoke_key(actor: Actor, tenant_id: str, key_id: str) -> ApiKey:
    """Revoke now; the next request with the key gets 401."""
    key = get_key(tenant_id, key_id)
    if key.revoked_at is not None:
        return key
    key.revoked_at = clock.now()
    keycache.bump_after_commit(db.session, [tenant_id])
    audit.record(actor, "api_key.revoked", tenant_id=tenant_id, targets=[Target("api_key", key.id, key.name)],
                 changes={"revoked_at": [None, key.revoked_at]}, severity="warning")
    events.publish(tenant_id, "api_key.revoked", _event_payload(key))
    db.session.commit()
    return key


def roll_key(actor: Actor, tenant_id: str, key_id: str, old_valid_until: datetime | None = None) -> tuple[ApiKey, str]:
    """Replace a key with a new one of the same name and scopes; the old one stays valid until
    `old_valid_until` (now when None, at most 7 days ahead)."""
    old = get_key(tenant_id, key_id)
    now = clock.now()
    if old.status(now) != "active":
        raise Invalid(f"Only an active key can be rolled; this one is {old.status(now)}.")
    grace_limit = now + current_app.config["MAX_KEY_ROLL_GRACE"]
    until = old_valid_until or now
    if until.tzinfo is None:
        raise Invalid(errors={"expires_at": "Give a timezone."})
    if until < now or until > grace_limit:
        raise Invalid(errors={"expires_at": "The old key can stay valid for at most 7 days."})
    if old.expires_at is not None:
        until = min(until, old.expires_at)
    new, plaintext = _new_key_row(tenant_id, old.name, _check_scopes(actor, old.scopes), old.expires_at, actor,
                                  rolled_from=old.id)
    previous_expiry, old.expires_at = old.expires_at, until
    keycache.bump_after_commit(db.session, [tenant_id])
    audit.record(actor, "api_key.rolled", tenant_id=tenant_id,
                 targets=[Target("api_key", old.id, old.name), Target("api_key", new.id, new.name)],
                 changes={"expires_at": [previous_expiry, until]}, metadata={"new_key": new.id})
    events.publish(tenant_id, "api_key.created", _event_payload(new))
    db.session.commit()
    return new, plaintext


def list_keys(tenant_id: str) -> list[ApiKey]:
    """The tenant's keys, newest first."""
    return list(db.session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.id.desc())))


def keys_slice(tenant_id: str, limit: int, starting_after: str | None) -> Slice:
    """Keys for the API, newest first with a cursor."""
    return keyset(db.session, select(ApiKey).where(ApiKey.tenant_id == tenant_id), ApiKey.id, limit, starting_after)


def unauthorized(detail: str) -> Unauthorized:
    """401 with the WWW-Authenticate challenge."""
    return Unauthorized(detail, headers={"WWW-Authenticate": 'Bearer realm="tenantry"'})


def authenticate(raw: str) -> ApiKey:
    """The live key for a plaintext key, or Unauthorized / Forbidden saying why."""
    if not is_well_formed(raw):
        raise unauthorized("The API key is malformed (wrong prefix, length or checksum).")
    key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(raw)))
    if key is None:
        raise unauthorized("The API key is not valid.")
    now = clock.now()
    status = key.status(now)
    if status != "active":
        raise unauthorized(f"The API key is {status}.")
    from app.tenancy import queries as tenancy_queries

    tenant = tenancy_queries.get_tenant(key.tenant_id)
    if not tenant.is_active:
        raise Forbidden(f"The tenant is {tenant.status}.")
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_WRITE_INTERVAL:
        db.session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        db.session.commit()
    return key


def bearer_token() -> str:
    """The Bearer token of the current request. Keys in the URL are refused outright."""
    req = request._get_current_object()  # one proxy lookup: this runs on every API call
    if req.query_string and any(name in req.args for name in URL_TOKEN_PARAMS):
        raise unauthorized("API keys go in the Authorization header, never in the URL.")
    header = req.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise unauthorized("Send your API key as 'Authorization: Bearer <key>'.")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Use the Bearer scheme: 'Authorization: Bearer <key>'.")
    return token.strip()


def record_last_use(stamps: dict[str, datetime]) -> int:
    """Move last-use times (key id → time) onto the keys, never backwards. Returns rows changed."""
    changed = 0
    for key_id, moment in stamps.items():
        result = db.session.execute(
            update(ApiKey).where(ApiKey.id == key_id)
            .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < moment)).values(last_used_at=moment)
        )
        changed += result.rowcount or 0
    db.session.commit()
    return changed
