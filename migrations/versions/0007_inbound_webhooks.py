"""Inbound webhooks: provider events stored once by (provider, provider event id) with their processing
state, and the door's security counts per day, provider and outcome.

Revision ID: 0007_inbound_webhooks
Revises: 0006_request_log
Create Date: 2026-11-23 11:13:43.709836

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0007_inbound_webhooks"
down_revision = "0006_request_log"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('inbound_webhook_counts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_webhook_counts')),
    sa.UniqueConstraint('day', 'provider', 'kind', name=op.f('uq_inbound_webhook_counts_day'))
    )
    op.create_table('inbound_webhook_events',
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('provider_event_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=120), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_webhook_events')),
    sa.UniqueConstraint('provider', 'provider_event_id', name=op.f('uq_inbound_webhook_events_provider'))
    )
    with op.batch_alter_table('inbound_webhook_events', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_webhook_events_next_attempt_at', ['next_attempt_at'], unique=False)
        batch_op.create_index('ix_inbound_webhook_events_provider_received', ['provider', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_webhook_events_type'), ['type'], unique=False)



def downgrade():
    with op.batch_alter_table('inbound_webhook_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_webhook_events_type'))
        batch_op.drop_index('ix_inbound_webhook_events_provider_received')
        batch_op.drop_index('ix_inbound_webhook_events_next_attempt_at')

    op.drop_table('inbound_webhook_events')
    op.drop_table('inbound_webhook_counts')
