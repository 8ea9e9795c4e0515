"""Request log: every API request (time, method, route, status, latency, key, request id, IP), kept
for REQUEST_LOG_RETENTION_DAYS.

Revision ID: 0006_request_log
Revises: 0005_rate_limit_policies
Create Date: 2026-11-23 10:39:55.898076

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0006_request_log"
down_revision = "0005_rate_limit_policies"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('request_log',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=False),
    sa.Column('route', sa.String(length=200), nullable=False),
    sa.Column('path', sa.String(length=200), nullable=False),
    sa.Column('status', sa.SmallInteger(), nullable=False),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.Column('api_key_id', sa.String(length=40), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_request_log_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_log')),
    sa.UniqueConstraint('request_id', 'tenant_id', 'at', name=op.f('uq_request_log_request_id'))
    )
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.create_index('ix_request_log_at', ['at', 'id'], unique=False)
        batch_op.create_index('ix_request_log_tenant_at', ['tenant_id', 'at', 'id'], unique=False)
        batch_op.create_index('ix_request_log_tenant_key_at', ['tenant_id', 'api_key_id', 'at'], unique=False)
        batch_op.create_index('ix_request_log_tenant_route_at', ['tenant_id', 'route', 'at'], unique=False)
        batch_op.create_index('ix_request_log_tenant_status_at', ['tenant_id', 'status', 'at'], unique=False)


def downgrade():
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.drop_index('ix_request_log_tenant_status_at')
        batch_op.drop_index('ix_request_log_tenant_route_at')
        batch_op.drop_index('ix_request_log_tenant_key_at')
        batch_op.drop_index('ix_request_log_tenant_at')
        batch_op.drop_index('ix_request_log_at')
    op.drop_table('request_log')
