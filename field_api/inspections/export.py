"""The retraining set: reviewed photos as a YOLO + COCO (+ Pascal VOC) dataset with a manifest.

Layout written under the export folder (built aside, then renamed into place)::

    data.yaml                      Ultralytics: path, train/val image folders, the card's names
    train/images/<name>.jpg        the stored photo, byte for byte
    train/labels/<name>.txt        YOLO boxes (class x_c y_c w h, normalised); empty: no object
    train/annotations/<name>.xml   Pascal VOC, what `fieldops vision train|evaluate` read
    val/...                        the same for the validation split
    coco/instances_train.json      COCO detection JSON per split (file_name relative to the
    coco/instances_val.json        export folder; category id = card class id + 1)
    manifest.csv                   one row per finding of an exported or held-back photo (BOM)
    summary.json                   counts, the card used, refused boxes and held-back photos

Which boxes an exported image carries (every object the model card knows, or it would teach the
detector that a real insulator is background):

- ``confirmed`` / ``corrected`` findings of any class the card knows;
- findings of a class whose card role is not ``defect`` (insulators, the asset markers that the
  review queue does not show by default) that are still ``proposed`` with a confidence at or
  above the card's threshold for the class;
- ``rejected`` findings are hard negatives: no box, the image is kept, the manifest lists them.

A photo is exported once an inspector decided at least one of its findings, and only while none
of its defect-role findings awaits review (a pending defect would be either an unverified box or
a missed object); such photos are listed as held back. Boxes are clipped to the image; a box
wholly outside it, or of a class the card does not know, is refused and listed with its reason.
Photos split into train/ and val/ by a hash of the photo id (one in five to val, stable as photos
are added), with at least one photo in each split when there are two or more.

Owns reading the decided findings and the split; the per-finding decisions and label formats
are :mod:`field_api.inspections.export_labels`, writing the folder
:mod:`field_api.inspections.export_writer`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.auth.models import User
from field_api.common.storage import store_of
from field_api.config import Settings
from field_api.errors import ValidationFailed
from field_api.inspections.export_labels import (
    Box,
    CardClasses,
    Use,
    box_use,
    clip_box,
    load_card_classes,
    split_model,
    split_of,
)
from field_api.inspections.export_writer import ExportPhoto, ExportSummary, write_export
from field_api.inspections.models import Finding, InspectionBatch, InspectionPhoto
from field_api.inspections.rules import FindingStatus


def _batch_model(batch: InspectionBatch | None) -> str | None:
    if batch is None:
        return None
    if batch.model:
        return batch.model
    state = Path(batch.source) / "batch.json"  # batches imported before the column existed
    try:
        value = json.loads(state.read_text(encoding="utf-8")).get("model")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _image_facts(path: Path) -> tuple[int, int, str] | None:
    """Width and height as a person sees the photo (EXIF orientation applied, as the detector
    and Ultralytics read it, so boxes and sizes share one frame) and the file suffix."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            fmt = (im.format or "JPEG").upper()
            if im.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated a quarter turn
                width, height = height, width
    except (OSError, UnidentifiedImageError):
        return None
    return width, height, {"PNG": ".png", "BMP": ".bmp"}.get(fmt, ".jpg")


def export_training_set(
    session: Session, out_dir: Path, *, settings: Settings, model: str | None = None
) -> ExportSummary:
    """Write the retraining set (YOLO + COCO + VOC, manifest, summary) checked against the card
    of ``model`` (a name under models/ or a card path; None: the current model, as
    ``fieldops vision promote`` recorded it); see the module docstring."""
    card = load_card_classes(model)
    return write_training_set(session, out_dir, settings=settings, card=card)


def write_training_set(
    session: Session, out_dir: Path, *, settings: Settings, card: CardClasses
) -> ExportSummary:
    """Write the retraining set described in the module docstring; return its summary.

    Raises:
        ValidationFailed: ``out_dir`` exists and is not empty (an export never mixes with an
            older one).
    """
    out_dir = out_dir.resolve()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ValidationFailed(
            f"{out_dir} exists and is not empty: export into a new folder",
            code="inspection.export_target_not_empty",
            params={"out_dir": str(out_dir)},
        )
    summary = ExportSummary(
        out_dir=str(out_dir), model=f"{card.name}@{card.version}", classes=list(card.names)
    )
    photos = _Collector(session, settings, card, summary).collect()
    splits = _assign_splits(photos)
    tmp = out_dir.with_name(f".{out_dir.name}.building")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_export(tmp, out_dir, photos, splits, card, summary)
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


# --- reading: the decided photos and what each of their findings becomes -------------------------


