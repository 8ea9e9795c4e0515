"""Rate limiting on the API path: GCRA buckets per plan, checked in one Redis round trip."""
