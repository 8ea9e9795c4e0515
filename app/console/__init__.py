"""The operator console: the admin overview that composes the other features."""
