"""The event types tenants can subscribe to (migration 0008 seeds the same list; ensure_event_types()
adds any missing ones, e.g. after a TRUNCATE or when a feature adds a type)."""

from __future__ import annotations

from sqlalchemy import select

from app import clock
from app.extensions import db
from app.webhooks.outbound_models import WebhookEventType

_MEM = "mem_01jd0000000000000000000000"
_USR = "usr_01jd0000000000000000000000"
_INV = {"id": "inv_01jd0000000000000000000000", "number": "INV-2026-000123", "status": "draft", "currency": "USD",
        "subtotal": 4900, "discount": 0, "tax": 0, "total": 4900, "amount_due": 4900}
_SUB = {"id": "sub_01jd0000000000000000000000", "plan": "pro", "interval": "monthly", "status": "active",
        "cancel_at_period_end": False}
_KEY = {"id": "key_01jd0000000000000000000000", "name": "CI", "prefix": "tnt_live_ab12"}

EVENT_TYPES: dict[str, tuple[str, dict]] = {
    "tenant.updated": ("A tenant's name, plan, status or settings changed.",
                       {"tenant": {"id": "ten_01jd0000000000000000000000", "name": "Acme Corp", "status": "active"},
                        "changed": ["name"]}),
    "member.added": ("A person joined the tenant.",
                     {"id": _MEM, "user_id": _USR, "email": "alice@example.com", "role": "member"}),
    "member.updated": ("A member's role changed.", {"id": _MEM, "user_id": _USR, "role": "admin"}),
    "member.removed": ("A person left the tenant.", {"id": _MEM, "user_id": _USR, "email": "alice@example.com"}),
    "api_key.created": ("An API key was created (or rolled).", _KEY),
    "api_key.revoked": ("An API key was revoked.", _KEY),
    "usage.threshold_reached": ("The month's API calls reached 80% or 100% of the plan's quota.",
                                {"metric": "api_calls", "threshold": 80, "used": 800, "included": 1000}),
    "endpoint.disabled": ("A webhook endpoint was disabled (it answered 410 Gone, or failed for days).",
                          {"endpoint_id": "ep_01jd0000000000000000000000", "url": "https://example.com/webhooks",
                           "reason": "The endpoint answered 410 Gone."}),
    "invoice.created": ("An invoice was opened as a draft for a subscription period.", {"invoice": _INV}),
    "invoice.finalized": ("An invoice was finalized: numbered, immutable and due.",
                          {"invoice": _INV | {"status": "open"}}),
    "invoice.paid": ("An invoice was paid (or nothing was due).",
                     {"invoice": _INV | {"status": "paid", "amount_due": 0}, "how": "manual"}),
    "invoice.voided": ("An invoice was voided; it owes nothing.",
                       {"invoice": _INV | {"status": "void"}, "reason": "duplicate"}),
    "invoice.payment_failed": ("Collecting an invoice failed (e.g. no payment method).",
                               {"invoice": _INV | {"status": "open"}, "reason": "no_payment_method"}),
    "subscription.created": ("A tenant subscribed to a plan (trialing or active).", {"subscription": _SUB}),
    "subscription.updated": ("A subscription changed: plan, interval, status, renewal, trial end or coupon.",
                             {"subscription": _SUB, "reason": "upgraded"}),
    "subscription.canceled": ("A subscription ended.",
                              {"subscription": _SUB | {"status": "canceled"}, "reason": "canceled"}),
    "credit_note.created": ("A credit note (refund or correction) was issued against an invoice.",
                            {"credit_note": {"id": "cn_01jd0000000000000000000000", "number": "CN-2026-000001",
                                             "amount": 1000, "tax_amount": 0, "currency": "USD",
                                             "reason": "order_change"}, "invoice": _INV | {"status": "paid"}}),
    "tenant.suspended": ("The tenant was suspended: an invoice stayed unpaid after every payment retry.",
                         {"tenant": {"id": "ten_01jd0000000000000000000000", "slug": "acme", "status": "suspended"},
                          "reason": "Invoice INV-2026-000123 unpaid after every payment retry.",
                          "invoice_id": "inv_01jd0000000000000000000000"}),
    "tenant.resumed": ("The tenant was resumed: the debt that suspended it was settled.",
                       {"tenant": {"id": "ten_01jd0000000000000000000000", "slug": "acme", "status": "active"},
                        "reason": "Invoice INV-2026-000123 settled.", "invoice_id": "inv_01jd0000000000000000000000"}),
    "flag.updated": ("A feature flag changed in a way that changes what it serves you (value or variant).",
                     {"key": "new-dashboard", "type": "boolean", "action": "updated", "value": True, "variant": "on",
                      "reason": "TARGETING_MATCH", "previous": {"value": False, "variant": "default"}}),
}


def ensure_event_types() -> int:
    """Insert the catalogue's missing types (never changes existing ones); commits. Returns how many."""
    known = set(db.session.scalars(select(WebhookEventType.name)))
    missing = [name for name in EVENT_TYPES if name not in known]
    for name in missing:
        description, example = EVENT_TYPES[name]
        db.session.add(WebhookEventType(name=name, description=description, example=example, deprecated=False,
                                        created_at=clock.now()))
    db.session.commit()
    return len(missing)


def known_types() -> set[str]:
    """Names of every event type in the catalogue (deprecated ones included)."""
    return set(db.session.scalars(select(WebhookEventType.name)))
