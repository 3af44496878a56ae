"""Use cases of inspections: import a batch, review findings, repair orders, ledger tasks.

Photos and evidence crops go into the content-addressed media store (sha256 paths under the
media folder); rows keep their sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.auth import service as auth_service
from field_api.auth.models import Crew, District
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from field_api.inspections import export, rules
from field_api.inspections.models import (
    Finding,
    InspectionBatch,
    InspectionPhoto,
    LedgerAsset,
    LedgerLine,
    LedgerTask,
    LineDispatch,
    RepairOrder,
)
from field_api.inspections.rules import FindingStatus, LedgerTaskStatus, RepairStage
from field_api.media.analysis import make_thumbnail, sniff_file
from field_api.media.service import store_of
from vision import records as rec

RECORDS_FILE = "records.jsonl"
STATE_FILE = "batch.json"
# Drone cameras write EXIF times without a zone; in China they are Beijing time (UTC+8).
CAMERA_ZONE = clock.CHINA_TZ


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=CAMERA_ZONE)


# --- the content-addressed store (the media slice's) ------------------------------------------


def media_path(settings: Settings, sha256: str) -> Path:
    return store_of(settings).path_of(sha256)


def store_file(settings: Settings, source: Path) -> str:
    """Stream ``source`` into the media store (once per content) and return its sha256."""
    store = store_of(settings)
    temp = store.new_temp()
    try:
        with source.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                temp.write(chunk)
        temp.finish()
        return store.promote(temp.path, temp.sha256).sha256
    finally:
        temp.discard()


def media_type_of(path: Path) -> str:
    """The content type of a stored image, read from its bytes (a PNG is served as a PNG)."""
    try:
        return sniff_file(path).mime
    except (DomainError, OSError):
        return "application/octet-stream"


def store_bytes(settings: Settings, data: bytes) -> str:
    return store_of(settings).put_bytes(data).sha256


def store_thumbnail(settings: Settings, source: Path) -> str | None:
    """A listing thumbnail of a photo (EXIF orientation applied), stored once."""
    try:
        with Image.open(source) as im:
            thumb = make_thumbnail(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return store_bytes(settings, thumb)


# --- import --------------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    batch_id: str
    unchanged: bool = False
    created: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    updated: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _inside_inspections_dir(
    settings: Settings, path: Path, *, named: str, refuse_parent: bool = True
) -> Path:
    """``path`` resolved (symlinks followed); 403 when it leaves the inspections folder."""
    root = settings.inspections_dir.resolve()
    resolved = (root / path).resolve()  # an absolute ``path`` replaces ``root`` here
    if (refuse_parent and ".." in path.parts) or not resolved.is_relative_to(root):
        raise Forbidden(
            f"{named} {str(path)!r} is outside the inspections folder; give a folder under it "
            "(no '..', no absolute path elsewhere, no link leading out of it)",
            code="inspection.path_outside",
            params={"path": str(path)},
        )
    return resolved


def _resolve_batch_dir(settings: Settings, directory: Path, *, confined: bool = True) -> Path:
    if confined:
        path = _inside_inspections_dir(settings, directory, named="batch folder")
    else:
        path = directory if directory.is_absolute() else settings.inspections_dir / directory
        path = path.resolve()
    if not (path / RECORDS_FILE).is_file():
        raise ValidationFailed(
            f"{directory} holds no {RECORDS_FILE}: not a batch output folder",
            code="inspection.not_a_batch_folder",
            params={"records_file": RECORDS_FILE},
        )
    return path


def _produced_at(batch_dir: Path) -> datetime:
    state = batch_dir / STATE_FILE
    if state.is_file():
        try:
            data = json.loads(state.read_text(encoding="utf-8"))
            for key in ("finished_at", "updated_at", "started_at"):
                if isinstance(data.get(key), str):
                    value = datetime.fromisoformat(data[key])
                    return value if value.tzinfo else value.replace(tzinfo=UTC)
        except (ValueError, OSError):
            pass
    return datetime.fromtimestamp((batch_dir / RECORDS_FILE).stat().st_mtime, tz=UTC)


def _batch_model(batch_dir: Path) -> str | None:
    """The "<card name>@<version>" that `fieldops vision run` stamped in batch.json, if any."""
    try:
        value = json.loads((batch_dir / STATE_FILE).read_text(encoding="utf-8")).get("model")
    except (ValueError, OSError, AttributeError):
        return None
    return value[:200] if isinstance(value, str) else None


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _load_records(path: Path) -> list[Any]:
    try:
        return list(rec.read_jsonl(path))
    except rec.RecordError as exc:
        raise ValidationFailed(
            str(exc),
            code="inspection.records_invalid",
            params={"reason": str(exc)},
        ) from exc


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


#: Asset statuses of a batch that mean a photo showed the asset.
_SEEN = ("inspected", "position_mismatch")


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
    records name must lie under ``settings.inspections_dir`` once resolved — ``..``, absolute
    paths elsewhere and symlinks leading out are refused (403) before anything is read. The
    operator's command line passes ``confined=False`` for a folder anywhere on the server.

    A record already imported from an older run of the batch is superseded by the newer one;
    an inspector's review is kept.
    """
    batch_dir = _resolve_batch_dir(settings, directory, confined=confined)
    records_path = batch_dir / RECORDS_FILE
    records_sha = _sha256_of(records_path)
    records = _load_records(records_path)
    if not records:
        raise ValidationFailed(f"{records_path} holds no records", code="inspection.batch_empty")
    if confined:  # every file the records name is checked before anything is written
        for record in records:
            if record.kind == "photo":
                named = Path(record.path)
                _inside_inspections_dir(
                    settings,
                    named if named.is_absolute() else batch_dir / named,
                    named=f"photo {record.photo_id}",
                    refuse_parent=False,
                )
    batch_id = records[0].batch_id
    if any(r.batch_id != batch_id for r in records):
        raise ValidationFailed(
            "records of several batches in one file",
            code="inspection.batch_mixed",
        )
    produced_at = _produced_at(batch_dir)
    summary = ImportSummary(batch_id=batch_id)

    batch = session.get(InspectionBatch, batch_id)
    if batch is not None and batch.records_sha256 == records_sha:
        summary.unchanged = True
        return summary
    if batch is not None and batch.produced_at > produced_at:
        raise ValidationFailed(
            f"batch {batch_id} was already imported from a newer run ({batch.produced_at})",
            code="inspection.batch_outdated",
            params={"batch_id": batch_id},
        )
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        counts[r.kind] += 1
    batch = _upsert(
        session,
        summary,
        InspectionBatch,
        batch_id,
        {
            "source": str(batch_dir),
            "records_sha256": records_sha,
            "produced_at": produced_at,
            "imported_by": actor.user_id if actor else None,
            "counts": dict(counts),
            "model": _batch_model(batch_dir),
        },
        actor=actor,
    )
    session.flush()

    lines = [r for r in records if r.kind == "line"]
    for line in lines:
        _upsert(
            session,
            summary,
            LedgerLine,
            line.line_id,
            {"name": line.name, "district_id": _district_id(session, line.district)},
            actor=actor,
        )
    assets = [r for r in records if r.kind == "asset"]
    for asset in assets:
        if asset.line_id and session.get(LedgerLine, asset.line_id) is None:
            _upsert(
                session,
                summary,
                LedgerLine,
                asset.line_id,
                {"name": asset.line_id, "district_id": None},
                actor=actor,
            )
    session.flush()

    photos = {r.photo_id: r for r in records if r.kind == "photo"}
    for photo in photos.values():
        source = Path(photo.path)
        source = source if source.is_absolute() else batch_dir / source
        existing_photo = session.get(InspectionPhoto, photo.photo_id)
        stored = store_file(settings, source) if source.is_file() else None
        thumb = existing_photo.thumbnail_sha256 if existing_photo else None
        if stored is not None and thumb is None:
            thumb = store_thumbnail(settings, source)  # made once per photo
        _upsert(
            session,
            summary,
            InspectionPhoto,
            photo.photo_id,
            {
                "batch_id": batch_id,
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
            },
            actor=actor,
        )
    session.flush()

    # Coverage: an asset is seen by every photo whose ground footprint holds it (the asset
    # record's photos), not only by the photo it is the main subject of.
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
    imported_at = clock.now()
    for asset in assets:
        if asset.status == "unregistered":
            continue  # not in the ledger until an inspector accepts the correction task
        existing = session.get(LedgerAsset, asset.asset_id)
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
        _upsert(session, summary, LedgerAsset, asset.asset_id, values, actor=actor)

    line_of_asset = {a.asset_id: a.line_id for a in assets}
    for det in (r for r in records if r.kind == "detection"):
        crop_sha = None
        if det.evidence_crop:
            crop = batch_dir / det.evidence_crop
            crop_sha = store_file(settings, crop) if crop.is_file() else None
        values = {
            "batch_id": batch_id,
            "produced_at": produced_at,
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
        }
        existing_finding = session.get(Finding, det.id)
        if existing_finding is not None and existing_finding.status != FindingStatus.proposed:
            # The inspector's decision stands; only evidence and position follow the newer run.
            for key in ("class_name", "severity", "x1", "y1", "x2", "y2"):
                values.pop(key)
        _upsert(session, summary, Finding, det.id, values, actor=actor)

    for issue in (r for r in records if r.kind == "ledger_issue"):
        values = {
            "batch_id": batch_id,
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
        _upsert(session, summary, LedgerTask, key, values, actor=actor)
        session.flush()
    _resolve_seen(session, summary, sorted(seen_now), batch_id, actor=actor)
    session.flush()
    return summary


def _resolve_seen(
    session: Session,
    summary: ImportSummary,
    seen: list[str],
    batch_id: str,
    *,
    actor: Principal | None,
) -> None:
    """Settle the open "uninspected" tasks of the assets a photo of this batch showed."""
    now = clock.now()
    for start in range(0, len(seen), 500):
        tasks = session.execute(
            select(LedgerTask)
            .where(
                LedgerTask.kind == "uninspected",
                LedgerTask.status == LedgerTaskStatus.open,
                LedgerTask.asset_id.in_(seen[start : start + 500]),
            )
            .order_by(LedgerTask.id)
        ).scalars()
        for task in tasks:
            task.status = LedgerTaskStatus.resolved
            task.decided_at = now
            task.detail = (task.detail + f" (seen in batch {batch_id})").strip()
            audit.record(session, actor=actor, action="ledger_task.resolved", entity=task)
            summary.updated["ledger_tasks"] += 1


# --- findings and review -------------------------------------------------------------------------


def get_finding_or_raise(session: Session, finding_id: str) -> Finding:
    finding = session.get(Finding, finding_id)
    if finding is None:
        raise NotFound(
            f"finding {finding_id} not found",
            code="inspection.finding_not_found",
            params={"finding_id": finding_id},
        )
    return finding


def crop_for_actor(session: Session, finding_id: str, actor: Principal) -> Finding:
    """A finding whose evidence crop the actor may see.

    Inspectors, planners and admins see every crop; a crew only the crop of a finding that became
    its own repair order (another crew's is hidden: 404, as if it did not exist); other roles
    (storekeeper, service) read no inspection data at all (403, like the finding itself).
    """
    if actor.role == Role.crew:
        visible = {r.finding_id for r in list_repairs(session, actor)}
        if finding_id not in visible:
            raise NotFound(
                f"finding {finding_id} not found",
                code="inspection.finding_not_found",
                params={"finding_id": finding_id},
            )
    elif actor.role not in (Role.inspector, Role.planner, Role.admin):
        raise Forbidden(
            f"role {actor.role.value} may not read inspection findings",
            code="auth.role_forbidden",
            params={"role": actor.role.value, "allowed": ["admin", "crew", "inspector", "planner"]},
        )
    return get_finding_or_raise(session, finding_id)


def list_findings(
    session: Session,
    *,
    line_id: str | None = None,
    asset_id: str | None = None,
    class_name: str | None = None,
    min_severity: int | None = None,
    status: FindingStatus | None = None,
    include_insulators: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Finding], int]:
    """One page of findings, defects first (severity, then id), and how many match in all.

    By default the queue holds defects only (severity at least 1): the insulator boxes that
    locate a pole come on request (``include_insulators``) or when a class is asked for by name.
    """
    query = select(Finding)
    if line_id is not None:
        query = query.where(Finding.line_id == line_id)
    if asset_id is not None:
        query = query.where(Finding.asset_id == asset_id)
    if class_name is not None:
        query = query.where(Finding.class_name == class_name)
    if min_severity is not None:
        query = query.where(Finding.severity >= min_severity)
    if not include_insulators and class_name is None:
        query = query.where(Finding.severity >= 1)
    if status is not None:
        query = query.where(Finding.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = query.order_by(Finding.severity.desc(), Finding.id).limit(limit).offset(offset)
    return list(session.execute(page).scalars()), total


def check_target(finding_id: str, named: str | None) -> None:
    """A decision may name its finding in the body too; naming another one is refused (409)."""
    if named is not None and named != finding_id:
        raise Conflict(
            f"the decision names finding {named} but was sent for {finding_id}",
            code="inspection.finding_mismatch",
            params={"finding_id": finding_id, "named": named},
        )


def _check_version(finding: Finding, shown: int | None) -> None:
    """A decision names the version of the finding it was shown; another one is refused."""
    if shown is not None and shown != finding.version:
        raise Conflict(
            f"finding {finding.id} changed since it was shown (version {shown}, now "
            f"{finding.version}); reload it and decide again",
            code="inspection.finding_stale",
            params={"finding_id": finding.id, "shown": shown, "version": finding.version},
        )


def review(
    session: Session,
    finding_id: str,
    *,
    decision: FindingStatus,
    actor: Principal,
    settings: Settings,
    class_name: str | None = None,
    severity: int | None = None,
    xyxy: tuple[float, float, float, float] | None = None,
    note: str | None = None,
    version: int | None = None,
) -> tuple[Finding, RepairOrder | None]:
    """Confirm, correct or reject a proposed finding; a serious defect gets a repair order.

    ``version``: the finding's version the inspector was shown; a stale one is refused (409).
    """
    finding = get_finding_or_raise(session, finding_id)
    _check_version(finding, version)
    problem = rules.review_problem(finding.status, decision)
    if problem:
        raise InvalidTransition(
            problem,
            code="inspection.review_refused",
            params={"status": finding.status.value, "decision": decision.value},
        )
    if decision == FindingStatus.corrected:
        if class_name is None and severity is None and xyxy is None:
            raise ValidationFailed(
                "a correction changes the class, the severity or the box",
                code="inspection.correction_empty",
            )
        if class_name is not None:
            finding.class_name = class_name
        if severity is not None:
            finding.severity = severity
        if xyxy is not None:
            x1, y1, x2, y2 = xyxy
            if not (x1 < x2 and y1 < y2):
                raise ValidationFailed(
                    "box must have x1 < x2 and y1 < y2",
                    code="inspection.box_invalid",
                )
            finding.x1, finding.y1, finding.x2, finding.y2 = xyxy
    elif class_name is not None or severity is not None or xyxy is not None:
        raise ValidationFailed(
            "only a correction changes class, severity or box",
            code="inspection.correction_only",
        )
    finding.status = decision
    finding.reviewed_by = actor.user_id
    finding.reviewed_at = clock.now()
    finding.review_note = note
    finding.version += 1
    audit.record(session, actor=actor, action=f"finding.{decision.value}", entity=finding)
    repair = None
    if rules.needs_repair(
        finding.status,
        finding.role,
        finding.severity,
        threshold=settings.repair_severity_threshold,
    ):
        repair = _create_repair_order(session, finding, actor=actor)
    return finding, repair


def _repair_crew(session: Session, district_id: int | None) -> Crew | None:
    """The district's default repair crew: its first crew that handles repairs."""
    if district_id is None:
        return None
    return (
        session.execute(
            select(Crew)
            .where(Crew.district_id == district_id, Crew.handles_repairs.is_(True))
            .order_by(Crew.id)
        )
        .scalars()
        .first()
    )


def dispatch_for(session: Session, line_id: str | None) -> tuple[int | None, Crew | None]:
    """District and repair crew of a ledger line (GroupIdentifier).

    The admins' dispatch table first (its crew, else its district's default repair crew), then
    the district the ledger gave the line, with that district's default repair crew.
    """
    if not line_id:
        return None, None
    mapping = session.get(LineDispatch, line_id)
    if mapping is not None:
        crew = session.get(Crew, mapping.crew_id) if mapping.crew_id is not None else None
        return mapping.district_id, crew or _repair_crew(session, mapping.district_id)
    line = session.get(LedgerLine, line_id)
    district_id = line.district_id if line else None
    return district_id, _repair_crew(session, district_id)


def _locate(session: Session, finding: Finding) -> tuple[float | None, float | None]:
    if finding.ground_lat is not None and finding.ground_lon is not None:
        return finding.ground_lat, finding.ground_lon
    asset = session.get(LedgerAsset, finding.asset_id) if finding.asset_id else None
    return (asset.lat, asset.lon) if asset else (None, None)


def _is_located(order: RepairOrder) -> bool:
    return order.asset_id is not None or (order.lat is not None and order.lon is not None)


def _fill_from_finding(session: Session, order: RepairOrder, finding: Finding) -> None:
    """Pole, line, place, district and (when located) crew of the order, from its finding."""
    asset = session.get(LedgerAsset, finding.asset_id) if finding.asset_id else None
    order.asset_id = finding.asset_id
    order.line_id = finding.line_id or (asset.line_id if asset else None)
    order.lat, order.lon = _locate(session, finding)
    district_id, crew = dispatch_for(session, order.line_id)
    order.district_id = district_id
    # a repair order without a pole or coordinates waits in the unassigned queue
    order.crew_id = crew.id if crew is not None and _is_located(order) else None
    order.dispatched_at = clock.now() if order.crew_id is not None else None
    order.dispatched_by = None


def _create_repair_order(session: Session, finding: Finding, *, actor: Principal) -> RepairOrder:
    from standard_kits import load_catalogue

    kit = load_catalogue().repair_kit_for(finding.class_name)
    order = session.execute(
        select(RepairOrder).where(RepairOrder.finding_id == finding.id)
    ).scalar_one_or_none()
    action = "repair_order.create"
    if order is None:
        order = RepairOrder(finding_id=finding.id)
        session.add(order)
    else:  # confirmed again after an undo: the cancelled order is reopened
        action = "repair_order.reopen"
        order.cancelled_at = None
    order.repair_kit_code = kit.code if kit else None
    order.evidence_sha256 = finding.evidence_sha256
    order.stage = RepairStage.assigned
    order.created_at = clock.now()
    _fill_from_finding(session, order, finding)
    audit.record(session, actor=actor, action=action, entity=order)
    return order


def _repair_of(session: Session, finding_id: str) -> RepairOrder | None:
    return session.execute(
        select(RepairOrder).where(RepairOrder.finding_id == finding_id)
    ).scalar_one_or_none()


def undo_review(
    session: Session, finding_id: str, *, actor: Principal, version: int | None = None
) -> tuple[Finding, RepairOrder | None]:
    """Undo a decision: the finding is proposed again and its repair order cancelled.

    Allowed until a crew has started the repair order (on site or later: 409).
    """
    finding = get_finding_or_raise(session, finding_id)
    _check_version(finding, version)
    repair = _repair_of(session, finding_id)
    live = repair if repair is not None and repair.stage != RepairStage.cancelled else None
    problem = rules.undo_problem(finding.status, live.stage if live else None)
    if problem:
        raise Conflict(
            problem,
            code="inspection.undo_refused",
            params={
                "finding_id": finding_id,
                "status": finding.status.value,
                "stage": live.stage.value if live else "-",
            },
        )
    if live is not None:
        live.stage = RepairStage.cancelled
        live.cancelled_at = clock.now()
        audit.record(session, actor=actor, action="repair_order.cancel", entity=live)
    finding.status = FindingStatus.proposed
    finding.reviewed_by = None
    finding.reviewed_at = None
    finding.review_note = None
    finding.version += 1
    audit.record(session, actor=actor, action="finding.undo", entity=finding)
    return finding, live


def set_finding_asset(
    session: Session,
    finding_id: str,
    asset_id: str,
    *,
    actor: Principal,
    version: int | None = None,
) -> tuple[Finding, RepairOrder | None]:
    """The inspector picks the pole of a finding (one without a position, typically).

    The finding takes the pole and its line; a repair order not yet started follows it (pole,
    line, place, crew). A started one keeps its pole (409).
    """
    finding = get_finding_or_raise(session, finding_id)
    _check_version(finding, version)
    asset = session.get(LedgerAsset, asset_id)
    if asset is None or not asset.registered:
        raise NotFound(
            f"ledger asset {asset_id} not found",
            code="ledger.asset_not_found",
            params={"asset_id": asset_id},
        )
    repair = _repair_of(session, finding_id)
    if repair is not None and repair.stage not in (RepairStage.assigned, RepairStage.cancelled):
        raise Conflict(
            f"repair order {repair.id} is already {repair.stage.value}; its pole stays",
            code="repair.already_started",
            params={"repair_id": repair.id, "stage": repair.stage.value},
        )
    finding.asset_id = asset.id
    finding.line_id = asset.line_id
    finding.version += 1
    audit.record(session, actor=actor, action="finding.set_asset", entity=finding)
    if repair is not None and repair.stage == RepairStage.assigned:
        keep_crew = repair.crew_id if repair.dispatched_by is not None else None
        _fill_from_finding(session, repair, finding)
        if keep_crew is not None:  # a planner's assignment stands
            repair.crew_id = keep_crew
        audit.record(session, actor=actor, action="repair_order.relocate", entity=repair)
        return finding, repair
    return finding, None


# --- dispatch ------------------------------------------------------------------------------------


def list_line_dispatch(
    session: Session, *, limit: int = 100, offset: int = 0
) -> tuple[list[LineDispatch], int]:
    total = session.scalar(select(func.count()).select_from(LineDispatch)) or 0
    rows = session.execute(
        select(LineDispatch).order_by(LineDispatch.line_id).limit(limit).offset(offset)
    ).scalars()
    return list(rows), total


def _check_crew_for(session: Session, crew_id: int, district_id: int | None) -> Crew:
    crew = session.get(Crew, crew_id)
    if crew is None:
        raise NotFound(
            f"crew {crew_id} not found", code="repair.crew_not_found", params={"crew_id": crew_id}
        )
    if not crew.handles_repairs:
        raise ValidationFailed(
            f"crew {crew.code} does not handle repairs",
            code="repair.crew_not_repair",
            params={"crew": crew.code},
        )
    if district_id is not None and crew.district_id != district_id:
        raise ValidationFailed(
            f"crew {crew.code} works in another district",
            code="repair.crew_other_district",
            params={"crew": crew.code},
        )
    return crew


def put_line_dispatch(
    session: Session,
    line_id: str,
    *,
    district_id: int,
    crew_id: int | None,
    actor: Principal,
) -> LineDispatch:
    """Create or change the district and repair crew of a line (admin; audited)."""
    if session.get(District, district_id) is None:
        raise NotFound(
            f"district {district_id} not found",
            code="repair.district_not_found",
            params={"district_id": district_id},
        )
    if crew_id is not None:
        _check_crew_for(session, crew_id, district_id)
    row = session.get(LineDispatch, line_id)
    action = "line_dispatch.update"
    if row is None:
        row = LineDispatch(line_id=line_id)
        session.add(row)
        action = "line_dispatch.create"
    row.district_id = district_id
    row.crew_id = crew_id
    row.updated_at = clock.now()
    row.updated_by = actor.user_id
    audit.record(session, actor=actor, action=action, entity=row)
    return row


def delete_line_dispatch(session: Session, line_id: str, *, actor: Principal) -> None:
    row = session.get(LineDispatch, line_id)
    if row is None:
        raise NotFound(
            f"no dispatch rule for line {line_id}",
            code="repair.dispatch_not_found",
            params={"line_id": line_id},
        )
    session.delete(row)
    audit.record(session, actor=actor, action="line_dispatch.delete", entity=row, deleted=True)


def list_unassigned_repairs(
    session: Session, *, limit: int = 100, offset: int = 0
) -> tuple[list[RepairOrder], int]:
    """Open repair orders that no crew holds (oldest first)."""
    query = select(RepairOrder).where(
        RepairOrder.crew_id.is_(None), RepairOrder.stage == RepairStage.assigned
    )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(RepairOrder.id).limit(limit).offset(offset)).scalars()
    return list(rows), total


