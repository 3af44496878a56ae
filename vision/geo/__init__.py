"""Georeferencing and the asset ledger: photo metadata (EXIF/XMP), the camera model that puts
a box on the ground, the ledger of assets, reconciliation of findings with it, and the
report (CSV/GeoJSON/HTML/SVG) of a batch."""
