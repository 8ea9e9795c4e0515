"""Feature flags: flags (type, default, kill switch, ordered rules, tags, owner, metadata, when changed and
last evaluated) and their scheduled changes; the flag.updated event type in the webhook catalogue.

Revision ID: 0014_flags
Revises: 0013_late_fees
Create Date: 2026-11-23 14:30:45.011560

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations import event_types

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

# revision identifiers, used by Alembic.
revision = '0014_flags'
down_revision = '0013_late_fees'
branch_labels = None
depends_on = None

EVENT_TYPES = [  # as in app.webhooks.catalogue
    ("flag.updated", "A feature flag changed in a way that changes what it serves you (value or variant).",
     {"key": "new-dashboard", "type": "boolean", "action": "updated", "value": True, "variant": "on",
      "reason": "TARGETING_MATCH", "previous": {"value": False, "variant": "default"}}),
]


def upgrade():
    op.create_table('flags',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=False),
    sa.Column('type', sa.String(length=10), nullable=False),
    sa.Column('default_value', JSON, nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('tags', JSON, nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('metadata', JSON, nullable=False),
    sa.Column('rules', JSON, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_evaluated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flags')),
    sa.UniqueConstraint('key', name=op.f('uq_flags_key'))
    )
    op.create_table('flag_schedules',
    sa.Column('flag_id', sa.String(length=40), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('payload', JSON, nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('canceled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['flag_id'], ['flags.id'], name=op.f('fk_flag_schedules_flag_id_flags'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flag_schedules'))
    )
    with op.batch_alter_table('flag_schedules', schema=None) as batch_op:
        batch_op.create_index('ix_flag_schedules_due', ['done_at', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_flag_schedules_flag_id'), ['flag_id'], unique=False)

    event_types.seed(EVENT_TYPES)


def downgrade():
    event_types.unseed(EVENT_TYPES)
    with op.batch_alter_table('flag_schedules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flag_schedules_flag_id'))
        batch_op.drop_index('ix_flag_schedules_due')

    op.drop_table('flag_schedules')
    op.drop_table('flags')