def assign_repair(
    session: Session, repair_id: int, crew_id: int, *, actor: Principal
) -> RepairOrder:
    """Assign or reassign a repair order not yet started to a repair crew (planner, admin)."""
    order = get_repair_for_actor(session, repair_id, actor)
    if order.stage != RepairStage.assigned:
        raise Conflict(
            f"repair order {repair_id} is {order.stage.value}: only an order not yet started "
            "changes crew",
            code="repair.already_started",
            params={"repair_id": repair_id, "stage": order.stage.value},
        )
    if not _is_located(order):
        raise Conflict(
            f"repair order {repair_id} has no pole and no coordinates: pick its pole first",
            code="repair.not_located",
            params={"repair_id": repair_id},
        )
    crew = _check_crew_for(session, crew_id, None)
    order.crew_id = crew.id
    if order.district_id is None:
        order.district_id = crew.district_id
    order.dispatched_at = clock.now()
    order.dispatched_by = actor.user_id
    audit.record(session, actor=actor, action="repair_order.assign", entity=order)
    return order


def dispatch_unassigned(session: Session, *, actor: Principal | None) -> dict[str, int]:
    """Give every open unassigned repair order the crew its line maps to (idempotent)."""
    counts = {"assigned": 0, "still_unassigned": 0, "not_located": 0}
    for order in session.execute(
        select(RepairOrder)
        .where(RepairOrder.crew_id.is_(None), RepairOrder.stage == RepairStage.assigned)
        .order_by(RepairOrder.id)
    ).scalars():
        finding = session.get(Finding, order.finding_id)
        line_id = order.line_id or (finding.line_id if finding else None)
        if line_id is None and order.asset_id:
            asset = session.get(LedgerAsset, order.asset_id)
            line_id = asset.line_id if asset else None
        if not _is_located(order):
            counts["not_located"] += 1
            continue
        district_id, crew = dispatch_for(session, line_id)
        if crew is None:
            counts["still_unassigned"] += 1
            continue
        order.line_id = line_id
        order.district_id = district_id
        order.crew_id = crew.id
        order.dispatched_at = clock.now()
        audit.record(session, actor=actor, action="repair_order.dispatch", entity=order)
        counts["assigned"] += 1
    session.flush()
    return counts


