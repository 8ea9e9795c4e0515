"""Billing: subscriptions, trials, plan changes with proration, coupons, tax, invoices, credit notes and
the billing run that closes periods."""
