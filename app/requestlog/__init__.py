"""The request log: every API request, searchable by its tenant and by staff."""
