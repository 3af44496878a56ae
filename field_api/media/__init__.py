"""Crew evidence: photos, videos and meter barcodes with integrity checks."""
