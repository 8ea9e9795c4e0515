"""Payments: prepaid credits (grants and their ledger), payments, tenants' accounts at the provider (the card
on file), and the dunning state of invoices being collected.

Revision ID: 0011_payments
Revises: 0010_billing
Create Date: 2026-11-23 13:56:17.338918

"""
from alembic import op
import sqlalchemy as sa

from migrations import event_types


EVENT_TYPES = [  # as in app.webhooks.catalogue
    ("tenant.suspended", "The tenant was suspended: an invoice stayed unpaid after every payment retry.",
     {"tenant": {"id": "ten_01jd0000000000000000000000", "slug": "acme", "status": "suspended"},
      "reason": "Invoice INV-2026-000123 unpaid after every payment retry.",
      "invoice_id": "inv_01jd0000000000000000000000"}),
    ("tenant.resumed", "The tenant was resumed: the debt that suspended it was settled.",
     {"tenant": {"id": "ten_01jd0000000000000000000000", "slug": "acme", "status": "active"},
      "reason": "Invoice INV-2026-000123 settled.", "invoice_id": "inv_01jd0000000000000000000000"}),
]

# revision identifiers, used by Alembic.
revision = '0011_payments'
down_revision = '0010_billing'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('credit_grants',
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_grants_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_grants'))
    )
    with op.batch_alter_table('credit_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_grants_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_grants_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_credit_grants_tenant_open', ['tenant_id', 'currency', 'remaining'], unique=False)

    op.create_table('payment_accounts',
    sa.Column('provider', sa.String(length=10), nullable=False),
    sa.Column('customer_ref', sa.String(length=255), nullable=False),
    sa.Column('payment_method_ref', sa.String(length=255), nullable=True),
    sa.Column('card_brand', sa.String(length=20), nullable=False),
    sa.Column('card_last4', sa.String(length=4), nullable=False),
    sa.Column('card_exp', sa.String(length=7), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payment_accounts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_accounts')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_payment_accounts_tenant_id'))
    )
    with op.batch_alter_table('payment_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_accounts_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('invoice_collections',
    sa.Column('invoice_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('first_failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=False),
    sa.Column('suspended_tenant', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_collections_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_invoice_collections_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_collections')),
    sa.UniqueConstraint('invoice_id', name=op.f('uq_invoice_collections_invoice_id'))
    )
    with op.batch_alter_table('invoice_collections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_collections_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_collections_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_collections_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('payments',
    sa.Column('invoice_id', sa.String(length=40), nullable=True),
    sa.Column('purpose', sa.String(length=10), nullable=False),
    sa.Column('provider', sa.String(length=10), nullable=False),
    sa.Column('provider_ref', sa.String(length=255), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('failure_code', sa.String(length=100), nullable=False),
    sa.Column('failure_message', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_payments_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payments_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('provider', 'provider_ref', name=op.f('uq_payments_provider'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('wallet_transactions',
    sa.Column('grant_id', sa.String(length=40), nullable=False),
    sa.Column('invoice_id', sa.String(length=40), nullable=True),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['credit_grants.id'], name=op.f('fk_wallet_transactions_grant_id_credit_grants')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_wallet_transactions_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_wallet_transactions_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wallet_transactions'))
    )
    with op.batch_alter_table('wallet_transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wallet_transactions_grant_id'), ['grant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_wallet_transactions_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_wallet_transactions_tenant_id'), ['tenant_id'], unique=False)

    event_types.seed(EVENT_TYPES)


def downgrade():
    event_types.unseed(EVENT_TYPES)
    with op.batch_alter_table('wallet_transactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wallet_transactions_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_wallet_transactions_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_wallet_transactions_grant_id'))

    op.drop_table('wallet_transactions')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_payments_invoice_id'))

    op.drop_table('payments')
    with op.batch_alter_table('invoice_collections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_collections_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_invoice_collections_status'))
        batch_op.drop_index(batch_op.f('ix_invoice_collections_next_attempt_at'))

    op.drop_table('invoice_collections')
    with op.batch_alter_table('payment_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_accounts_tenant_id'))

    op.drop_table('payment_accounts')
    with op.batch_alter_table('credit_grants', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_grants_tenant_open')
        batch_op.drop_index(batch_op.f('ix_credit_grants_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_credit_grants_expires_at'))

    op.drop_table('credit_grants')
