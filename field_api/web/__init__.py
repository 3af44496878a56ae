"""Browser pages served by field_api: the crew PWA, the planner dashboard, shared styles."""
