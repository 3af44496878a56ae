"""Importing a batch's records (`fieldops vision run` output) into the database.

Owns :func:`import_batch` and its steps: the batch row, ledger lines, photos (stored in the
media store), ledger assets with their coverage sightings, findings and ledger-correction tasks.
Importing the same batch twice changes nothing; a newer run of a batch supersedes an older one
and an inspector's review is kept.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.auth import service as auth_service
from field_api.common import clock
from field_api.common.actors import Principal
from field_api.common.hashing import sha256_file
from field_api.common.storage import store_of
from field_api.config import Settings
from field_api.errors import ValidationFailed
from field_api.inspections import ledger, storage
from field_api.inspections.models import (
    Finding,
    InspectionBatch,
    InspectionPhoto,
    LedgerAsset,
    LedgerLine,
    LedgerTask,
)
from field_api.inspections.rules import FindingStatus, LedgerTaskStatus
from vision import records as rec

# Drone cameras write EXIF times without a zone; in China they are Beijing time (UTC+8).
CAMERA_ZONE = clock.CHINA_TZ

#: Asset statuses of a batch that mean a photo showed the asset.
_SEEN = ("inspected", "position_mismatch")


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=CAMERA_ZONE)


@dataclass
class ImportSummary:
    batch_id: str
    unchanged: bool = False
    created: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class _Import:
    """One import under way: the batch read from disk and where its rows go."""

    session: Session
    settings: Settings
    actor: Principal | None
    batch_dir: Path
    records_sha: str
    records: list[Any]
    batch_id: str
    produced_at: datetime
    summary: ImportSummary

    def of_kind(self, kind: str) -> list[Any]:
        return [r for r in self.records if r.kind == kind]

    def upsert(self, model: type[Any], key: str, values: dict[str, Any]) -> Any:
        return _upsert(self.session, self.summary, model, key, values, actor=self.actor)


def _district_id(session: Session, code: str | None) -> int | None:
    if not code:
        return None
    district = auth_service.get_district_by_code(session, code)
    return district.id if district else None


def _upsert(
    session: Session,
    summary: ImportSummary,
    model: type[Any],
    key: str,
    values: dict[str, Any],
    *,
    actor: Principal | None,
) -> Any:
    row = session.get(model, key)
    if row is None:
        row = model(id=key, **values)
        session.add(row)
        audit.record(session, actor=actor, action=f"{model.__tablename__}.import", entity=row)
        summary.created[model.__tablename__] += 1
        return row
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    if changed:
        for k, v in changed.items():
            setattr(row, k, v)
        audit.record(session, actor=actor, action=f"{model.__tablename__}.reimport", entity=row)
        summary.updated[model.__tablename__] += 1
    return row


def import_batch(
    session: Session,
    directory: Path,
    *,
    settings: Settings,
    actor: Principal | None,
    confined: bool = True,
) -> ImportSummary:
    """Import a batch's finding records; importing the same batch twice changes nothing.

    ``confined`` (the default, and always over HTTP): the batch folder and every photo its
    records name must lie under ``settings.vision.inspections_dir`` once resolved — ``..``, absolute
    paths elsewhere and symlinks leading out are refused (403) before anything is read. The
    operator's command line passes ``confined=False`` for a folder anywhere on the server.

    A record already imported from an older run of the batch is superseded by the newer one;
    an inspector's review is kept.
    """
    run = _read_batch(session, directory, settings=settings, actor=actor, confined=confined)
    batch = session.get(InspectionBatch, run.batch_id)
    if batch is not None and batch.records_sha256 == run.records_sha:
        run.summary.unchanged = True
        return run.summary
    if batch is not None and batch.produced_at > run.produced_at:
        raise ValidationFailed(
            f"batch {run.batch_id} was already imported from a newer run ({batch.produced_at})",
            code="inspection.batch_outdated",
            params={"batch_id": run.batch_id},
        )
    _import_batch_row(run)
    _import_lines(run)
    photos = _import_photos(run)
    seen_now = _import_assets(run, photos)
    _import_detections(run)
    _import_ledger_issues(run)
    resolved = ledger.resolve_seen(session, sorted(seen_now), run.batch_id, actor=actor)
    if resolved:
        run.summary.updated["ledger_tasks"] += resolved
    session.flush()
    return run.summary


def _read_batch(
    session: Session,
    directory: Path,
    *,
    settings: Settings,
    actor: Principal | None,
    confined: bool,
) -> _Import:
    """The batch folder's records, checked (folder, paths, one batch) before anything is written."""
    batch_dir = storage.resolve_batch_dir(settings, directory, confined=confined)
    records_path = batch_dir / storage.RECORDS_FILE
    records_sha = sha256_file(records_path)
    records = storage.load_records(records_path)
    if not records:
        raise ValidationFailed(f"{records_path} holds no records", code="inspection.batch_empty")
    if confined:  # every file the records name is checked before anything is written
        storage.check_photo_paths(settings, batch_dir, records)
    batch_id = records[0].batch_id
    if any(r.batch_id != batch_id for r in records):
        raise ValidationFailed(
            "records of several batches in one file",
            code="inspection.batch_mixed",
        )
    return _Import(
        session=session,
        settings=settings,
        actor=actor,
        batch_dir=batch_dir,
        records_sha=records_sha,
        records=records,
        batch_id=batch_id,
        produced_at=storage.produced_at(batch_dir),
        summary=ImportSummary(batch_id=batch_id),
    )


