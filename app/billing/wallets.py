"""Prepaid credits (a wallet per tenant and currency), as Lago's wallets: staff grant credits, tenants
buy them (a top-up paid through the provider), invoices consume them, and unused credits expire.

A balance is the sum of the `remaining` of the tenant's unexpired grants in a currency. Applying credits
to an invoice takes the grants that expire first, then granted before paid, then the oldest, each under
a row lock, and writes an `applied` ledger row per grant; the invoice records what it took as a wallet
payment (so its lines and total are unchanged: credits pay an invoice, they don't discount it). Every
grant, top-up and expiry is audited; expiry runs as a periodic job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.billing.payment_models import GRANT_KINDS, CreditGrant, WalletTransaction
from app.errors import Invalid
from app.extensions import db
from app.money import CURRENCIES
from app.security import Actor

MAX_GRANT = 10**11  # minor units (a billion in a 2-decimal currency)


def balance(tenant_id: str, currency: str, at: datetime | None = None) -> int:
    """Unexpired credit left, in minor units."""
    at = at or clock.now()
    return int(db.session.scalar(select(func.coalesce(func.sum(CreditGrant.remaining), 0)).where(
        CreditGrant.tenant_id == tenant_id, CreditGrant.currency == currency, CreditGrant.remaining > 0,
        (CreditGrant.expires_at.is_(None)) | (CreditGrant.expires_at > at))) or 0)


def balances(tenant_id: str) -> dict[str, int]:
    """Every currency the tenant holds credit in → its balance."""
    now = clock.now()
    rows = db.session.execute(select(CreditGrant.currency, func.sum(CreditGrant.remaining)).where(
        CreditGrant.tenant_id == tenant_id, CreditGrant.remaining > 0,
        (CreditGrant.expires_at.is_(None)) | (CreditGrant.expires_at > now)).group_by(CreditGrant.currency)).all()
    return {currency: int(total) for currency, total in rows}


def grants(tenant_id: str, limit: int = 100) -> list[CreditGrant]:
    """The tenant's grants, newest first."""
    return list(db.session.scalars(select(CreditGrant).where(CreditGrant.tenant_id == tenant_id)
                                   .order_by(CreditGrant.created_at.desc(), CreditGrant.id.desc()).limit(limit)))


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    amount = data.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= MAX_GRANT:
        errors["amount"] = "A whole number of minor units (cents), at least 1."
    currency = str(data.get("currency") or "").upper()
    if currency not in CURRENCIES:
        errors["currency"] = f"One of {', '.join(CURRENCIES)}."
    expires_at = data.get("expires_at")
    if expires_at is not None and (not isinstance(expires_at, datetime) or expires_at.tzinfo is None):
        errors["expires_at"] = "A moment with a time zone, or none."
    elif expires_at is not None and expires_at <= clock.now():
        errors["expires_at"] = "That moment has passed."
    note = str(data.get("note") or "").strip()
    if len(note) > 300:
        errors["note"] = "At most 300 characters."
    if errors:
        raise Invalid("Some fields need attention.", errors=errors)
    return {"amount": amount, "currency": currency, "expires_at": expires_at, "note": note}


def problems(data: dict[str, Any]) -> dict[str, str]:
    """What is wrong with a grant (field → reason), for forms that check more fields of their own."""
    try:
        _clean(data)
    except Invalid as exc:
        return dict(exc.errors)
    return {}


