"""Low-voltage connection work orders and their stage machine."""
