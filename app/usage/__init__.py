"""Usage: every API call metered in Redis on the request path, rolled up into the database exactly once."""
