"""Append audit events to per-tenant SHA-256 hash chains, and verify the chains.

hash = sha256(prev_hash ‖ canonical(event)), where canonical() is the event as JSON with sorted keys
and no whitespace. A chain's head row is locked FOR UPDATE while appending, so concurrent writers get
consecutive sequence numbers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app import clock
from app.audit.models import PLATFORM_CHAIN, AuditChain, AuditEvent
from app.db import new_id
from app.deferred import DeferredWrites
from app.extensions import db
from app.security import Actor

GENESIS = "0" * 64
MASK = "***"
SECRET_FIELDS = frozenset(
    {"password", "password_hash", "secret", "signing_secret", "token", "token_hash", "key_hash", "api_key", "key"}
)
MAX_META_KEYS = 50
MAX_META_STRING = 500


@dataclass(frozen=True)
class Target:
    """What an event acted on."""

    type: str
    id: str
    name: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id, "name": self.name}


_AS_IS = frozenset({str, int, bool, float, type(None)})


def jsonable(value: Any) -> Any:
    """Values as they will read back from a JSON column (datetimes as ISO strings, Decimals as strings)."""
    if type(value) in _AS_IS:  # most values: one lookup instead of five isinstance checks (billing runs
        return value  # write several events per invoice)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in (sorted(value) if isinstance(value, set | frozenset) else value)]
    return value


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds and a Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


SECRET_SUFFIXES = ("password", "secret", "token", "api_key")


def is_secret_field(name: Any) -> bool:
    """Secret by name: a known secret field, or one ending in password/secret/token/api_key
    (current_password, client_secret, access_token …)."""
    lowered = str(name).lower()
    return lowered in SECRET_FIELDS or lowered.endswith(SECRET_SUFFIXES)


def _scrub(value: Any) -> Any:
    """Mask secret-named keys at any depth and cut long strings (nested metadata included)."""
    if isinstance(value, dict):
        return {str(k): (MASK if is_secret_field(k) else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return value[:MAX_META_STRING]
    return value


def mask_changes(changes: dict[str, Any] | None) -> dict[str, list[Any]]:
    """{field: [old, new]} with secret fields masked and unchanged fields dropped."""
    out: dict[str, list[Any]] = {}
    for name, pair in (changes or {}).items():
        old, new = pair
        if old == new:
            continue
        out[name] = [MASK, MASK] if is_secret_field(name) else [_scrub(jsonable(old)), _scrub(jsonable(new))]
    return out


def clean_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """At most 50 keys, strings cut at 500 characters, secrets masked (at any depth)."""
    out: dict[str, Any] = {}
    for key, value in list((metadata or {}).items())[:MAX_META_KEYS]:
        out[str(key)] = MASK if is_secret_field(key) else _scrub(jsonable(value))
    return out


def canonical(event: AuditEvent) -> bytes:
    """The event's canonical JSON bytes: every field except its own hash."""
    document = {
        "id": event.id,
        "chain": event.chain,
        "seq": event.seq,
        "tenant_id": event.tenant_id,
        "occurred_at": iso(event.occurred_at),
        "action": event.action,
        "outcome": event.outcome,
        "severity": event.severity,
        "actor": {"type": event.actor_type, "id": event.actor_id, "display": event.actor_display},
        "targets": event.targets,
        "context": {"ip": event.ip, "user_agent": event.user_agent, "request_id": event.request_id},
        "changes": event.changes,
        "metadata": event.meta,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(event: AuditEvent) -> str:
    """sha256(prev_hash ‖ canonical(event)) as hex."""
    return hashlib.sha256(event.prev_hash.encode() + canonical(event)).hexdigest()


def _lock_chain(session: Session, chain: str) -> AuditChain:
    head = session.execute(select(AuditChain).where(AuditChain.chain == chain).with_for_update()).scalar_one_or_none()
    if head is None:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        session.execute(insert(AuditChain).values(chain=chain, seq=0, hash=GENESIS).on_conflict_do_nothing())
        head = session.execute(select(AuditChain).where(AuditChain.chain == chain).with_for_update()).scalar_one()
    return head


def _event_fields(
    actor: Actor,
    action: str,
    *,
    tenant_id: str | None,
    targets: Iterable[Target],
    changes: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
    outcome: str,
    severity: str | None,
) -> dict[str, Any]:
    """An event's fields other than its place in the chain (seq, prev_hash, hash): its id and time are
    taken now."""
    return {
        "id": new_id("aud"),
        "chain": tenant_id or PLATFORM_CHAIN,
        "tenant_id": tenant_id,
        "occurred_at": clock.now(),
        "action": action,
        "outcome": outcome,
        "severity": severity or ("info" if outcome == "success" else "warning"),
        "actor_type": actor.type,
        "actor_id": actor.id,
        "actor_display": (actor.display or "")[:254],
        "targets": [t.as_dict() for t in targets],
        "ip": actor.ip,
        "user_agent": actor.user_agent,
        "request_id": actor.request_id,
        "changes": mask_changes(changes),
        "meta": clean_metadata(metadata),
    }


def _append(
    session: Session,
    actor: Actor,
    action: str,
    *,
    tenant_id: str | None,
    targets: Iterable[Target],
    changes: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
    outcome: str,
    severity: str | None,
) -> AuditEvent | None:
    deferred = _deferred.pending(session)
    if deferred is not None:  # inside defer(): written by record_many() with the others
        deferred.append(_event_fields(actor, action, tenant_id=tenant_id, targets=targets, changes=changes,
                                      metadata=metadata, outcome=outcome, severity=severity))
        return None
    head = _lock_chain(session, tenant_id or PLATFORM_CHAIN)
    fields = _event_fields(actor, action, tenant_id=tenant_id, targets=targets, changes=changes,
                           metadata=metadata, outcome=outcome, severity=severity)
    event = AuditEvent(**fields, seq=head.seq + 1, prev_hash=head.hash)
    event.hash = compute_hash(event)
    head.seq, head.hash = event.seq, event.hash
    session.add(event)
    return event


def record(
    actor: Actor,
    action: str,
    *,
    tenant_id: str | None = None,
    targets: Iterable[Target] = (),
    changes: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    outcome: str = "success",
    severity: str | None = None,
) -> AuditEvent | None:
    """Append an event in the caller's transaction: it commits or rolls back with the change. Inside
    defer(), the event (its id and time taken now) is kept and written with the others by record_many():
    None is returned then."""
    return _append(
        db.session,
        actor,
        action,
        tenant_id=tenant_id,
        targets=targets,
        changes=changes,
        metadata=metadata,
        outcome=outcome,
        severity=severity,
    )


def record_many(session: Session, events: list[dict[str, Any]]) -> int:
    """Append many events (as record() would, in this order) in the caller's transaction, in one multi-row
    INSERT: the heads of their chains are locked FOR UPDATE in one query (in chain order), each event's
    seq, prev_hash and hash are computed here exactly as _append() does, and the heads move on. `events`
    are the fields _event_fields() made (ids and times already taken). Returns how many were written."""
    if not events:
        return 0
    heads = _lock_chains(session, sorted({fields["chain"] for fields in events}))
    rows = []
    for fields in events:
        head = heads[fields["chain"]]
        event = SimpleNamespace(**fields, seq=head.seq + 1, prev_hash=head.hash)
        event.hash = compute_hash(event)
        head.seq, head.hash = event.seq, event.hash
        row = dict(fields, seq=event.seq, prev_hash=event.prev_hash, hash=event.hash)
        row["metadata"] = row.pop("meta")
        rows.append(row)
    session.execute(insert(AuditEvent.__table__), rows)
    return len(rows)


def _lock_chains(session: Session, chains: list[str]) -> dict[str, AuditChain]:
    """The heads of these chains, locked FOR UPDATE (created at the genesis hash when missing)."""
    heads: dict[str, AuditChain] = {}

    def lock(names: list[str]) -> None:
        for start in range(0, len(names), 500):
            heads.update((head.chain, head) for head in session.scalars(
                select(AuditChain).where(AuditChain.chain.in_(names[start:start + 500])).order_by(AuditChain.chain)
                .with_for_update().execution_options(populate_existing=True)))

    lock(chains)
    missing = [chain for chain in chains if chain not in heads]
    if missing:
        if session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert
        session.execute(upsert(AuditChain).values([{"chain": chain, "seq": 0, "hash": GENESIS} for chain in missing])
                        .on_conflict_do_nothing())
        lock(missing)
    return heads


_deferred = DeferredWrites("audit_deferred", record_many)
defer = _deferred.block  # within the block, rows are kept and written by record_many() in one INSERT


def record_failure(
    actor: Actor,
    action: str,
    *,
    tenant_id: str | None = None,
    targets: Iterable[Target] = (),
    metadata: dict[str, Any] | None = None,
    outcome: str = "denied",
    severity: str = "warning",
) -> None:
    """Append and commit an event on its own transaction: failed logins and denials survive the
    rollback of the request that caused them."""
    with Session(db.engine) as session:
        _append(
            session,
            actor,
            action,
            tenant_id=tenant_id,
            targets=targets,
            changes=None,
            metadata=metadata,
            outcome=outcome,
            severity=severity,
        )
        session.commit()