def _import_batch_row(run: _Import) -> None:
    counts: dict[str, int] = defaultdict(int)
    for r in run.records:
        counts[r.kind] += 1
    run.upsert(
        InspectionBatch,
        run.batch_id,
        {
            "source": str(run.batch_dir),
            "records_sha256": run.records_sha,
            "produced_at": run.produced_at,
            "imported_by": run.actor.user_id if run.actor else None,
            "counts": dict(counts),
            "model": storage.batch_model(run.batch_dir),
        },
    )
    run.session.flush()


def _import_lines(run: _Import) -> None:
    """The batch's ledger lines, and a line for every asset's line the ledger does not know."""
    session = run.session
    for line in run.of_kind("line"):
        run.upsert(
            LedgerLine,
            line.line_id,
            {"name": line.name, "district_id": _district_id(session, line.district)},
        )
    for asset in run.of_kind("asset"):
        if asset.line_id and session.get(LedgerLine, asset.line_id) is None:
            run.upsert(LedgerLine, asset.line_id, {"name": asset.line_id, "district_id": None})
    session.flush()


def _import_photos(run: _Import) -> dict[str, Any]:
    """The batch's photos (stored once, with a thumbnail made once per photo), by photo id."""
    photos = {r.photo_id: r for r in run.records if r.kind == "photo"}
    for photo in photos.values():
        source = Path(photo.path)
        source = source if source.is_absolute() else run.batch_dir / source
        existing_photo = run.session.get(InspectionPhoto, photo.photo_id)
        stored: str | None = None
        if source.is_file():
            stored = store_of(run.settings).put_file(source).sha256
        thumb = existing_photo.thumbnail_sha256 if existing_photo else None
        if stored is not None and thumb is None:
            thumb = storage.store_thumbnail(run.settings, source)  # made once per photo
        run.upsert(
            InspectionPhoto,
            photo.photo_id,
            {
                "batch_id": run.batch_id,
                "path": photo.path,
                "stored_sha256": stored,
                "thumbnail_sha256": thumb,
                "width_px": photo.width_px,
                "height_px": photo.height_px,
                "captured_at": _aware(photo.captured_at),
                "camera_lat": photo.camera.lat if photo.camera else None,
                "camera_lon": photo.camera.lon if photo.camera else None,
                "center_lat": photo.center.lat if photo.center else None,
                "center_lon": photo.center.lon if photo.center else None,
                "asset_id": photo.asset_id,
                "truncated": photo.truncated,
            },
        )
    run.session.flush()
    return photos


def _sightings(photos: dict[str, Any], assets: list[Any]) -> tuple[dict[str, datetime], set[str]]:
    """When each asset was last seen in this batch, and every asset a photo showed.

    Coverage: an asset is seen by every photo whose ground footprint holds it (the asset
    record's photos), not only by the photo it is the main subject of.
    """
    seen_at: dict[str, datetime] = {}
    seen_now: set[str] = set()
    captured = {pid: _aware(p.captured_at) for pid, p in photos.items()}
    for asset_id, pid in [
        *((p.asset_id, pid) for pid, p in photos.items() if p.asset_id),
        *((a.asset_id, pid) for a in assets if a.status in _SEEN for pid in a.photo_ids),
    ]:
        seen_now.add(asset_id)
        at = captured.get(pid)
        if at is not None:
            seen_at[asset_id] = max(at, seen_at.get(asset_id, at))
    return seen_at, seen_now


