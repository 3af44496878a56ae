"""Evaluate a detector on a folder laid out as ``DIR/images/*.jpg`` + ``DIR/annotations/*.xml``.

The annotation of ``images/x.jpg`` is ``annotations/x.xml`` (Pascal VOC, read by
:func:`vision.train.voc.read_voc`). An image without an annotation file counts as an image without
objects and is listed under ``missing_annotations``; a photo that cannot be decoded is listed
under ``errors`` and not counted. Annotated classes the model does not know are ignored (and
counted). Figures are defined in :mod:`vision.train.metrics`.

Result (also what ``fieldops vision evaluate --json`` writes)::

    {"images": N,
     "classes": {"<name>": {"precision": p, "recall": r, "ap50": a, "ap50_95": b,
                            "tp": .., "fp": .., "fn": .., "image_recall": .. (defect only)}},
     "model": ..., "backend": ..., "conf_threshold": {...}, "errors": [...], ...}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vision.detect.images import IMAGE_SUFFIXES, ImageRecord, stream_images
from vision.errors import AnnotationError, DatasetLayoutError
from vision.train.metrics import DetectionEvaluator
from vision.train.voc import VocAnnotation, read_voc

if TYPE_CHECKING:
    from vision.detect.detections import Detections

#: Score floor used for evaluation: AP needs the low-score boxes too.
EVAL_SCORE_FLOOR = 0.001

DetectFn = Callable[[Sequence[Any]], "list[Detections]"]


def dataset_items(data_dir: Path) -> list[tuple[Path, Path | None]]:
    """List ``(image, annotation or None)`` pairs of a data folder, sorted by image name.

    Raises:
        DatasetLayoutError: no ``images/`` folder, or no images in it.
    """
    images_dir = data_dir / "images"
    if not images_dir.is_dir():
        raise DatasetLayoutError(
            f"{data_dir} has no images/ folder (expected images/ + annotations/)"
        )
    ann_dir = data_dir / "annotations"
    images = sorted(p for p in images_dir.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DatasetLayoutError(f"{images_dir} holds no images")
    items: list[tuple[Path, Path | None]] = []
    for image in images:
        ann = ann_dir / f"{image.stem}.xml"
        items.append((image, ann if ann.is_file() else None))
    return items


def _ground_truth(
    annotation: VocAnnotation | None, class_names: Sequence[str]
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.int64]], int]:
    if annotation is None:
        return np.zeros((0, 4)), np.zeros(0, dtype=np.int64), 0
    boxes, ids, ignored = [], [], 0
    for obj in annotation.objects:
        if obj.name in class_names:
            boxes.append(obj.xyxy)
            ids.append(class_names.index(obj.name))
        else:
            ignored += 1
    return (np.array(boxes, dtype=np.float64).reshape(-1, 4),
            np.array(ids, dtype=np.int64), ignored)


def evaluate_folder(
    detect: DetectFn,
    data_dir: Path,
    *,
    class_names: Sequence[str],
    conf_threshold: dict[int, float],
    batch_size: int = 8,
    on_image: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run ``detect`` over ``data_dir/images`` and score it against ``data_dir/annotations``.

    Args:
        detect: list of BGR images → list of Detections, reporting boxes down to a low score
            (e.g. a :class:`vision.detect.inference.Detector` built with ``score_floor=0.001``).
        data_dir: folder with ``images/`` and ``annotations/``.
        class_names: output class names by class id.
        conf_threshold: the threshold per class id used for TP/FP/FN, precision and recall.
        batch_size: photos per ``detect`` call.
        on_image: called once per photo processed (progress bars).

    Returns:
        The result structure described in the module docstring.

    Raises:
        DatasetLayoutError: the folder layout is wrong.
    """
    items = dataset_items(data_dir)
    annotations = dict(items)
    evaluator = DetectionEvaluator(class_names, conf_threshold)
    errors: list[dict[str, str]] = []
    ignored_objects = 0

    def flush(batch: list[ImageRecord]) -> None:
        nonlocal ignored_objects
        if not batch:
            return
        results = detect([r.image for r in batch])
        for record, dets in zip(batch, results, strict=True):
            ann_path = annotations[record.path]
            try:
                ann = read_voc(ann_path) if ann_path is not None else None
            except AnnotationError as exc:
                errors.append({"image": record.path.name, "error": str(exc)})
                continue
            gt_xyxy, gt_ids, ignored = _ground_truth(ann, class_names)
            ignored_objects += ignored
            evaluator.add_image(dets.xyxy, dets.confidence, dets.class_id,
                                gt_xyxy=gt_xyxy, gt_class_id=gt_ids)
        batch.clear()

    pending: list[ImageRecord] = []
    with stream_images([image for image, _ in items]) as stream:
        for record in stream:
            if on_image is not None:
                on_image()
            if not record.ok:
                errors.append({"image": record.path.name, "error": str(record.error)})
                continue
            pending.append(record)
            if len(pending) >= batch_size:
                flush(pending)
        flush(pending)
    return {
        "images": evaluator.images,
        "classes": evaluator.summary(),
        "conf_threshold": {class_names[i]: t for i, t in sorted(conf_threshold.items())},
        "iou_match": 0.5,
        "missing_annotations": sorted(img.name for img, ann in items if ann is None),
        "ignored_objects": ignored_objects,
        "errors": errors,
    }
