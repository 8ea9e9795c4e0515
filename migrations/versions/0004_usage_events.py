"""Usage events: billable metrics, distinct values for unique_count, wider daily values.

Daily values become 64-bit (decimal metrics are kept as integers of 10^-decimals) and remember the
event time of the value a `latest` metric keeps.

Revision ID: 0004_usage_events
Revises: 0003
Create Date: 2026-11-23 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0004_usage_events"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('usage_metrics',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('aggregation', sa.String(length=16), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=True),
    sa.Column('decimals', sa.Integer(), nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_metrics')),
    sa.UniqueConstraint('code', name=op.f('uq_usage_metrics_code'))
    )

    op.create_table('usage_unique_values',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_usage_unique_values_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_unique_values')),
    sa.UniqueConstraint('tenant_id', 'metric', 'day', 'value', name=op.f('uq_usage_unique_values_tenant_id'))
    )
    with op.batch_alter_table('usage_unique_values', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usage_unique_values_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('usage_daily', schema=None) as batch_op:
        batch_op.alter_column('value', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)
        batch_op.add_column(sa.Column('observed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('usage_daily', schema=None) as batch_op:
        batch_op.drop_column('observed_at')
        batch_op.alter_column('value', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)

    with op.batch_alter_table('usage_unique_values', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_unique_values_tenant_id'))

    op.drop_table('usage_unique_values')
    op.drop_table('usage_metrics')
