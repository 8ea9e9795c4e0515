"""Billing ORM, payment side: prepaid credits (grants and their ledger), payments, each tenant's account
at the payment provider, and the dunning state of invoices being collected."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import ID_LENGTH, PublicIdMixin, TenantScopedMixin
from app.extensions import db

GRANT_KINDS = ("paid", "granted")  # paid: bought by the tenant (a top-up); granted: given by staff
PAYMENT_PROVIDERS = ("wallet", "stripe", "manual")
PAYMENT_STATUSES = ("pending", "succeeded", "failed")
COLLECTION_STATUSES = ("retrying", "exhausted", "settled")


class CreditGrant(PublicIdMixin, TenantScopedMixin, db.Model):
    """Prepaid credit: `amount` granted or bought, `remaining` not yet applied to invoices nor expired.
    Invoices consume the grants that expire first (then granted before paid, then oldest)."""

    __tablename__ = "credit_grants"
    __table_args__ = (Index("ix_credit_grants_tenant_open", "tenant_id", "currency", "remaining"),)
    id_prefix = "cg"

    kind: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    note: Mapped[str] = mapped_column(String(300), default="")
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column()
    expired_at: Mapped[datetime | None] = mapped_column(default=None)


class WalletTransaction(PublicIdMixin, TenantScopedMixin, db.Model):
    """The ledger of a tenant's credits: + granted / purchased, − applied (to an invoice) / expired.
    A grant's `remaining` always equals the sum of its transactions."""

    __tablename__ = "wallet_transactions"
    id_prefix = "wtx"

    grant_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("credit_grants.id"), index=True)
    invoice_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("invoices.id"), default=None,
                                                   index=True)
    kind: Mapped[str] = mapped_column(String(10))  # granted | purchased | applied | expired
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column()


class Payment(PublicIdMixin, TenantScopedMixin, db.Model):
    """Money received (or tried for) against an invoice, or for a credit top-up (invoice_id None).
    provider_ref is the provider's id (a Stripe PaymentIntent); attempt numbers an invoice's tries."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("provider", "provider_ref"),)
    id_prefix = "pay"

    invoice_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("invoices.id"), default=None,
                                                   index=True)
    purpose: Mapped[str] = mapped_column(String(10), default="invoice")  # invoice | top_up
    provider: Mapped[str] = mapped_column(String(10))
    provider_ref: Mapped[str | None] = mapped_column(String(255), default=None)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10))
    attempt: Mapped[int] = mapped_column(default=1)
    failure_code: Mapped[str] = mapped_column(String(100), default="")
    failure_message: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class PaymentAccount(PublicIdMixin, TenantScopedMixin, db.Model):
    """A tenant at the payment provider: its customer id and the card on file (brand and last 4 only)."""

    __tablename__ = "payment_accounts"
    __table_args__ = (UniqueConstraint("tenant_id"),)
    id_prefix = "pac"

    provider: Mapped[str] = mapped_column(String(10))
    customer_ref: Mapped[str] = mapped_column(String(255))
    payment_method_ref: Mapped[str | None] = mapped_column(String(255), default=None)
    card_brand: Mapped[str] = mapped_column(String(20), default="")
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    card_exp: Mapped[str] = mapped_column(String(7), default="")  # MM/YYYY
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class InvoiceCollection(PublicIdMixin, TenantScopedMixin, db.Model):
    """Dunning: an invoice whose collection failed. Retried at BILLING_DUNNING_DAYS after the first failure;
    after the last it is exhausted (and the tenant suspended, if configured); settled once paid or closed."""

    __tablename__ = "invoice_collections"
    __table_args__ = (UniqueConstraint("invoice_id"),)
    id_prefix = "col"

    invoice_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("invoices.id"))
    status: Mapped[str] = mapped_column(String(10), default="retrying", index=True)
    attempts: Mapped[int] = mapped_column(default=1)
    first_failed_at: Mapped[datetime] = mapped_column()
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    suspended_tenant: Mapped[bool] = mapped_column(default=False)
    late_fee_charged_at: Mapped[datetime | None] = mapped_column(default=None)  # once per invoice
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
