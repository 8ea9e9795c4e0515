"""Payment providers: Stripe (with STRIPE_API_KEY) or the built-in manual provider.

Stripe, through the official `stripe` package's StripeClient (STRIPE_API_BASE points it elsewhere, e.g. at
stripe-mock or the tests' fake): each tenant gets a Customer; a card is added through Stripe Checkout in
setup mode (the card never touches Tenantry; the `checkout.session.completed` webhook brings back its
SetupIntent, whose PaymentMethod becomes the customer's default); invoices and top-ups are charged with
a PaymentIntent, off session and confirmed at once, with an idempotency key per invoice and attempt so a
retried request never charges twice.

Manual: no card can be charged; staff record payments (bank transfers) by marking invoices paid. The
collection flow is the same (credits first, dunning, suspension).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select

from app import clock
from app.billing.payment_models import PaymentAccount
from app.errors import Conflict
from app.extensions import db
from app.tenancy.models import Tenant

log = logging.getLogger(__name__)


@dataclass
class ChargeResult:
    """What a charge came to: succeeded, pending (the provider tells later, by webhook) or failed."""

    status: str
    reference: str | None = None
    failure_code: str = ""
    failure_message: str = ""


def name() -> str:
    """The provider in use: "stripe" when STRIPE_API_KEY is set, else "manual"."""
    return "stripe" if current_app.config.get("STRIPE_API_KEY") else "manual"


def client():
    """A StripeClient for the configured key (and STRIPE_API_BASE, if set)."""
    import stripe

    config = current_app.config
    base = config.get("STRIPE_API_BASE")
    return stripe.StripeClient(config["STRIPE_API_KEY"], base_addresses={"api": base} if base else None,
                               max_network_retries=config.get("STRIPE_MAX_RETRIES", 2))


def account(tenant_id: str) -> PaymentAccount | None:
    return db.session.scalar(select(PaymentAccount).where(PaymentAccount.tenant_id == tenant_id))


def ensure_customer(tenant_id: str) -> PaymentAccount:
    """The tenant's Stripe customer, created once (idempotency key per tenant). Commits."""
    found = account(tenant_id)
    if found is not None:
        return found
    tenant = db.session.get(Tenant, tenant_id)
    customer = client().v1.customers.create(
        params={"name": tenant.name, "metadata": {"tenant_id": tenant.id, "tenant_slug": tenant.slug}},
        options={"idempotency_key": f"tenantry-customer-{tenant.id}"})
    now = clock.now()
    found = PaymentAccount(tenant_id=tenant_id, provider="stripe", customer_ref=customer.id, created_at=now,
                           updated_at=now)
    db.session.add(found)
    db.session.commit()
    return found


def setup_checkout(tenant_id: str, success_url: str, cancel_url: str) -> str:
    """A Stripe Checkout session (setup mode) where the tenant enters a card; returns its URL."""
    if name() != "stripe":
        raise Conflict("Cards are taken through Stripe, which is not configured (STRIPE_API_KEY).")
    customer = ensure_customer(tenant_id)
    session = client().v1.checkout.sessions.create(params={
        "mode": "setup", "customer": customer.customer_ref, "payment_method_types": ["card"],
        "currency": _currency_of(tenant_id).lower(), "success_url": success_url, "cancel_url": cancel_url,
        "metadata": {"tenant_id": tenant_id, "purpose": "payment_method"},
    })
    return session.url


def _currency_of(tenant_id: str) -> str:
    from app.billing.models import Subscription

    sub = db.session.scalar(select(Subscription).where(Subscription.tenant_id == tenant_id))
    return sub.currency if sub is not None else "USD"


def attach_from_setup(tenant_id: str, setup_intent_id: str) -> PaymentAccount:
    """After Checkout: the SetupIntent's PaymentMethod becomes the tenant's card and the customer's default
    (its brand, last 4 and expiry are kept for display). In the caller's transaction."""
    stripe_client = client()
    setup = stripe_client.v1.setup_intents.retrieve(setup_intent_id)
    method_id = setup.payment_method if isinstance(setup.payment_method, str) else setup.payment_method.id
    found = account(tenant_id)
    if found is None:
        raise Conflict("This tenant has no Stripe customer.")
    stripe_client.v1.customers.update(found.customer_ref, params={
        "invoice_settings": {"default_payment_method": method_id}})
    method = stripe_client.v1.payment_methods.retrieve(method_id)
    card = getattr(method, "card", None)
    found.payment_method_ref = method_id
    if card is not None:
        found.card_brand, found.card_last4 = str(card.brand)[:20], str(card.last4)[:4]
        found.card_exp = f"{int(card.exp_month):02d}/{int(card.exp_year)}"
    found.updated_at = clock.now()
    return found


def charge(tenant_id: str, amount: int, currency: str, idempotency_key: str, metadata: dict[str, Any],
           description: str) -> ChargeResult:
    """Charge the tenant's card on file, off session. Never raises for a declined card or a Stripe error:
    they come back as a failed result."""
    import stripe

    found = account(tenant_id)
    if name() != "stripe" or found is None or not found.payment_method_ref:
        return ChargeResult("failed", failure_code="no_payment_method",
                            failure_message="No card on file.")
    try:
        intent = client().v1.payment_intents.create(params={
            "amount": amount, "currency": currency.lower(), "customer": found.customer_ref,
            "payment_method": found.payment_method_ref, "off_session": True, "confirm": True,
            "description": description[:1000], "metadata": {k: str(v) for k, v in metadata.items()},
        }, options={"idempotency_key": idempotency_key})
    except stripe.CardError as exc:
        error = exc.error
        reference = None
        intent = getattr(error, "payment_intent", None) if error is not None else None
        if intent is not None:
            reference = intent.get("id") if isinstance(intent, dict) else getattr(intent, "id", None)
        return ChargeResult("failed", reference, (getattr(error, "decline_code", None) or exc.code or "card_error"),
                            str(exc.user_message or "The card was declined.")[:500])
    except stripe.StripeError as exc:
        log.warning("Stripe charge for tenant %s failed: %s", tenant_id, exc)
        return ChargeResult("failed", None, exc.code or "stripe_error", str(exc.user_message or exc)[:500])
    if intent.status == "succeeded":
        return ChargeResult("succeeded", intent.id)
    if intent.status in ("processing", "requires_capture"):
        return ChargeResult("pending", intent.id)
    return ChargeResult("failed", intent.id, intent.status, f"The payment needs the customer ({intent.status}).")
