"""Pascal VOC and COCO annotations to the YOLO label layout (pure, no I/O beyond reading).

Coordinate convention: VOC ``xmin ymin xmax ymax`` and COCO ``[x, y, w, h]`` are taken as pixel
edge coordinates in the image frame, exactly as written (no 1-based shift), so a box converted to
YOLO and back gives the same numbers, and evaluation (which reads the same VOC files through
:func:`read_voc`) compares against the same boxes the model was trained on.

A YOLO label line is ``class cx cy w h`` normalised by the image width and height.

Example:
    >>> ann = parse_voc_xml(
    ...     "<annotation><filename>a.jpg</filename><size><width>100</width>"
    ...     "<height>50</height></size><object><name>defect</name><bndbox><xmin>10</xmin>"
    ...     "<ymin>5</ymin><xmax>30</xmax><ymax>25</ymax></bndbox></object></annotation>"
    ... )
    >>> voc_to_yolo_lines(ann, {"defect": 0})
    ['0 0.2 0.3 0.2 0.4']
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET  # local annotation files; expat >= 2.4 blocks entity bombs
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vision.errors import AnnotationError

Unknown = Literal["error", "skip"]


@dataclass(frozen=True, slots=True)
class VocObject:
    """One annotated box: class name, ``xyxy`` in pixels, and VOC's ``difficult`` flag."""

    name: str
    xyxy: tuple[float, float, float, float]
    difficult: bool = False


@dataclass(frozen=True, slots=True)
class VocAnnotation:
    """All boxes of one image, with the image size the annotation declares."""

    filename: str
    width: int
    height: int
    objects: tuple[VocObject, ...]


def _text(node: ET.Element, tag: str, source: str) -> str:
    found = node.find(tag)
    if found is None or found.text is None or not found.text.strip():
        raise AnnotationError(f"{source}: missing <{tag}>")
    return found.text.strip()


def _number(node: ET.Element, tag: str, source: str) -> float:
    raw = _text(node, tag, source)
    try:
        value = float(raw)
    except ValueError as exc:
        raise AnnotationError(f"{source}: <{tag}> is not a number: {raw!r}") from exc
    if not math.isfinite(value):
        raise AnnotationError(f"{source}: <{tag}> is not finite: {raw!r}")
    return value


def parse_voc_xml(text: str, *, source: str = "<annotation>") -> VocAnnotation:
    """Parse one Pascal VOC XML document.

    Args:
        text: the XML text.
        source: name used in error messages (usually the file path).

    Returns:
        The annotation; boxes keep their pixel coordinates as written.

    Raises:
        AnnotationError: not XML, missing fields, non-numeric or inverted boxes.
    """
    try:
        root = ET.fromstring(text)  # noqa: S314 - annotation files of our own datasets
    except ET.ParseError as exc:
        raise AnnotationError(f"{source}: not valid XML: {exc}") from exc
    if root.tag != "annotation":
        raise AnnotationError(f"{source}: root element is <{root.tag}>, expected <annotation>")
    size = root.find("size")
    if size is None:
        raise AnnotationError(f"{source}: missing <size>")
    width = int(_number(size, "width", source))
    height = int(_number(size, "height", source))
    filename_node = root.find("filename")
    filename = (filename_node.text or "").strip() if filename_node is not None else ""
    objects: list[VocObject] = []
    for obj in root.iter("object"):
        name = _text(obj, "name", source)
        box = obj.find("bndbox")
        if box is None:
            raise AnnotationError(f"{source}: object {name!r} has no <bndbox>")
        x1, y1, x2, y2 = (_number(box, t, source) for t in ("xmin", "ymin", "xmax", "ymax"))
        if x2 <= x1 or y2 <= y1:
            raise AnnotationError(f"{source}: object {name!r} has an empty box {x1, y1, x2, y2}")
        difficult_node = obj.find("difficult")
        difficult = difficult_node is not None and (difficult_node.text or "").strip() == "1"
        objects.append(VocObject(name=name, xyxy=(x1, y1, x2, y2), difficult=difficult))
    return VocAnnotation(filename=filename, width=width, height=height, objects=tuple(objects))


