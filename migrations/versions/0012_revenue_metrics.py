"""Revenue metrics: the pre-aggregated months (MRR, movements, customers, churn rates, retention, overage,
aging, collection) per currency, and each month's top tenants by MRR, filled by app.billing.metrics; and the
indexes the revenue page's bounded lists walk (renewals by status and period end, dunning by status and age).

Revision ID: 0012_revenue_metrics
Revises: 0011_payments
Create Date: 2026-11-23 14:13:27.090795

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_revenue_metrics'
down_revision = '0011_payments'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('revenue_months',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('mrr_start', sa.BigInteger(), nullable=False),
    sa.Column('mrr_end', sa.BigInteger(), nullable=False),
    sa.Column('arr', sa.BigInteger(), nullable=False),
    sa.Column('new_mrr', sa.BigInteger(), nullable=False),
    sa.Column('expansion_mrr', sa.BigInteger(), nullable=False),
    sa.Column('reactivation_mrr', sa.BigInteger(), nullable=False),
    sa.Column('contraction_mrr', sa.BigInteger(), nullable=False),
    sa.Column('churn_mrr', sa.BigInteger(), nullable=False),
    sa.Column('net_new_mrr', sa.BigInteger(), nullable=False),
    sa.Column('customers_start', sa.Integer(), nullable=False),
    sa.Column('customers_end', sa.Integer(), nullable=False),
    sa.Column('new_customers', sa.Integer(), nullable=False),
    sa.Column('reactivated_customers', sa.Integer(), nullable=False),
    sa.Column('churned_customers', sa.Integer(), nullable=False),
    sa.Column('arpa', sa.BigInteger(), nullable=False),
    sa.Column('customer_churn_rate', sa.Numeric(precision=12, scale=4), nullable=True),
    sa.Column('gross_mrr_churn_rate', sa.Numeric(precision=12, scale=4), nullable=True),
    sa.Column('net_mrr_churn_rate', sa.Numeric(precision=12, scale=4), nullable=True),
    sa.Column('net_revenue_retention', sa.Numeric(precision=12, scale=4), nullable=True),
    sa.Column('overage_revenue', sa.BigInteger(), nullable=False),
    sa.Column('aging_0_30', sa.BigInteger(), nullable=False),
    sa.Column('aging_31_60', sa.BigInteger(), nullable=False),
    sa.Column('aging_61_90', sa.BigInteger(), nullable=False),
    sa.Column('aging_90_plus', sa.BigInteger(), nullable=False),
    sa.Column('aging_as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('invoices_due', sa.Integer(), nullable=False),
    sa.Column('invoices_paid', sa.Integer(), nullable=False),
    sa.Column('collection_rate', sa.Numeric(precision=12, scale=4), nullable=True),
    sa.Column('first_attempts', sa.Integer(), nullable=False),
    sa.Column('first_attempt_successes', sa.Integer(), nullable=False),
    sa.Column('first_attempt_rate', sa.Numeric(precision=12, scale=4), nullable=True),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('month', 'currency', name=op.f('pk_revenue_months'))
    )
    op.create_table('revenue_top_tenants',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('rank', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('mrr', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_revenue_top_tenants_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('month', 'currency', 'rank', name=op.f('pk_revenue_top_tenants'))
    )
    with op.batch_alter_table('revenue_top_tenants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revenue_top_tenants_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('invoice_collections', schema=None) as batch_op:
        batch_op.create_index('ix_invoice_collections_status_first_failed_at', ['status', 'first_failed_at'], unique=False)

    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_subscriptions_status_current_period_end', ['status', 'current_period_end'], unique=False)


def downgrade():
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_subscriptions_status_current_period_end')

    with op.batch_alter_table('invoice_collections', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_collections_status_first_failed_at')

    with op.batch_alter_table('revenue_top_tenants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revenue_top_tenants_tenant_id'))

    op.drop_table('revenue_top_tenants')
    op.drop_table('revenue_months')