# --- repair orders -------------------------------------------------------------------------------


def get_repair_for_actor(session: Session, repair_id: int, actor: Principal) -> RepairOrder:
    order = session.get(RepairOrder, repair_id)
    if order is None:
        raise NotFound(
            f"repair order {repair_id} not found",
            code="repair.not_found",
            params={"repair_id": repair_id},
        )
    if actor.role == Role.crew and actor.crew_id != order.crew_id:
        raise Forbidden(
            f"repair order {repair_id} belongs to another crew",
            code="repair.other_crew",
            params={"repair_id": repair_id},
        )
    return order


def _repairs_query(actor: Principal, stage: RepairStage | None) -> Any:
    query = select(RepairOrder)
    if actor.role == Role.crew:
        query = query.where(
            RepairOrder.crew_id == actor.crew_id, RepairOrder.stage != RepairStage.cancelled
        )
    if stage is not None:
        query = query.where(RepairOrder.stage == stage)
    return query


def list_repairs(session: Session, actor: Principal) -> list[RepairOrder]:
    """Every repair order the actor sees (a crew: its own, cancelled ones left out)."""
    query = _repairs_query(actor, None).order_by(RepairOrder.id)
    return list(session.execute(query).scalars())


def page_repairs(
    session: Session,
    actor: Principal,
    *,
    stage: RepairStage | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[RepairOrder], int]:
    """One page of the repair orders the actor sees, and how many there are in all."""
    query = _repairs_query(actor, stage)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(RepairOrder.id).limit(limit).offset(offset)).scalars()
    return list(rows), total


