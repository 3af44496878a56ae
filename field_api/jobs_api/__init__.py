"""The job queue's HTTP face: the dead-letter list and its retry (admin)."""