def read_voc(path: Path) -> VocAnnotation:
    """Read and parse the VOC XML file at ``path`` (see :func:`parse_voc_xml`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read: {exc}") from exc
    return parse_voc_xml(text, source=str(path))


def xyxy_to_yolo(
    xyxy: tuple[float, float, float, float], image_wh: tuple[int, int]
) -> tuple[float, float, float, float]:
    """Return normalised ``(cx, cy, w, h)`` of a pixel box, clipped to the image first.

    Raises:
        AnnotationError: the box lies entirely outside the image or the image size is not positive.
    """
    img_w, img_h = image_wh
    if img_w <= 0 or img_h <= 0:
        raise AnnotationError(f"image size must be positive, got {image_wh}")
    x1, y1, x2, y2 = xyxy
    x1, x2 = max(0.0, x1), min(float(img_w), x2)
    y1, y2 = max(0.0, y1), min(float(img_h), y2)
    if x2 <= x1 or y2 <= y1:
        raise AnnotationError(f"box {xyxy} lies outside the {img_w}x{img_h} image")
    return ((x1 + x2) / 2 / img_w, (y1 + y2) / 2 / img_h, (x2 - x1) / img_w, (y2 - y1) / img_h)


def yolo_to_xyxy(
    cxcywh: tuple[float, float, float, float], image_wh: tuple[int, int]
) -> tuple[float, float, float, float]:
    """Inverse of :func:`xyxy_to_yolo`: normalised ``(cx, cy, w, h)`` to pixel ``xyxy``."""
    cx, cy, w, h = cxcywh
    img_w, img_h = image_wh
    return (
        (cx - w / 2) * img_w,
        (cy - h / 2) * img_h,
        (cx + w / 2) * img_w,
        (cy + h / 2) * img_h,
    )


def format_yolo_line(class_id: int, cxcywh: tuple[float, float, float, float]) -> str:
    """Format one YOLO label line; ``repr``-short floats keep the numbers exact."""
    # ``repr`` of a float is the shortest string that reads back to the same double, so the
    # conversion loses nothing (fixed ``%.6f`` would move a 1152-px box by up to ~0.6 mpx).
    return " ".join([str(class_id), *(repr(float(v)) for v in cxcywh)])


def _class_id(name: str, class_map: Mapping[str, int], unknown: Unknown, source: str) -> int | None:
    if name in class_map:
        return class_map[name]
    if unknown == "skip":
        return None
    raise AnnotationError(f"{source}: class {name!r} is not in the class map {sorted(class_map)}")


def voc_to_yolo_lines(
    annotation: VocAnnotation,
    class_map: Mapping[str, int],
    *,
    image_wh: tuple[int, int] | None = None,
    unknown: Unknown = "error",
) -> list[str]:
    """Convert one VOC annotation into YOLO label lines.

    Args:
        annotation: parsed VOC annotation.
        class_map: class name → YOLO class id (from the model card's stage classes).
        image_wh: the real image size; defaults to the size the annotation declares (pass the
            decoded size when annotations may disagree with the pixels).
        unknown: ``"error"`` raises on a class outside ``class_map``; ``"skip"`` leaves it out
            (e.g. the insulator stage of a cascade ignores ``defect`` boxes).

    Returns:
        One line per kept box, in annotation order (empty for a negative image).
    """
    wh = image_wh or (annotation.width, annotation.height)
    lines: list[str] = []
    for obj in annotation.objects:
        class_id = _class_id(obj.name, class_map, unknown, annotation.filename)
        if class_id is None:
            continue
        lines.append(format_yolo_line(class_id, xyxy_to_yolo(obj.xyxy, wh)))
    return lines


def coco_to_yolo_lines(
    coco: Mapping[str, Any],
    class_map: Mapping[str, int],
    *,
    unknown: Unknown = "error",
) -> dict[str, list[str]]:
    """Convert a COCO detection document into YOLO label lines per image file name.

    Args:
        coco: the parsed COCO JSON (``images``, ``annotations``, ``categories``).
        class_map: category name → YOLO class id.
        unknown: as in :func:`voc_to_yolo_lines`.

    Returns:
        ``{file_name: [lines]}``, with an entry (possibly empty) for every image.

    Raises:
        AnnotationError: missing keys, unknown image/category ids, bad boxes.
    """
    try:
        categories = {int(c["id"]): str(c["name"]) for c in coco["categories"]}
        images = {
            int(i["id"]): (str(i["file_name"]), (int(i["width"]), int(i["height"])))
            for i in coco["images"]
        }
        annotations = list(coco.get("annotations", []))
    except (KeyError, TypeError, ValueError) as exc:
        raise AnnotationError(f"not a COCO detection document: {exc!r}") from exc
    out: dict[str, list[str]] = {name: [] for name, _ in images.values()}
    for ann in annotations:
        try:
            image_id, category_id = int(ann["image_id"]), int(ann["category_id"])
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(f"malformed COCO annotation {ann!r}: {exc!r}") from exc
        if image_id not in images:
            raise AnnotationError(f"annotation refers to unknown image id {image_id}")
        if category_id not in categories:
            raise AnnotationError(f"annotation refers to unknown category id {category_id}")
        if w <= 0 or h <= 0:
            raise AnnotationError(f"annotation {ann.get('id')} has an empty bbox {ann['bbox']}")
        file_name, wh = images[image_id]
        class_id = _class_id(categories[category_id], class_map, unknown, file_name)
        if class_id is None:
            continue
        out[file_name].append(format_yolo_line(class_id, xyxy_to_yolo((x, y, x + w, y + h), wh)))
    return out
