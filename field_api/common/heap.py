"""The long-running processes' garbage-collector policy.

A server process imports a few hundred thousand long-lived objects (modules, classes, the ORM's
mappers, pydantic's validators, the routes) before it serves. CPython's full (generation 2)
collection walks all of them: measured on the 2-core reference machine, 240-390 ms per full
collection for the API process after ``create_app()`` — a pause of every request in flight in
that process, a few times a minute under load. :func:`freeze_startup_heap` moves what exists
once start-up is done into the permanent generation (``gc.freeze``, the documented way for
pre-fork and long-running servers), so later collections walk only what requests allocate
(a full collection then takes well under a millisecond). Nothing is leaked by it: frozen
objects are still freed when their reference count drops to zero; only cycles among them are
not collected, and start-up objects are meant to live as long as the process.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect once, then exclude every object alive now from later collections; returns how
    many objects are frozen in all."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
