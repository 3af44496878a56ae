"""The audit trail's HTTP face (``/audit/...``): verify the chain, list and write checkpoints.

The chain itself (:mod:`field_api.audit`) sits below every slice, auth included, because every
slice records into it; these endpoints check the caller's role, so they need auth and sit above
it (docs/architecture.md, "Layers").
"""
