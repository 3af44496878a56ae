"""What several slices share: plain helpers with no slice of their own.

Nothing here imports a slice; every slice may import from here (the bottom layer of
docs/architecture.md).
"""
