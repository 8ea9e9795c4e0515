"""Stripe's events, as the inbound door (POST /webhooks/stripe, app.webhooks.inbound) hands them over:
verified, stored once per event id, then processed here in a job. Each handler is idempotent (a replayed
or redelivered event changes nothing the second time) and raises to have the event retried.

- `checkout.session.completed` (setup mode): the card the tenant entered becomes its payment method.
- `payment_intent.succeeded`: a payment that was processing (or failed, then went through) pays its
  invoice, or credits a top-up.
- `payment_intent.payment_failed`: a payment that was processing failed: the invoice enters dunning.
"""

from __future__ import annotations

from app.billing import collection, providers
from app.webhooks import inbound
from app.webhooks.inbound_models import InboundWebhookEvent


def _object(event: InboundWebhookEvent) -> dict:
    return ((event.payload or {}).get("data") or {}).get("object") or {}


@inbound.handler("checkout.session.completed")
def checkout_completed(event: InboundWebhookEvent) -> None:
    session = _object(event)
    tenant_id = (session.get("metadata") or {}).get("tenant_id")
    if session.get("mode") != "setup" or not session.get("setup_intent") or not tenant_id:
        return  # not one of ours
    setup_intent = session["setup_intent"]
    providers.attach_from_setup(tenant_id, setup_intent if isinstance(setup_intent, str) else setup_intent["id"])


@inbound.handler("payment_intent.succeeded")
def payment_intent_succeeded(event: InboundWebhookEvent) -> None:
    intent = _object(event)
    if intent.get("id"):
        collection.payment_succeeded(intent["id"])


@inbound.handler("payment_intent.payment_failed")
def payment_intent_failed(event: InboundWebhookEvent) -> None:
    intent = _object(event)
    error = intent.get("last_payment_error") or {}
    if intent.get("id"):
        collection.payment_failed(intent["id"], error.get("decline_code") or error.get("code") or "payment_failed",
                                  error.get("message") or "The payment failed.")
