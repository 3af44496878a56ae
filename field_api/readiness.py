"""Readiness of a running service: can it reach its database and its file store right now?

``GET /readyz`` (:mod:`field_api.main`) and ``fieldops doctor`` (:mod:`field_api.cli.doctor`)
ask the same two questions. Each check returns nothing or raises; :func:`checks` runs them
all and names each ``"ok"`` or ``"failed"`` (the reason goes to the log as its exception type
only: no path, address or secret leaves the process).

:func:`probe_store` is the one place that knows which file store the service uses
(:func:`field_api.common.storage.store_of`: the local folder, or an S3 bucket).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from field_api.common.storage import LocalStore, store_of, temp_name
from field_api.config import Settings

log = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed"


def probe_database(session_factory: sessionmaker[Session]) -> None:
    """``SELECT 1`` on the database; raises when it cannot be reached."""
    with session_factory() as session:
        session.execute(text("SELECT 1")).scalar_one()


def probe_store(settings: Settings) -> None:
    """Write, read back and delete a small probe object in the file store; raises on failure.

    The probe is a temporary file of the store named after this process (``.part``), so one
    left behind by a process killed mid-probe is removed by the store's temporary-file sweep;
    with a bucket, a probe object of random content is also put, read back and deleted there
    (uploads are received in the local folder on both backends).
    """
    store = store_of(settings)
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    path = store.tmp_dir / temp_name()
    payload = b"fieldops readiness probe " + secrets.token_hex(8).encode()
    try:
        path.write_bytes(payload)
        if path.read_bytes() != payload:
            raise OSError("the store read back other bytes than it was given")
    finally:
        path.unlink(missing_ok=True)
    if not isinstance(store, LocalStore):
        blob = store.put_bytes(payload)
        try:
            if store.read_bytes(blob.sha256) != payload:
                raise OSError("the bucket read back other bytes than it was given")
        finally:
            store.remove(blob.sha256)


def checks(settings: Settings, session_factory: sessionmaker[Session]) -> dict[str, str]:
    """``{"database": "ok"|"failed", "storage": "ok"|"failed"}``."""
    probes: dict[str, Callable[[], None]] = {
        "database": lambda: probe_database(session_factory),
        "storage": lambda: probe_store(settings),
    }
    result: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            probe()
        except Exception as exc:  # any failure means "not ready"; the type is logged
            log.warning("readiness: the %s check failed (%s)", name, type(exc).__name__)
            result[name] = FAILED
        else:
            result[name] = OK
    return result
