"""Webhooks: event types that tenants define for the events they publish themselves (unique per tenant),
and recoveries (re-sending what failed to an endpoint, as a background job with progress).

Revision ID: 0009_tenant_event_types
Revises: 0008_webhooks
Create Date: 2026-11-23 13:39:51.583866

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0009_tenant_event_types'
down_revision = '0008_webhooks'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('webhook_tenant_event_types',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('example', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('deprecated', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_webhook_tenant_event_types_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_tenant_event_types')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_webhook_tenant_event_types_tenant_id'))
    )
    with op.batch_alter_table('webhook_tenant_event_types', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_tenant_event_types_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('webhook_recoveries',
    sa.Column('endpoint_id', sa.String(length=40), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('cursor', sa.String(length=40), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_webhook_recoveries_endpoint_id_webhook_endpoints')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_webhook_recoveries_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_recoveries'))
    )
    with op.batch_alter_table('webhook_recoveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_recoveries_endpoint', ['endpoint_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_recoveries_tenant_id'), ['tenant_id'], unique=False)



def downgrade():
    with op.batch_alter_table('webhook_recoveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_recoveries_tenant_id'))
        batch_op.drop_index('ix_webhook_recoveries_endpoint')

    op.drop_table('webhook_recoveries')
    with op.batch_alter_table('webhook_tenant_event_types', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_tenant_event_types_tenant_id'))

    op.drop_table('webhook_tenant_event_types')