def add_repair_photo(
    session: Session,
    repair_id: int,
    *,
    kind: str,
    data: bytes,
    actor: Principal,
    settings: Settings,
) -> RepairOrder:
    """Attach the before or after photo (JPEG or PNG, checked by its magic bytes).

    Only the repair crew the order is assigned to (or an admin) photographs its repair.
    """
    order = get_repair_for_actor(session, repair_id, actor)
    if actor.role not in (Role.crew, Role.admin):
        raise Forbidden(
            "the repair crew photographs its own repair",
            code="repair.progress_forbidden",
            params={"role": actor.role.value},
        )
    if kind not in ("before", "after"):
        raise ValidationFailed(
            "kind must be before or after",
            code="repair.photo_kind_invalid",
            params={"allowed": ["before", "after"]},
        )
    if order.stage in (RepairStage.verified, RepairStage.cancelled):
        raise Conflict(
            f"repair order {repair_id} is {order.stage.value}: its photos are kept as they are",
            code="repair.photos_locked",
            params={"repair_id": repair_id, "stage": order.stage.value},
        )
    if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")):
        raise ValidationFailed("a repair photo must be a JPEG or PNG", code="repair.photo_type")
    sha = store_bytes(settings, data)
    if kind == "before":
        order.before_photo_sha256 = sha
    else:
        order.after_photo_sha256 = sha
    audit.record(session, actor=actor, action=f"repair_order.photo_{kind}", entity=order)
    return order


