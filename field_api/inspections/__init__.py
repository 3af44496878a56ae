"""Drone inspection findings: import, review, repair orders, ledger corrections, backlog."""
