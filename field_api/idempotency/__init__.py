"""Idempotency-Key handling for state-changing requests."""