def move_repair(
    session: Session, repair_id: int, target: RepairStage, *, actor: Principal
) -> RepairOrder:
    order = get_repair_for_actor(session, repair_id, actor)
    # who may move it is decided first: a role that may not never learns the stage rules' answer
    if actor.role not in (Role.crew, Role.inspector, Role.admin):
        raise Forbidden(
            f"role {actor.role.value} does not move repair orders",
            code="auth.role_forbidden",
            params={"role": actor.role.value, "allowed": ["admin", "crew", "inspector"]},
        )
    if target == RepairStage.verified and actor.role not in (Role.inspector, Role.admin):
        raise Forbidden(
            "an inspector verifies a repair",
            code="repair.verify_forbidden",
            params={"role": actor.role.value},
        )
    if target in (RepairStage.on_site, RepairStage.repaired) and actor.role not in (
        Role.crew,
        Role.admin,
    ):
        raise Forbidden(
            "the repair crew reports its own progress",
            code="repair.progress_forbidden",
            params={"role": actor.role.value},
        )
    problem = rules.repair_problem(order.stage, target)
    if problem:
        raise InvalidTransition(
            problem,
            code="repair.transition_refused",
            params={"repair_id": repair_id, "stage": order.stage.value, "target": target.value},
        )
    if target == RepairStage.repaired:
        missing = [
            k
            for k, v in (("before", order.before_photo_sha256), ("after", order.after_photo_sha256))
            if v is None
        ]
        if missing:
            raise ValidationFailed(
                f"photo evidence missing: {', '.join(missing)}",
                code="repair.photo_missing",
                params={"missing": missing},
            )
    now = clock.now()
    order.stage = target
    if target == RepairStage.on_site:
        order.on_site_at = now
    elif target == RepairStage.repaired:
        order.repaired_at = now
    elif target == RepairStage.verified:
        order.verified_at = now
    audit.record(session, actor=actor, action=f"repair_order.to_{target.value}", entity=order)
    return order


