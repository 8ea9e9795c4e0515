"""Rate limiting: staff's overrides of a tenant's or key's limits, exemptions, violations by IP, and
each plan's limit of API requests in flight.

Revision ID: 0005_rate_limit_policies
Revises: 0004_usage_events
Create Date: 2026-11-23 10:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0005_rate_limit_policies"
down_revision = "0004_usage_events"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_concurrent_requests', sa.Integer(), nullable=True))

    op.create_table('rate_limit_overrides',
    sa.Column('api_key_id', sa.String(length=40), nullable=False),
    sa.Column('per_second', sa.Integer(), nullable=True),
    sa.Column('per_minute', sa.Integer(), nullable=True),
    sa.Column('per_day', sa.Integer(), nullable=True),
    sa.Column('minute_strategy', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_rate_limit_overrides_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_limit_overrides')),
    sa.UniqueConstraint('tenant_id', 'api_key_id', name=op.f('uq_rate_limit_overrides_tenant_id'))
    )
    with op.batch_alter_table('rate_limit_overrides', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limit_overrides_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('rate_limit_exemptions',
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=True),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_limit_exemptions')),
    sa.UniqueConstraint('kind', 'value', name=op.f('uq_rate_limit_exemptions_kind'))
    )
    with op.batch_alter_table('rate_limit_exemptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limit_exemptions_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('rate_limit_violations', schema=None) as batch_op:
        batch_op.alter_column('subject_id', existing_type=sa.String(length=40), type_=sa.String(length=64),
                              existing_nullable=False)


def downgrade():
    with op.batch_alter_table('rate_limit_violations', schema=None) as batch_op:
        batch_op.alter_column('subject_id', existing_type=sa.String(length=64), type_=sa.String(length=40),
                              existing_nullable=False)
    with op.batch_alter_table('rate_limit_exemptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limit_exemptions_tenant_id'))
    op.drop_table('rate_limit_exemptions')
    with op.batch_alter_table('rate_limit_overrides', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limit_overrides_tenant_id'))
    op.drop_table('rate_limit_overrides')
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('max_concurrent_requests')
