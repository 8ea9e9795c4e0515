"""The staff API (/api/v1/admin/…): the console's figures, tenants, users and the audit trail for operator
automation, authenticated with platform keys (app.auth.platform_keys)."""