# --- ledger tasks --------------------------------------------------------------------------------


def list_ledger_tasks(
    session: Session,
    *,
    line_id: str | None = None,
    status: LedgerTaskStatus | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[LedgerTask], int]:
    """One page of ledger tasks (by line, kind, asset) and how many match in all."""
    from sqlalchemy import func

    query = select(LedgerTask)
    if line_id is not None:
        query = query.where(LedgerTask.line_id == line_id)
    if status is not None:
        query = query.where(LedgerTask.status == status)
    if kind is not None:
        query = query.where(LedgerTask.kind == kind)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    page = query.order_by(
        LedgerTask.line_id, LedgerTask.kind, LedgerTask.asset_id, LedgerTask.id
    ).limit(limit).offset(offset)
    return list(session.execute(page).scalars()), int(total)


def decide_ledger_task(
    session: Session, task_id: str, *, accept: bool, actor: Principal
) -> LedgerTask:
    """Accepting a task corrects the ledger (audited); dismissing leaves it as it is."""
    task = session.get(LedgerTask, task_id)
    if task is None:
        raise NotFound(
            f"ledger task {task_id} not found",
            code="ledger.task_not_found",
            params={"task_id": task_id},
        )
    if task.status != LedgerTaskStatus.open:
        raise InvalidTransition(
            f"ledger task already {task.status.value}",
            code="ledger.task_decided",
            params={"task_id": task_id, "status": task.status.value},
        )
    task.status = LedgerTaskStatus.accepted if accept else LedgerTaskStatus.dismissed
    task.decided_by = actor.user_id
    task.decided_at = clock.now()
    audit.record(session, actor=actor, action=f"ledger_task.{task.status.value}", entity=task)
    if accept:
        _apply_ledger_task(session, task, actor=actor)
    return task


