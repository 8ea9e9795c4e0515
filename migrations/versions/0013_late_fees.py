"""Late fees: a plan's fixed late fee and late interest (a percentage of what a late invoice owes), and
when dunning charged one for an invoice (once per invoice).

Revision ID: 0013_late_fees
Revises: 0012_revenue_metrics
Create Date: 2026-11-23 14:23:19.022032

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_late_fees'
down_revision = '0012_revenue_metrics'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('invoice_collections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('late_fee_charged_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('late_fee', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('late_fee_percent', sa.Numeric(precision=5, scale=2), nullable=True))



def downgrade():
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('late_fee_percent')
        batch_op.drop_column('late_fee')

    with op.batch_alter_table('invoice_collections', schema=None) as batch_op:
        batch_op.drop_column('late_fee_charged_at')

