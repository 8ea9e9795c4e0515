"""Staff background jobs with progress: bulk actions on tenants, exports and imports."""