def _apply_ledger_task(session: Session, task: LedgerTask, *, actor: Principal) -> None:
    asset = session.get(LedgerAsset, task.asset_id)
    if task.kind == "unregistered":
        lat = task.observed_lat if task.observed_lat is not None else task.lat
        lon = task.observed_lon if task.observed_lon is not None else task.lon
        if asset is None:
            asset = LedgerAsset(
                id=task.asset_id,
                name=task.asset_id,
                line_id=task.line_id,
                lat=lat,
                lon=lon,
                registered=True,
            )
            session.add(asset)
        else:
            asset.registered, asset.lat, asset.lon = True, lat, lon
    elif asset is None:
        raise NotFound(
            f"ledger asset {task.asset_id} not found",
            code="ledger.asset_not_found",
            params={"asset_id": task.asset_id},
        )
    elif task.kind == "position_mismatch":
        if task.observed_lat is None or task.observed_lon is None:
            raise ValidationFailed(
                "the task has no observed position",
                code="ledger.no_observed_position",
                params={"task_id": task.id},
            )
        asset.lat, asset.lon = task.observed_lat, task.observed_lon
    elif task.kind == "uninspected":
        # Accepted: the asset is not where the ledger says (removed in the field).
        asset.registered = False
    asset.updated_at = clock.now()
    audit.record(session, actor=actor, action=f"ledger_asset.correct_{task.kind}", entity=asset)