def _import_assets(run: _Import, photos: dict[str, Any]) -> set[str]:
    """The batch's ledger assets with their sightings; returns the assets a photo showed."""
    assets = run.of_kind("asset")
    seen_at, seen_now = _sightings(photos, assets)
    imported_at = clock.now()
    for asset in assets:
        if asset.status == "unregistered":
            continue  # not in the ledger until an inspector accepts the correction task
        existing = run.session.get(LedgerAsset, asset.asset_id)
        values: dict[str, Any] = {"name": asset.name, "line_id": asset.line_id}
        if existing is None:
            values.update(lat=asset.position.lat, lon=asset.position.lon, registered=True)
        last = seen_at.get(asset.asset_id)
        if last is not None and (
            existing is None or existing.last_seen_at is None or existing.last_seen_at < last
        ):
            values["last_seen_at"] = last
        if asset.asset_id in seen_now:
            values["last_seen_imported_at"] = imported_at
        run.upsert(LedgerAsset, asset.asset_id, values)
    return seen_now


def _import_detections(run: _Import) -> None:
    """The batch's detections as findings; a reviewed finding keeps the inspector's decision."""
    line_of_asset = {a.asset_id: a.line_id for a in run.of_kind("asset")}
    # Older records carry no model per detection: the batch's "<name>@<version>" stands in.
    batch_model = rec.model_parts(storage.batch_model(run.batch_dir))
    for det in run.of_kind("detection"):
        crop_sha: str | None = None
        if det.evidence_crop:
            crop = run.batch_dir / det.evidence_crop
            if crop.is_file():
                crop_sha = store_of(run.settings).put_file(crop).sha256
        values = {
            "batch_id": run.batch_id,
            "produced_at": run.produced_at,
            "photo_id": det.photo_id,
            "asset_id": det.asset_id,
            "line_id": line_of_asset.get(det.asset_id or ""),
            "class_name": det.class_name,
            "role": det.role,
            "confidence": det.confidence,
            "severity": det.severity,
            "x1": det.xyxy[0],
            "y1": det.xyxy[1],
            "x2": det.xyxy[2],
            "y2": det.xyxy[3],
            "ground_lat": det.ground.lat if det.ground else None,
            "ground_lon": det.ground.lon if det.ground else None,
            "evidence_sha256": crop_sha,
            "model": det.model if det.model else batch_model[0],
            "model_version": det.model_version if det.model else batch_model[1],
        }
        existing_finding = run.session.get(Finding, det.id)
        if existing_finding is not None and existing_finding.status != FindingStatus.proposed:
            # The inspector's decision stands; only evidence and position follow the newer run.
            for key in ("class_name", "severity", "x1", "y1", "x2", "y2"):
                values.pop(key)
        run.upsert(Finding, det.id, values)


def _import_ledger_issues(run: _Import) -> None:
    """The batch's ledger issues as ledger-correction tasks (one open per asset and kind)."""
    session = run.session
    for issue in run.of_kind("ledger_issue"):
        values = {
            "batch_id": run.batch_id,
            "kind": issue.issue,
            "asset_id": issue.asset_id,
            "line_id": issue.line_id,
            "lat": issue.position.lat,
            "lon": issue.position.lon,
            "observed_lat": issue.observed.lat if issue.observed else None,
            "observed_lon": issue.observed.lon if issue.observed else None,
            "offset_m": issue.offset_m,
            "sightings": issue.sightings,
            "photo_ids": list(issue.photo_ids),
            "detail": issue.detail,
        }
        key = issue.id
        if session.get(LedgerTask, key) is None:
            # One open task per asset and kind across batches and re-imports: a newer batch
            # refreshes the open task's evidence instead of adding another.
            open_task = session.execute(
                select(LedgerTask.id).where(
                    LedgerTask.asset_id == issue.asset_id,
                    LedgerTask.kind == issue.issue,
                    LedgerTask.status == LedgerTaskStatus.open,
                )
            ).scalar()
            key = open_task if open_task is not None else key
        run.upsert(LedgerTask, key, values)
        session.flush()
