"""Citizens' notifications and webhooks: the outbox, its channels and the worker that sends it."""
