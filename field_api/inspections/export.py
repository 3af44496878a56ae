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
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

import yaml
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.auth.models import User
from field_api.config import Settings
from field_api.errors import ValidationFailed
from field_api.inspections.models import Finding, InspectionBatch, InspectionPhoto
from field_api.inspections.rules import FindingStatus
from field_api.media.service import store_of

#: The repository's bundled models folder (``models/`` beside the ``field_api`` package).
DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"
CARD_FILE = "card.yaml"
VAL_EVERY = 5
MANIFEST_FIELDS = (
    "export_file",
    "split",
    "photo_id",
    "source_batch",
    "photo_path",
    "finding_id",
    "class_name",
    "use",
    "reason",
    "decision",
    "proposed_by_model",
    "model_version",
    "confidence",
    "reviewer",
    "reviewed_at",
    "x1",
    "y1",
    "x2",
    "y2",
    "clipped",
)

Use = Literal["box", "hard_negative", "refused", "held_back", "not_used"]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class CardClasses:
    """What the export needs from a model card: classes in id order, roles, thresholds."""

    name: str
    version: int | str
    names: tuple[str, ...]
    roles: dict[str, str]
    thresholds: dict[str, float]


def load_card_classes(model: str, models_dir: Path = DEFAULT_MODELS_DIR) -> CardClasses:
    """Read the classes of ``models/<model>/card.yaml`` (or of a card file or folder path).

    Raises:
        ValidationFailed: no card there, or one without a usable class list.
    """
    candidates = [Path(model), Path(model) / CARD_FILE, models_dir / model / CARD_FILE]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        known = sorted(p.parent.name for p in models_dir.glob(f"*/{CARD_FILE}"))
        raise ValidationFailed(
            f"no model card for {model!r}; bundled models: {known}",
            code="inspection.export_card_missing",
            params={"model": model, "known": known},
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        classes = sorted(raw["classes"], key=lambda c: int(c["id"]))
        names = tuple(str(c["name"]) for c in classes)
        if [int(c["id"]) for c in classes] != list(range(len(names))) or not names:
            raise ValueError("class ids must run 0..n-1")
        thresholds = {str(k): float(v) for k, v in (raw.get("conf_threshold") or {}).items()}
        return CardClasses(
            name=str(raw.get("name", path.parent.name)),
            version=raw.get("version", ""),
            names=names,
            roles={str(c["name"]): str(c.get("role", "")) for c in classes},
            thresholds=thresholds,
        )
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ValidationFailed(
            f"model card {path} has no usable class list: {exc}",
            code="inspection.export_card_invalid",
            params={"path": str(path)},
        ) from exc


# --- pure decisions ------------------------------------------------------------------------------


def clip_box(box: Box, width: int, height: int) -> tuple[Box | None, bool]:
    """Clip ``box`` (x1, y1, x2, y2) to the image; None when nothing of it is inside.

    >>> clip_box((-10, 5, 50, 60), 40, 40)
    ((0.0, 5.0, 40.0, 40.0), True)
    >>> clip_box((50, 50, 60, 60), 40, 40)
    (None, True)
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    cx1, cy1 = min(max(x1, 0.0), float(width)), min(max(y1, 0.0), float(height))
    cx2, cy2 = min(max(x2, 0.0), float(width)), min(max(y2, 0.0), float(height))
    clipped = (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2)
    if cx2 - cx1 < 1.0 or cy2 - cy1 < 1.0:
        return None, True
    return (cx1, cy1, cx2, cy2), clipped


def box_use(
    *, status: FindingStatus, class_name: str, confidence: float, card: CardClasses
) -> tuple[Use, str]:
    """What the export does with one finding, and why (a short reason code)."""
    if status == FindingStatus.rejected:
        return "hard_negative", "rejected_false_alarm"
    if class_name not in card.names:
        return "refused", "unknown_class"
    if status in (FindingStatus.confirmed, FindingStatus.corrected):
        return "box", status.value
    if card.roles.get(class_name) == "defect":
        return "held_back", "defect_awaiting_review"
    threshold = card.thresholds.get(class_name)
    if threshold is not None and confidence >= threshold:
        return "box", "proposed_above_threshold"
    return "not_used", "proposed_below_threshold"


def split_of(photo_id: str) -> Literal["train", "val"]:
    """The photo's split: one in ``VAL_EVERY`` by a hash of its id (stable as photos are added)."""
    bucket = int(hashlib.sha256(photo_id.encode("utf-8")).hexdigest()[:8], 16) % VAL_EVERY
    return "val" if bucket == 0 else "train"


def yolo_line(class_id: int, box: Box, width: int, height: int) -> str:
    x1, y1, x2, y2 = box
    return (
        f"{class_id} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
        f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}\n"
    )