# --- planner views -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BacklogRow:
    line_id: str | None
    class_name: str
    severity: int
    open_findings: int
    oldest_age_days: float
    mean_age_days: float


def defect_backlog(session: Session, *, now: datetime | None = None) -> list[BacklogRow]:
    """Open defects (proposed, confirmed or corrected without a verified repair), with ages."""
    now = now or clock.now()
    verified = {
        fid
        for (fid,) in session.execute(
            select(RepairOrder.finding_id).where(RepairOrder.stage == RepairStage.verified)
        )
    }
    groups: dict[tuple[str | None, str, int], list[float]] = defaultdict(list)
    for f in session.execute(
        select(Finding).where(Finding.role == "defect", Finding.status != FindingStatus.rejected)
    ).scalars():
        if f.id in verified:
            continue
        age = (now - f.created_at).total_seconds() / 86400
        groups[(f.line_id, f.class_name, f.severity)].append(age)
    return [
        BacklogRow(line, cls, sev, len(ages), round(max(ages), 2), round(sum(ages) / len(ages), 2))
        for (line, cls, sev), ages in sorted(
            groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1], -kv[0][2])
        )
    ]


@dataclass(frozen=True)
class CoverageRow:
    line_id: str
    assets: int
    seen: int
    coverage: float


#: How coverage dates a sighting: the photo's capture (flight) time or the batch's import time.
COVERAGE_BASES = ("flight", "import")


def inspection_coverage(
    session: Session, *, days: int, basis: str = "flight", now: datetime | None = None
) -> list[CoverageRow]:
    """Share of each line's registered assets seen in a photo in the last ``days`` days.

    An asset is seen by every photo whose ground footprint holds it; ``basis`` dates the
    sighting by the flight (photo capture time) or by the import of its batch.
    """
    if basis not in COVERAGE_BASES:
        raise ValidationFailed(
            f"coverage basis {basis!r} is not one of {', '.join(COVERAGE_BASES)}",
            code="validation_failed",
        )
    since = (now or clock.now()) - timedelta(days=days)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for asset in session.execute(
        select(LedgerAsset).where(LedgerAsset.registered.is_(True))
    ).scalars():
        key = asset.line_id or "-"
        counts[key][0] += 1
        seen = asset.last_seen_at if basis == "flight" else asset.last_seen_imported_at
        if seen is not None and seen >= since:
            counts[key][1] += 1
    return [
        CoverageRow(line, total, seen, round(rules.coverage(seen, total), 4))
        for line, (total, seen) in sorted(counts.items())
    ]


@dataclass(frozen=True)
class LeadTimeRow:
    repair_id: int
    finding_id: str
    stage: str
    days_to_on_site: float | None
    days_to_repaired: float | None
    days_to_verified: float | None


def repair_lead_times(session: Session) -> list[LeadTimeRow]:
    def days(start: datetime, end: datetime | None) -> float | None:
        return None if end is None else round((end - start).total_seconds() / 86400, 3)

    return [
        LeadTimeRow(
            o.id,
            o.finding_id,
            o.stage.value,
            days(o.created_at, o.on_site_at),
            days(o.created_at, o.repaired_at),
            days(o.created_at, o.verified_at),
        )
        for o in session.execute(select(RepairOrder).order_by(RepairOrder.id)).scalars()
    ]


# --- training-set export -------------------------------------------------------------------------


def export_training_set(
    session: Session, out_dir: Path, *, settings: Settings, model: str = "cplid-cascade"
) -> export.ExportSummary:
    """Write the retraining set (YOLO + COCO + VOC, manifest, summary) checked against the card
    of ``model`` (a name under models/ or a card path); see :mod:`field_api.inspections.export`."""
    card = export.load_card_classes(model)
    return export.export_training_set(session, out_dir, settings=settings, card=card)
