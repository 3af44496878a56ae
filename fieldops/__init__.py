"""fieldops package."""
