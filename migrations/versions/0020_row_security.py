"""Row-level security on PostgreSQL: every table with a tenant_id gets the tenant policy (rows of the
transaction's tenant only, or all while none is set), and the tenantry_app role that tenant-bound
transactions take (table rights, none to change the audit trail). Nothing on SQLite.

Revision ID: 0020_row_security
Revises: 0019_staff_jobs
Create Date: 2026-11-23 17:40:00

"""
from alembic import op

from migrations import row_security

revision = '0020_row_security'
down_revision = '0019_staff_jobs'
branch_labels = None
depends_on = None

TENANT_TABLES = (
    'api_keys', 'audit_events', 'billing_profiles', 'billing_run_failures', 'credit_grants', 'credit_notes',
    'idempotency_keys', 'invitations', 'invoice_collections', 'invoice_lines', 'invoices', 'outbox_events',
    'payment_accounts', 'payments', 'rate_limit_blocks', 'rate_limit_exemptions', 'rate_limit_overrides',
    'rate_limit_violations', 'request_log', 'revenue_top_tenants', 'subscription_events', 'subscriptions',
    'tenant_tags', 'usage_daily', 'usage_hourly', 'usage_rollup_batches', 'usage_unique_values',
    'wallet_transactions', 'webhook_attempts', 'webhook_deliveries', 'webhook_endpoints', 'webhook_messages',
    'webhook_recoveries', 'webhook_tenant_event_types',
)


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    row_security.create_role()
    for table in TENANT_TABLES:
        row_security.enable(table)
    row_security.enable('memberships', also="user_id = current_setting('tenantry.user_id', true)")


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in (*TENANT_TABLES, 'memberships'):
        row_security.disable(table)
