"""Staff jobs: bulk actions on tenants, exports and imports, with their progress, the rows they could not
handle, an import's file and an export's result (gzipped).

Revision ID: 0019_staff_jobs
Revises: 0018_platform_keys
Create Date: 2026-11-23 16:54:01.369291

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

revision = '0019_staff_jobs'
down_revision = '0018_platform_keys'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('staff_jobs',
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('params', JSON, nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('errors', JSON, nullable=False),
    sa.Column('summary', JSON, nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('source', sa.LargeBinary(), nullable=True),
    sa.Column('result', sa.LargeBinary(), nullable=True),
    sa.Column('result_name', sa.String(length=200), nullable=False),
    sa.Column('result_size', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.String(length=40), nullable=True),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_jobs'))
    )
    with op.batch_alter_table('staff_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_staff_jobs_created_at', ['created_at'], unique=False)



def downgrade():
    with op.batch_alter_table('staff_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_jobs_created_at')

    op.drop_table('staff_jobs')
