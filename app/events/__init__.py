"""Domain events: the transactional outbox that the webhooks feature fans out."""
