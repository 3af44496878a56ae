"""The orphan sweep: stored objects that no database row references, deleted after a grace.

An orphan is left by a process that died between storing a file and committing the row that
names it (a rollback removes its files itself: ``remove_on_rollback``). The sweep streams the
store's keys (:meth:`ObjectStore.list`: the local folder, or the bucket page by page; staging
folders are never listed), keeps those older than ``FIELDOPS_STORAGE_ORPHAN_GRACE_HOURS``
against :func:`field_api.common.clock.now`, asks the database in batches which of them a row
names, and deletes the rest. The grace is what keeps the file of a request still in flight.

:data:`STORED` is the one list of columns whose values are keys of stored objects (with where
each is written); :data:`NOT_STORED` lists the other ``*sha256*`` columns with the reason (a
test checks that every such column of the models is in one or the other).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Column, select
from sqlalchemy.orm import Session

from field_api.common import clock
from field_api.common.storage import ObjectInfo, ObjectStore, key_of
from field_api.db import Base

log = logging.getLogger(__name__)

BATCH = 500  # keys checked per IN query

#: ``table.column`` of every digest column that is NOT the key of a stored object, and why.
NOT_STORED: dict[str, str] = {
    "media_uploads.expected_sha256": "the client's claim for a tus upload; the item's sha256 "
    "is what is stored",
    "contracts.draft_sha256": "digest of the draft PDF, rendered on demand, never stored",
    "contracts.document_sha256": "digest of the unsigned document inside the signed file; the "
    "signed file (file_sha256) is what is stored",
    "inspection_batches.records_sha256": "digest of the batch's records file, read from the "
    "batch folder and not stored",
    "network_imports.sha256": "digest of the imported network file, which is not kept",
    "reliability_imports.sha256": "digest of the imported register or feeder-section CSV, "
    "which is not kept",
}


#: ``table.column`` of every column whose value is the key of a stored object, and where the
#: object is written: the sweep's referenced set.
STORED: dict[str, str] = {
    "media_items.sha256": "the evidence file (media.service: promote / put_bytes)",
    "media_items.thumbnail_sha256": "the photo's thumbnail (media.service: put_bytes)",
    "contracts.file_sha256": "the signed PDF (contracts.service.sign: put_bytes)",
    "contracts.signature_image_sha256": "the drawn signature, stored as a media item of the "
    "order (record_generated); listed so that it stays even apart from that item",
    "inspection_photos.id": "sha256 of the source photo's bytes, which are stored "
    "(the same as stored_sha256)",
    "inspection_photos.stored_sha256": "the source photo (inspections.importing: put_file)",
    "inspection_photos.thumbnail_sha256": "the photo's thumbnail (inspections.storage)",
    "findings.evidence_sha256": "the finding's crop (inspections.importing: put_file)",
    "repair_orders.evidence_sha256": "the finding's crop, copied onto the repair order",
    "repair_orders.before_photo_sha256": "the repair's photo (inspections.repairs: put_bytes)",
    "repair_orders.after_photo_sha256": "the repair's photo (inspections.repairs: put_bytes)",
}


def stored_columns() -> list[Column[Any]]:
    """Every column whose value names a stored object (the orphan sweep's referenced set).

    Read from the table metadata, which every entry point fills by importing all models
    (:func:`field_api.wiring.import_all_models`): this frame module imports no slice, so it stays
    below them in the import graph (field_api.maintenance and the job workers run it).
    """
    columns: list[Column[Any]] = []
    for qualified in STORED:
        table_name, column_name = qualified.split(".")
        table = Base.metadata.tables[table_name]  # a KeyError: the list is out of date
        columns.append(table.c[column_name])
    return columns


@dataclass(frozen=True)
class OrphanSweep:
    """What a sweep found: content objects listed, kept (referenced, or young) and orphans
    deleted (or, on a dry run, that would have been)."""

    listed: int = 0
    referenced: int = 0
    young: int = 0
    orphans: int = 0
    deleted: int = 0
    dry_run: bool = False


def _content_sha(info: ObjectInfo) -> str | None:
    """The sha256 an object's key stands for; None for a key that is not content's."""
    sha = info.key.rsplit("/", 1)[-1]
    try:
        return sha if key_of(sha) == info.key else None
    except ValueError:
        return None


def referenced(session: Session, shas: Iterable[str]) -> set[str]:
    """Those of ``shas`` (at most :data:`BATCH` at a time) that some row names."""
    wanted = sorted(set(shas))
    found: set[str] = set()
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start : start + BATCH]
        for col in stored_columns():
            query = select(col).where(col.in_(chunk)).distinct()
            found.update(str(v) for v in session.scalars(query))
    return found


def _batches(items: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def sweep_orphans(
    session: Session, store: ObjectStore, *, grace_hours: float, dry_run: bool = False
) -> OrphanSweep:
    """Delete stored objects no row references that are older than ``grace_hours``.

    Streams the store's listing (one page of keys at a time on a bucket) and checks them
    ``BATCH`` at a time. ``dry_run``: count, delete nothing. Logs counts only.
    """
    cutoff = clock.now() - timedelta(hours=grace_hours)
    counts = {"listed": 0, "young": 0, "referenced": 0, "orphans": 0, "deleted": 0}

    def old_keys() -> Iterator[str]:
        for info in store.list():
            sha = _content_sha(info)
            if sha is None:
                continue  # not a content key: never ours to delete
            counts["listed"] += 1
            if info.modified >= cutoff:
                counts["young"] += 1
                continue
            yield sha

    for batch in _batches(old_keys(), BATCH):
        known = referenced(session, batch)
        counts["referenced"] += len(known)
        for sha in batch:
            if sha in known:
                continue
            counts["orphans"] += 1
            if not dry_run:
                store.remove(sha)
                counts["deleted"] += 1
    result = OrphanSweep(**counts, dry_run=dry_run)
    log.info(
        "orphan sweep%s: %d listed, %d referenced, %d younger than %sh, %d orphans, %d deleted",
        " (dry run)" if dry_run else "",
        result.listed,
        result.referenced,
        result.young,
        grace_hours,
        result.orphans,
        result.deleted,
    )
    return result
