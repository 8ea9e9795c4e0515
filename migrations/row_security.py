"""Row-level security for migrations (PostgreSQL only; SQLite has none): the `tenantry_app` role that
tenant-bound transactions take, and the tenant policy of a table with a tenant_id column. A migration that
adds such a table calls enable(table) (tests/security/test_row_security.py fails until it does)."""

from __future__ import annotations

from alembic import op

ROLE = "tenantry_app"
TENANT = "coalesce(current_setting('tenantry.tenant_id', true), '')"
ALL_TENANTS = f"{TENANT} = ''"


def create_role() -> None:
    """The NOLOGIN role with table rights (no UPDATE or DELETE on the audit trail), granted to whoever runs
    the migrations (the app's user). A user who may not create roles leaves it to the DBA (a notice)."""
    op.execute(f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
            CREATE ROLE {ROLE} NOLOGIN;
          END IF;
        EXCEPTION WHEN duplicate_object THEN NULL;
                  WHEN insufficient_privilege THEN RAISE NOTICE 'create role {ROLE} as a superuser';
        END $$;
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
            EXECUTE format('GRANT {ROLE} TO %I', current_user);
            GRANT USAGE ON SCHEMA public TO {ROLE};
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE};
            GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {ROLE};
            ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {ROLE};
            ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {ROLE};
            REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {ROLE};
          END IF;
        EXCEPTION WHEN insufficient_privilege THEN RAISE NOTICE 'grant {ROLE} its rights as a superuser';
        END $$;
    """)


def enable(table: str, also: str = "") -> None:
    """The policy: rows of the transaction's tenant only, or every row while no tenant is set. `also` adds
    an alternative that makes more rows visible (e.g. a user's own memberships)."""
    visible = f"{ALL_TENANTS} OR tenant_id = {TENANT}" + (f" OR {also}" if also else "")
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({visible}) "
               f"WITH CHECK ({ALL_TENANTS} OR tenant_id = {TENANT} OR tenant_id IS NULL)")


def disable(table: str) -> None:
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