def voc_xml(filename: str, width: int, height: int, boxes: Sequence[tuple[str, Box]]) -> str:
    """A Pascal VOC annotation; corners are pixel edges as written (vision.voc's convention)."""
    objects = "".join(
        f"<object><name>{escape(name)}</name><difficult>0</difficult><bndbox>"
        f"<xmin>{x1:g}</xmin><ymin>{y1:g}</ymin><xmax>{x2:g}</xmax><ymax>{y2:g}</ymax>"
        "</bndbox></object>"
        for name, (x1, y1, x2, y2) in boxes
    )
    return (
        f"<annotation><filename>{escape(filename)}</filename><size><width>{width}</width>"
        f"<height>{height}</height><depth>3</depth></size>{objects}</annotation>\n"
    )


def export_name(batch_id: str, photo_path: str, photo_id: str, suffix: str) -> str:
    """A readable, unique file stem: batch, original file name, and a short photo hash."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(photo_path).stem).strip("._") or "photo"
    batch = re.sub(r"[^A-Za-z0-9_-]+", "_", batch_id)[:24]
    return f"{batch}_{stem[:60]}_{photo_id[:8]}{suffix}"


def split_model(model: str | None) -> tuple[str, str]:
    """``"cplid-cascade@4"`` → ``("cplid-cascade", "4")``; unknown → ``("", "")``."""
    if not model:
        return "", ""
    name, _, version = model.partition("@")
    return name, version


# --- the export ----------------------------------------------------------------------------------


@dataclass
class _Photo:
    photo: InspectionPhoto
    source: Path
    width: int
    height: int
    suffix: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    boxes: list[tuple[str, Box]] = field(default_factory=list)
    held_back: bool = False


@dataclass
class ExportSummary:
    out_dir: str
    model: str
    classes: list[str]
    images: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})
    boxes: dict[str, int] = field(default_factory=dict)
    hard_negatives: int = 0
    clipped: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)
    held_back: list[dict[str, str]] = field(default_factory=list)
    missing_photos: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir,
            "model": self.model,
            "classes": self.classes,
            "images": self.images,
            "boxes": self.boxes,
            "hard_negatives": self.hard_negatives,
            "clipped": self.clipped,
            "refused": self.refused,
            "held_back": self.held_back,
            "missing_photos": self.missing_photos,
        }


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
    decided = select(Finding.photo_id).where(
        Finding.status.in_(
            (FindingStatus.confirmed, FindingStatus.corrected, FindingStatus.rejected)
        )
    )
    findings = list(
        session.execute(
            select(Finding)
            .where(Finding.photo_id.in_(decided))
            .order_by(Finding.photo_id, Finding.id)
        ).scalars()
    )
    reviewers = {
        u.id: u.name
        for u in session.execute(
            select(User).where(User.id.in_({f.reviewed_by for f in findings if f.reviewed_by}))
        ).scalars()
    }
    batch_models: dict[str, tuple[str, str]] = {}
    photos: dict[str, _Photo] = {}
    store = store_of(settings)
    for f in findings:
        if f.photo_id not in photos:
            photo = session.get(InspectionPhoto, f.photo_id)
            source = store.path_of(photo.stored_sha256) if photo and photo.stored_sha256 else None
            facts = _image_facts(source) if source is not None and source.is_file() else None
            if photo is None or source is None or facts is None:
                if f.photo_id not in summary.missing_photos:
                    summary.missing_photos.append(f.photo_id)
                continue
            photos[f.photo_id] = _Photo(photo, source, *facts)
        entry = photos[f.photo_id]
        if f.batch_id not in batch_models:
            batch_models[f.batch_id] = split_model(
                _batch_model(session.get(InspectionBatch, f.batch_id))
            )
        model_name, model_version = batch_models[f.batch_id]
        use, reason = box_use(
            status=f.status, class_name=f.class_name, confidence=f.confidence, card=card
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
        entry.rows.append(
            {
                "finding_id": f.id,
                "source_batch": f.batch_id,
                "class_name": f.class_name,
                "use": use,
                "reason": reason,
                "decision": f.status.value,
                "proposed_by_model": model_name,
                "model_version": model_version,
                "confidence": round(f.confidence, 4),
                "reviewer": reviewers.get(f.reviewed_by, "") if f.reviewed_by else "",
                "reviewed_at": f.reviewed_at.isoformat() if f.reviewed_at else "",
                "x1": round(box[0], 1) if box else "",
                "y1": round(box[1], 1) if box else "",
                "x2": round(box[2], 1) if box else "",
                "y2": round(box[3], 1) if box else "",
                "clipped": "yes" if clipped and box is not None else "",
            }
        )

    exported = sorted((p for p in photos.values() if not p.held_back), key=lambda p: p.photo.id)
    splits = {p.photo.id: split_of(p.photo.id) for p in exported}
    if len(exported) >= 2:  # Ultralytics needs images in both splits
        ranked = sorted(exported, key=lambda p: hashlib.sha256(p.photo.id.encode()).hexdigest())
        if "val" not in splits.values():
            splits[ranked[0].photo.id] = "val"
        if "train" not in splits.values():
            splits[ranked[-1].photo.id] = "train"

    tmp = out_dir.with_name(f".{out_dir.name}.building")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        coco: dict[str, dict[str, Any]] = {
            s: {
                "info": {"description": f"fieldops retraining set, {summary.model}"},
                "images": [],
                "annotations": [],
                "categories": [
                    {"id": i + 1, "name": n, "supercategory": card.roles.get(n, "")}
                    for i, n in enumerate(card.names)
                ],
            }
            for s in ("train", "val")
        }
        manifest: list[dict[str, Any]] = []
        for s in ("train", "val"):
            for sub in ("images", "labels", "annotations"):
                (tmp / s / sub).mkdir(parents=True, exist_ok=True)
        (tmp / "coco").mkdir()
        for p in sorted(photos.values(), key=lambda p: p.photo.id):
            common = {"photo_id": p.photo.id, "photo_path": p.photo.path}
            if p.held_back:
                summary.held_back.append(
                    {"photo_id": p.photo.id, "reason": "defect_awaiting_review"}
                )
                for row in p.rows:
                    held = {"use": "held_back"} if row["use"] == "box" else {}
                    manifest.append({**common, **row, "export_file": "", "split": "", **held})
                continue
            split = splits[p.photo.id]
            name = export_name(p.photo.batch_id, p.photo.path, p.photo.id, p.suffix)
            stem = Path(name).stem
            shutil.copyfile(p.source, tmp / split / "images" / name)
            ids = {n: i for i, n in enumerate(card.names)}
            (tmp / split / "labels" / f"{stem}.txt").write_text(
                "".join(yolo_line(ids[c], b, p.width, p.height) for c, b in p.boxes),
                encoding="utf-8",
            )
            (tmp / split / "annotations" / f"{stem}.xml").write_text(
                voc_xml(name, p.width, p.height, p.boxes), encoding="utf-8"
            )
            image_id = len(coco[split]["images"]) + 1
            coco[split]["images"].append(
                {
                    "id": image_id,
                    "file_name": f"{split}/images/{name}",
                    "width": p.width,
                    "height": p.height,
                    "photo_id": p.photo.id,
                }
            )
            for c, (x1, y1, x2, y2) in p.boxes:
                coco[split]["annotations"].append(
                    {
                        "id": len(coco[split]["annotations"]) + 1,
                        "image_id": image_id,
                        "category_id": ids[c] + 1,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "area": (x2 - x1) * (y2 - y1),
                        "iscrowd": 0,
                    }
                )
                summary.boxes[c] = summary.boxes.get(c, 0) + 1
            summary.images[split] += 1
            for row in p.rows:
                manifest.append(
                    {**common, **row, "export_file": f"{split}/images/{name}", "split": split}
                )
                if row["use"] == "hard_negative":
                    summary.hard_negatives += 1
                elif row["use"] == "refused":
                    summary.refused.append(
                        {
                            "finding_id": row["finding_id"],
                            "photo_id": p.photo.id,
                            "class_name": row["class_name"],
                            "reason": row["reason"],
                        }
                    )
                elif row["use"] == "box" and row["clipped"]:
                    summary.clipped += 1
        for s in ("train", "val"):
            (tmp / "coco" / f"instances_{s}.json").write_text(
                json.dumps(coco[s], ensure_ascii=False, indent=1), encoding="utf-8"
            )
        (tmp / "data.yaml").write_text(
            yaml.safe_dump(
                {
                    "path": str(out_dir),
                    "train": "train/images",
                    "val": "val/images",
                    "nc": len(card.names),
                    "names": dict(enumerate(card.names)),
                },
                sort_keys=False,
                allow_unicode=True,
            ),
            encoding="utf-8",
        )
        with (tmp / "manifest.csv").open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
            writer.writeheader()
            writer.writerows(manifest)
        (tmp / "summary.json").write_text(
            json.dumps(summary.as_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
