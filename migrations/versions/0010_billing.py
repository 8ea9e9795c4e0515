"""Billing: billing profiles, tax rates, coupons, subscriptions and their dated history, invoices (UNIQUE per
subscription and period start), lines, credit notes, per-year number sequences, billing run failures;
and the billing event types in the webhook catalogue.

Revision ID: 0010_billing
Revises: 0009_tenant_event_types
Create Date: 2026-11-23 13:49:50.249538

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from migrations import event_types

# revision identifiers, used by Alembic.
revision = '0010_billing'
down_revision = '0009_tenant_event_types'
branch_labels = None
depends_on = None

_INV = {"id": "inv_01jd0000000000000000000000", "number": "INV-2026-000123", "status": "draft", "currency": "USD",
        "subtotal": 4900, "discount": 0, "tax": 0, "total": 4900, "amount_due": 4900}
_SUB = {"id": "sub_01jd0000000000000000000000", "plan": "pro", "interval": "monthly", "status": "active",
        "cancel_at_period_end": False}
EVENT_TYPES = [  # as in app.webhooks.catalogue
    ("invoice.created", "An invoice was opened as a draft for a subscription period.", {"invoice": _INV}),
    ("invoice.finalized", "An invoice was finalized: numbered, immutable and due.",
     {"invoice": _INV | {"status": "open"}}),
    ("invoice.paid", "An invoice was paid (or nothing was due).",
     {"invoice": _INV | {"status": "paid", "amount_due": 0}, "how": "manual"}),
    ("invoice.voided", "An invoice was voided; it owes nothing.",
     {"invoice": _INV | {"status": "void"}, "reason": "duplicate"}),
    ("invoice.payment_failed", "Collecting an invoice failed (e.g. no payment method).",
     {"invoice": _INV | {"status": "open"}, "reason": "no_payment_method"}),
    ("subscription.created", "A tenant subscribed to a plan (trialing or active).", {"subscription": _SUB}),
    ("subscription.updated", "A subscription changed: plan, interval, status, renewal, trial end or coupon.",
     {"subscription": _SUB, "reason": "upgraded"}),
    ("subscription.canceled", "A subscription ended.",
     {"subscription": _SUB | {"status": "canceled"}, "reason": "canceled"}),
    ("credit_note.created", "A credit note (refund or correction) was issued against an invoice.",
     {"credit_note": {"id": "cn_01jd0000000000000000000000", "number": "CN-2026-000001", "amount": 1000,
                      "tax_amount": 0, "currency": "USD", "reason": "order_change"},
      "invoice": _INV | {"status": "paid"}}),
]


def upgrade():
    op.create_table('coupons',
    sa.Column('code', sa.String(length=40), nullable=True),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('percent_off', sa.Numeric(precision=5, scale=2), nullable=True),
    sa.Column('amount_off', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('duration', sa.String(length=10), nullable=False),
    sa.Column('duration_periods', sa.Integer(), nullable=True),
    sa.Column('max_redemptions', sa.Integer(), nullable=True),
    sa.Column('times_redeemed', sa.Integer(), nullable=False),
    sa.Column('redeem_by', sa.DateTime(timezone=True), nullable=True),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('code', name=op.f('uq_coupons_code'))
    )
    op.create_table('document_sequences',
    sa.Column('series', sa.String(length=16), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('series', name=op.f('pk_document_sequences'))
    )
    op.create_table('tax_rates',
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('region', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('percentage', sa.Numeric(precision=7, scale=4), nullable=False),
    sa.Column('inclusive', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_rates')),
    sa.UniqueConstraint('country', 'region', name=op.f('uq_tax_rates_country'))
    )
    op.create_table('billing_profiles',
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('region', sa.String(length=10), nullable=False),
    sa.Column('tax_id', sa.String(length=40), nullable=False),
    sa.Column('tax_exempt', sa.String(length=10), nullable=False),
    sa.Column('default_payment_method', sa.String(length=120), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_billing_profiles_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_profiles')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_billing_profiles_tenant_id'))
    )
    with op.batch_alter_table('billing_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_profiles_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('billing_run_failures',
    sa.Column('stage', sa.String(length=10), nullable=False),
    sa.Column('subject_id', sa.String(length=40), nullable=False),
    sa.Column('run_date', sa.Date(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('first_failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_billing_run_failures_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_run_failures'))
    )
    with op.batch_alter_table('billing_run_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_run_failures_subject_id'), ['subject_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_billing_run_failures_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('subscriptions',
    sa.Column('plan_id', sa.String(length=40), nullable=False),
    sa.Column('interval', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('billing_anchor', sa.DateTime(timezone=True), nullable=False),
    sa.Column('current_period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('current_period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('trial_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('trial_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_at_period_end', sa.Boolean(), nullable=False),
    sa.Column('canceled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('past_due_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('grace_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pending_plan_id', sa.String(length=40), nullable=True),
    sa.Column('pending_interval', sa.String(length=10), nullable=True),
    sa.Column('coupon_id', sa.String(length=40), nullable=True),
    sa.Column('coupon_periods_left', sa.Integer(), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_subscriptions_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['pending_plan_id'], ['plans.id'], name=op.f('fk_subscriptions_pending_plan_id_plans')),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_subscriptions_plan_id_plans')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_subscriptions_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscriptions')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_subscriptions_tenant_id'))
    )
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscriptions_current_period_end'), ['current_period_end'], unique=False)
        batch_op.create_index(batch_op.f('ix_subscriptions_plan_id'), ['plan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subscriptions_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_subscriptions_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('invoices',
    sa.Column('subscription_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.String(length=24), nullable=True),
    sa.Column('status', sa.String(length=14), nullable=False),
    sa.Column('billing_reason', sa.String(length=24), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('plan_id', sa.String(length=40), nullable=False),
    sa.Column('interval', sa.String(length=10), nullable=False),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('charge_fee', sa.Boolean(), nullable=False),
    sa.Column('usage_plan_id', sa.String(length=40), nullable=True),
    sa.Column('usage_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('usage_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('coupon_id', sa.String(length=40), nullable=True),
    sa.Column('subtotal', sa.BigInteger(), nullable=False),
    sa.Column('discount', sa.BigInteger(), nullable=False),
    sa.Column('tax', sa.BigInteger(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('amount_paid', sa.BigInteger(), nullable=False),
    sa.Column('amount_credited', sa.BigInteger(), nullable=False),
    sa.Column('customer', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('finalize_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finalized_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('uncollectible_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_invoices_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_invoices_plan_id_plans')),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], name=op.f('fk_invoices_subscription_id_subscriptions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_invoices_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['usage_plan_id'], ['plans.id'], name=op.f('fk_invoices_usage_plan_id_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('number', name=op.f('uq_invoices_number')),
    sa.UniqueConstraint('subscription_id', 'period_start', name=op.f('uq_invoices_subscription_id'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoices_finalize_after'), ['finalize_after'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_subscription_id'), ['subscription_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('subscription_events',
    sa.Column('subscription_id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=24), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('mrr_before', sa.Integer(), nullable=False),
    sa.Column('mrr_after', sa.Integer(), nullable=False),
    sa.Column('status_before', sa.String(length=10), nullable=True),
    sa.Column('status_after', sa.String(length=10), nullable=False),
    sa.Column('plan_before', sa.String(length=40), nullable=True),
    sa.Column('plan_after', sa.String(length=40), nullable=False),
    sa.Column('interval_before', sa.String(length=10), nullable=True),
    sa.Column('interval_after', sa.String(length=10), nullable=False),
    sa.Column('actor', sa.String(length=254), nullable=False),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], name=op.f('fk_subscription_events_subscription_id_subscriptions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_subscription_events_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_events'))
    )
    with op.batch_alter_table('subscription_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscription_events_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_subscription_events_subscription_id'), ['subscription_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subscription_events_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('credit_notes',
    sa.Column('invoice_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.String(length=24), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('tax_amount', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=30), nullable=False),
    sa.Column('memo', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_credit_notes_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_notes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_notes')),
    sa.UniqueConstraint('number', name=op.f('uq_credit_notes_number'))
    )
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_notes_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_notes_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('invoice_lines',
    sa.Column('invoice_id', sa.String(length=40), nullable=True),
    sa.Column('subscription_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=14), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=24, scale=6), nullable=True),
    sa.Column('unit_amount', sa.Numeric(precision=24, scale=6), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tax_rate_id', sa.String(length=40), nullable=True),
    sa.Column('tax_percent', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('tax_inclusive', sa.Boolean(), nullable=False),
    sa.Column('tax_amount', sa.BigInteger(), nullable=False),
    sa.Column('tax_note', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_lines_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], name=op.f('fk_invoice_lines_subscription_id_subscriptions')),
    sa.ForeignKeyConstraint(['tax_rate_id'], ['tax_rates.id'], name=op.f('fk_invoice_lines_tax_rate_id_tax_rates')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_invoice_lines_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_lines'))
    )
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_lines_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_lines_subscription_id'), ['subscription_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_lines_tenant_id'), ['tenant_id'], unique=False)

    event_types.seed(EVENT_TYPES)


def downgrade():
    event_types.unseed(EVENT_TYPES)
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_lines_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_invoice_lines_subscription_id'))
        batch_op.drop_index(batch_op.f('ix_invoice_lines_invoice_id'))

    op.drop_table('invoice_lines')
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_notes_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_credit_notes_invoice_id'))

    op.drop_table('credit_notes')
    with op.batch_alter_table('subscription_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscription_events_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_subscription_events_subscription_id'))
        batch_op.drop_index(batch_op.f('ix_subscription_events_occurred_at'))

    op.drop_table('subscription_events')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_invoices_subscription_id'))
        batch_op.drop_index(batch_op.f('ix_invoices_status'))
        batch_op.drop_index(batch_op.f('ix_invoices_finalize_after'))

    op.drop_table('invoices')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscriptions_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_subscriptions_status'))
        batch_op.drop_index(batch_op.f('ix_subscriptions_plan_id'))
        batch_op.drop_index(batch_op.f('ix_subscriptions_current_period_end'))

    op.drop_table('subscriptions')
    with op.batch_alter_table('billing_run_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_run_failures_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_billing_run_failures_subject_id'))

    op.drop_table('billing_run_failures')
    with op.batch_alter_table('billing_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_profiles_tenant_id'))

    op.drop_table('billing_profiles')
    op.drop_table('tax_rates')
    op.drop_table('document_sequences')
    op.drop_table('coupons')
