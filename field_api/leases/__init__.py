"""Leases: claims on background work that survive a crash (a row with an owner and an expiry)."""
