"""What the training-set export writes for each finding, decided without the database.

Owns the model card's classes (:class:`CardClasses`, read by :func:`load_card_classes`), the use
of one finding (box, hard negative, refused, held back), box clipping, the train/val split, the
YOLO and Pascal VOC label formats and the exported file names. The export itself (what it reads
and the folder it writes) is :mod:`field_api.inspections.export`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

import yaml

from field_api.errors import ValidationFailed
from field_api.inspections.rules import FindingStatus

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


def current_model_name(models_dir: Path = DEFAULT_MODELS_DIR) -> str:
    """The model ``fieldops vision promote`` made current (``models/current.yaml``), else the
    bundled cplid-cascade; an unreadable file counts as none."""
    try:
        data = yaml.safe_load((models_dir / "current.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    name = data.get("current") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else "cplid-cascade"


def load_card_classes(model: str | None, models_dir: Path = DEFAULT_MODELS_DIR) -> CardClasses:
    """Read the classes of ``models/<model>/card.yaml`` (or of a card file or folder path);
    ``None``: the current model's (:func:`current_model_name`).

    Raises:
        ValidationFailed: no card there, or one without a usable class list.
    """
    model = model or current_model_name(models_dir)
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
    """A Pascal VOC annotation; corners are pixel edges as written (as vision.train.voc reads)."""
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
