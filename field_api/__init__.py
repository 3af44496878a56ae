"""field_api package."""
