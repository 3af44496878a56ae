"""Writing the training-set export's folder (built aside, then renamed into place by
:mod:`field_api.inspections.export`): images, YOLO labels, VOC annotations, the COCO files,
data.yaml, manifest.csv and summary.json.

Owns the photo entries the export collected (:class:`ExportPhoto`) and its summary
(:class:`ExportSummary`); the layout is described in :mod:`field_api.inspections.export`.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from field_api.common.storage import ObjectStore
from field_api.inspections.export_labels import (
    MANIFEST_FIELDS,
    Box,
    CardClasses,
    export_name,
    voc_xml,
    yolo_line,
)
from field_api.inspections.models import InspectionPhoto

SPLITS = ("train", "val")


@dataclass
class ExportPhoto:
    photo: InspectionPhoto
    store: ObjectStore
    sha256: str
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


def write_export(
    tmp: Path,
    out_dir: Path,
    photos: dict[str, ExportPhoto],
    splits: dict[str, str],
    card: CardClasses,
    summary: ExportSummary,
) -> None:
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
        for s in SPLITS
    }
    manifest: list[dict[str, Any]] = []
    for s in SPLITS:
        for sub in ("images", "labels", "annotations"):
            (tmp / s / sub).mkdir(parents=True, exist_ok=True)
    (tmp / "coco").mkdir()
    for p in sorted(photos.values(), key=lambda p: p.photo.id):
        if p.held_back:
            _hold_back(p, manifest, summary)
        else:
            _write_photo(tmp, p, splits[p.photo.id], coco, card, manifest, summary)
    _write_indexes(tmp, out_dir, coco, card, manifest, summary)


def _hold_back(p: ExportPhoto, manifest: list[dict[str, Any]], summary: ExportSummary) -> None:
    common = {"photo_id": p.photo.id, "photo_path": p.photo.path}
    summary.held_back.append({"photo_id": p.photo.id, "reason": "defect_awaiting_review"})
    for row in p.rows:
        held = {"use": "held_back"} if row["use"] == "box" else {}
        manifest.append({**common, **row, "export_file": "", "split": "", **held})


def _write_photo(
    tmp: Path,
    p: ExportPhoto,
    split: str,
    coco: dict[str, dict[str, Any]],
    card: CardClasses,
    manifest: list[dict[str, Any]],
    summary: ExportSummary,
) -> None:
    """One exported photo: image, YOLO labels, VOC annotation, COCO entries, manifest rows."""
    name = export_name(p.photo.batch_id, p.photo.path, p.photo.id, p.suffix)
    stem = Path(name).stem
    with p.store.open(p.sha256) as src, (tmp / split / "images" / name).open("wb") as dst:
        shutil.copyfileobj(src, dst)
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
    _list_rows(p, split, name, manifest, summary)


def _list_rows(
    p: ExportPhoto, split: str, name: str, manifest: list[dict[str, Any]], summary: ExportSummary
) -> None:
    """The manifest rows of an exported photo, counted into the summary."""
    common = {"photo_id": p.photo.id, "photo_path": p.photo.path}
    for row in p.rows:
        manifest.append({**common, **row, "export_file": f"{split}/images/{name}", "split": split})
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


def _write_indexes(
    tmp: Path,
    out_dir: Path,
    coco: dict[str, dict[str, Any]],
    card: CardClasses,
    manifest: list[dict[str, Any]],
    summary: ExportSummary,
) -> None:
    """The COCO files, data.yaml, the manifest and the summary."""
    for s in SPLITS:
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