def add(actor: Actor, tenant_id: str, kind: str, data: dict[str, Any], *, commit: bool = True) -> CreditGrant:
    """Add credit: `granted` by staff (free) or `paid` (a top-up the provider collected). Audited."""
    if kind not in GRANT_KINDS:
        raise ValueError(kind)
    fields = _clean(data)
    now = clock.now()
    grant = CreditGrant(tenant_id=tenant_id, kind=kind, remaining=fields["amount"], created_by=actor.display[:254],
                        created_at=now, **fields)
    db.session.add(grant)
    db.session.flush()
    db.session.add(WalletTransaction(tenant_id=tenant_id, grant_id=grant.id, kind="granted" if kind == "granted"
                                     else "purchased", amount=grant.amount, currency=grant.currency, created_at=now))
    audit.record(actor, f"credits.{'granted' if kind == 'granted' else 'purchased'}", tenant_id=tenant_id,
                 targets=[Target("credit_grant", grant.id, f"{grant.amount} {grant.currency}")],
                 changes={k: [None, v] for k, v in fields.items() if v not in (None, "")})
    if commit:
        db.session.commit()
    return grant


# the order credit is used in: the soonest-expiring first (never-expiring last), then granted before bought
USE_ORDER = (case((CreditGrant.expires_at.is_(None), 1), else_=0), CreditGrant.expires_at,
             case((CreditGrant.kind == "granted", 0), else_=1), CreditGrant.created_at, CreditGrant.id)


def lock_open_grants(tenant_ids: set[str]) -> dict[str, list[CreditGrant]]:
    """The grants with credit left of these tenants, locked FOR UPDATE in one query, per tenant in the order
    apply() uses them (the billing run's batches; apply() then filters by currency and expiry)."""
    out: dict[str, list[CreditGrant]] = {}
    for grant in db.session.scalars(select(CreditGrant).where(CreditGrant.tenant_id.in_(tenant_ids),
                                                              CreditGrant.remaining > 0)
                                    .order_by(*USE_ORDER).with_for_update()):
        out.setdefault(grant.tenant_id, []).append(grant)
    return out


def apply(tenant_id: str, currency: str, amount: int, invoice_id: str) -> int:
    """Take up to `amount` from the tenant's credit for an invoice (in the caller's transaction); returns
    how much was taken."""
    if amount <= 0:
        return 0
    known = (db.session.info.get("billing_batch") or {}).get("open_grants")
    now = clock.now()
    if known is not None and tenant_id in known[0]:  # the billing run's batch locked them (lock_open_grants)
        open_grants = [grant for grant in known[1].get(tenant_id, ()) if grant.currency == currency
                       and grant.remaining > 0 and (grant.expires_at is None or grant.expires_at > now)]
    else:
        open_grants = db.session.scalars(
            select(CreditGrant).where(CreditGrant.tenant_id == tenant_id, CreditGrant.currency == currency,
                                      CreditGrant.remaining > 0,
                                      (CreditGrant.expires_at.is_(None)) | (CreditGrant.expires_at > now))
            .order_by(*USE_ORDER).with_for_update()).all()
    taken = 0
    for grant in open_grants:
        part = min(grant.remaining, amount - taken)
        if part <= 0:
            break
        grant.remaining -= part
        taken += part
        db.session.add(WalletTransaction(tenant_id=tenant_id, grant_id=grant.id, invoice_id=invoice_id,
                                         kind="applied", amount=-part, currency=currency, created_at=now))
    return taken


def expire(now: datetime | None = None) -> int:
    """Expire what is left of grants past their expiry (ledger row, audit); commits. Returns how many."""
    now = now or clock.now()
    due = db.session.scalars(select(CreditGrant).where(
        CreditGrant.remaining > 0, CreditGrant.expires_at.is_not(None), CreditGrant.expires_at <= now)
        .with_for_update(skip_locked=True)).all()
    system = Actor.system("billing")
    for grant in due:
        lost = grant.remaining
        grant.remaining, grant.expired_at = 0, now
        db.session.add(WalletTransaction(tenant_id=grant.tenant_id, grant_id=grant.id, kind="expired",
                                         amount=-lost, currency=grant.currency, created_at=now))
        audit.record(system, "credits.expired", tenant_id=grant.tenant_id,
                     targets=[Target("credit_grant", grant.id, f"{lost} {grant.currency}")],
                     metadata={"expired": lost, "currency": grant.currency})
    db.session.commit()
    return len(due)
