"""Verifying the audit trail's hash chains: walk a chain from its start and name the first event that
does not check out (a missing sequence number, a broken link, content that no longer matches its hash, or
events removed from the end)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditChain, AuditEvent
from app.audit.service import GENESIS, compute_hash
from app.extensions import db


@dataclass
class ChainReport:
    """The outcome of verifying one chain."""

    chain: str
    events: int
    ok: bool
    broken_seq: int | None = None
    reason: str = ""


def _chain_events(session: Session, chain: str, batch: int = 1000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == chain, AuditEvent.seq > last)
            .order_by(AuditEvent.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()  # a private session: memory stays flat, the caller's objects are untouched


def verify_chain(chain: str) -> ChainReport:
    """Walk one chain from its start; name the first sequence number whose event does not check out."""
    with Session(db.engine) as session:
        return _verify_chain(session, chain)


def _verify_chain(session: Session, chain: str) -> ChainReport:
    previous_hash, expected_seq, count = GENESIS, 1, 0
    for event in _chain_events(session, chain):
        count += 1
        if event.seq != expected_seq:
            return ChainReport(chain, count, False, expected_seq, f"sequence {expected_seq} is missing")
        if event.prev_hash != previous_hash:
            return ChainReport(chain, count, False, event.seq, "prev_hash does not match the previous event")
        if compute_hash(event) != event.hash:
            return ChainReport(chain, count, False, event.seq, "content does not match its hash")
        previous_hash, expected_seq = event.hash, expected_seq + 1
    head = session.get(AuditChain, chain)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != previous_hash):
        return ChainReport(chain, count, False, expected_seq, "events after this sequence number were removed")
    return ChainReport(chain, count, True)


def verify(chain: str | None = None) -> list[ChainReport]:
    """Verify one chain, or every chain."""
    chains = [chain] if chain else list(db.session.scalars(select(AuditChain.chain).order_by(AuditChain.chain)))
    return [verify_chain(name) for name in chains]
