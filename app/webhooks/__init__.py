"""Webhooks: inbound provider events (Stripe) and, later, outbound deliveries to tenants' endpoints."""
