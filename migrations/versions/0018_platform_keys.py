"""Platform API keys (tnt_plat_…, for the staff API) and their idempotency keys; audit actor types up to
20 characters (platform_key).

Revision ID: 0018_platform_keys
Revises: 0015_two_factor
Create Date: 2026-11-23 17:45:00.000000

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

# revision identifiers, used by Alembic.
revision = '0018_platform_keys'
down_revision = '0015_two_factor'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('platform_api_keys',
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=20), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('scopes', JSON, nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('created_by_id', sa.String(length=40), nullable=True),
    sa.Column('revoked_by', sa.String(length=254), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_platform_api_keys_key_hash'))
    )
    op.create_table('platform_idempotency_keys',
    sa.Column('platform_key_id', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('route', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['platform_key_id'], ['platform_api_keys.id'],
                            name=op.f('fk_platform_idempotency_keys_platform_key_id_platform_api_keys')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_idempotency_keys')),
    sa.UniqueConstraint('platform_key_id', 'key', name=op.f('uq_platform_idempotency_keys_platform_key_id'))
    )
    with op.batch_alter_table('platform_idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_platform_idempotency_keys_created_at'), ['created_at'], unique=False)
    _actor_type_length(20, 10)


def downgrade():
    _actor_type_length(10, 20)
    with op.batch_alter_table('platform_idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_platform_idempotency_keys_created_at'))
    op.drop_table('platform_idempotency_keys')
    op.drop_table('platform_api_keys')


def _actor_type_length(new: int, old: int):
    """audit_events.actor_type as VARCHAR(new). PostgreSQL changes the type in place (the append-only
    trigger is about rows, not DDL); SQLite rebuilds the table, which drops its append-only triggers, so
    they are made again (as in 0001_foundation)."""
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column('audit_events', 'actor_type', existing_type=sa.String(length=old),
                        type_=sa.String(length=new), existing_nullable=False)
        return
    with op.batch_alter_table('audit_events', schema=None, recreate='always') as batch_op:
        batch_op.alter_column('actor_type', existing_type=sa.String(length=old), type_=sa.String(length=new),
                              existing_nullable=False)
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS audit_events_no_{verb.lower()}")
        op.execute(f"""
            CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events
            BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
        """)