class _Collector:
    """The photos with a decided finding, each with its manifest rows and boxes."""

    def __init__(
        self, session: Session, settings: Settings, card: CardClasses, summary: ExportSummary
    ) -> None:
        self.session = session
        self.card = card
        self.summary = summary
        self.store = store_of(settings)
        self.photos: dict[str, ExportPhoto] = {}
        self.batch_models: dict[str, tuple[str, str]] = {}
        self.reviewers: dict[int, str] = {}

    def collect(self) -> dict[str, ExportPhoto]:
        decided = select(Finding.photo_id).where(
            Finding.status.in_(
                (FindingStatus.confirmed, FindingStatus.corrected, FindingStatus.rejected)
            )
        )
        findings = list(
            self.session.execute(
                select(Finding)
                .where(Finding.photo_id.in_(decided))
                .order_by(Finding.photo_id, Finding.id)
            ).scalars()
        )
        reviewer_ids = {f.reviewed_by for f in findings if f.reviewed_by}
        self.reviewers = {
            u.id: u.name
            for u in self.session.execute(select(User).where(User.id.in_(reviewer_ids))).scalars()
        }
        for f in findings:
            entry = self._photo(f.photo_id)
            if entry is not None:
                self._add_finding(entry, f)
        return self.photos

    def _photo(self, photo_id: str) -> ExportPhoto | None:
        """The photo's entry; None (listed as missing) when its stored image cannot be read."""
        if photo_id in self.photos:
            return self.photos[photo_id]
        photo = self.session.get(InspectionPhoto, photo_id)
        sha = photo.stored_sha256 if photo is not None else None
        facts = self._facts(sha) if sha is not None else None
        if photo is None or sha is None or facts is None:
            if photo_id not in self.summary.missing_photos:
                self.summary.missing_photos.append(photo_id)
            return None
        self.photos[photo_id] = ExportPhoto(photo, self.store, sha, *facts)
        return self.photos[photo_id]

    def _facts(self, sha256: str) -> tuple[int, int, str] | None:
        """Size and suffix of a stored photo (read from a local copy); None when missing."""
        try:
            with self.store.local_copy(sha256) as path:
                return _image_facts(path)
        except FileNotFoundError:
            return None

    def _model_of(self, batch_id: str) -> tuple[str, str]:
        if batch_id not in self.batch_models:
            self.batch_models[batch_id] = split_model(
                _batch_model(self.session.get(InspectionBatch, batch_id))
            )
        return self.batch_models[batch_id]

    def _add_finding(self, entry: ExportPhoto, f: Finding) -> None:
        use, reason = box_use(
            status=f.status, class_name=f.class_name, confidence=f.confidence, card=self.card
        )
        box: Box | None = (f.x1, f.y1, f.x2, f.y2)
        clipped = False
        if use == "box":
            box, clipped = clip_box((f.x1, f.y1, f.x2, f.y2), entry.width, entry.height)
            if box is None:
                use, reason = "refused", "outside_image"
        if use == "box" and box is not None:
            entry.boxes.append((f.class_name, box))
        if use == "held_back":
            entry.held_back = True
        entry.rows.append(self._row(f, use, reason, box, clipped))

    def _row(
        self, f: Finding, use: Use, reason: str, box: Box | None, clipped: bool
    ) -> dict[str, Any]:
        model_name, model_version = (
            (f.model, f.model_version or "") if f.model else self._model_of(f.batch_id)
        )
        return {
            "finding_id": f.id,
            "source_batch": f.batch_id,
            "class_name": f.class_name,
            "use": use,
            "reason": reason,
            "decision": f.status.value,
            "proposed_by_model": model_name,
            "model_version": model_version,
            "confidence": round(f.confidence, 4),
            "reviewer": self.reviewers.get(f.reviewed_by, "") if f.reviewed_by else "",
            "reviewed_at": f.reviewed_at.isoformat() if f.reviewed_at else "",
            "x1": round(box[0], 1) if box else "",
            "y1": round(box[1], 1) if box else "",
            "x2": round(box[2], 1) if box else "",
            "y2": round(box[3], 1) if box else "",
            "clipped": "yes" if clipped and box is not None else "",
        }


def _assign_splits(photos: dict[str, ExportPhoto]) -> dict[str, str]:
    """The split of each exported photo, with at least one in each when there are two or more."""
    exported = sorted((p for p in photos.values() if not p.held_back), key=lambda p: p.photo.id)
    splits: dict[str, str] = {p.photo.id: split_of(p.photo.id) for p in exported}
    if len(exported) >= 2:  # Ultralytics needs images in both splits
        ranked = sorted(exported, key=lambda p: hashlib.sha256(p.photo.id.encode()).hexdigest())
        if "val" not in splits.values():
            splits[ranked[0].photo.id] = "val"
        if "train" not in splits.values():
            splits[ranked[-1].photo.id] = "train"
    return splits
