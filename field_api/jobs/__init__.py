"""Jobs: one queue for all background work, written in the caller's transaction (an outbox)."""
