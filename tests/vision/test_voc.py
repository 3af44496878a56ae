"""VOC and COCO to YOLO conversion: exact numbers on hand-made boxes, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from vision.errors import AnnotationError
from vision.train.voc import (
    coco_to_yolo_lines,
    parse_voc_xml,
    read_voc,
    voc_to_yolo_lines,
    xyxy_to_yolo,
    yolo_to_xyxy,
)

CLASSES = {"insulator": 0, "defect": 1}


def _voc(objects: str, width: int = 1152, height: int = 864) -> str:
    return (
        f"<annotation><filename>x.jpg</filename><size><width>{width}</width>"
        f"<height>{height}</height><depth>3</depth></size>{objects}</annotation>"
    )


def _obj(name: str, x1: float, y1: float, x2: float, y2: float, difficult: int = 0) -> str:
    return (
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>"
        f"<xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
    )


def _numbers(line: str) -> list[float]:
    return [float(v) for v in line.split()]


def test_voc_boxes_convert_exactly() -> None:
    ann = parse_voc_xml(
        _voc(_obj("insulator", 170, 372, 994, 552) + _obj("defect", 834, 490, 906, 538))
    )

    lines = voc_to_yolo_lines(ann, CLASSES)

    # insulator: centre (582, 462), size 824 x 180 in a 1152 x 864 image
    assert _numbers(lines[0]) == [0, 582 / 1152, 462 / 864, 824 / 1152, 180 / 864]
    # defect: centre (870, 514), size 72 x 48
    assert _numbers(lines[1]) == [1, 870 / 1152, 514 / 864, 72 / 1152, 48 / 864]


def test_yolo_numbers_read_back_to_the_same_pixels() -> None:
    box = (12.0, 7.0, 301.0, 222.0)
    line = voc_to_yolo_lines(parse_voc_xml(_voc(_obj("defect", *box), 640, 480)), CLASSES)[0]

    back = yolo_to_xyxy(tuple(_numbers(line)[1:]), (640, 480))  # type: ignore[arg-type]

    assert back == pytest.approx(box, abs=1e-9)


def test_box_crossing_the_image_edge_is_clipped() -> None:
    assert xyxy_to_yolo((-10, 0, 50, 100), (100, 100)) == (0.25, 0.5, 0.5, 1.0)


def test_unknown_class_is_an_error_unless_skipped() -> None:
    ann = parse_voc_xml(
        _voc(_obj("bird_nest", 1, 1, 9, 9) + _obj("defect", 10, 10, 20, 20), 100, 100)
    )

    with pytest.raises(AnnotationError, match="bird_nest"):
        voc_to_yolo_lines(ann, CLASSES)
    assert voc_to_yolo_lines(ann, {"defect": 0}, unknown="skip") == ["0 0.15 0.15 0.1 0.1"]


def test_negative_image_gives_no_lines() -> None:
    assert voc_to_yolo_lines(parse_voc_xml(_voc("")), CLASSES) == []


def test_real_image_size_overrides_the_declared_size() -> None:
    ann = parse_voc_xml(_voc(_obj("defect", 0, 0, 50, 50), width=0, height=0))

    assert voc_to_yolo_lines(ann, CLASSES, image_wh=(100, 200)) == ["1 0.25 0.125 0.5 0.25"]


def test_difficult_flag_is_read() -> None:
    ann = parse_voc_xml(_voc(_obj("defect", 1, 1, 5, 5, difficult=1)))

    assert ann.objects[0].difficult is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not xml", "not valid XML"),
        ("<foo/>", "expected <annotation>"),
        ("<annotation><filename>a</filename></annotation>", "missing <size>"),
        (_voc(_obj("defect", 10, 10, 5, 20)), "empty box"),
        (_voc(_obj("defect", "a", 1, 2, 3)), "not a number"),
        (_voc("<object><name>defect</name></object>"), "no <bndbox>"),
    ],
)
def test_malformed_voc_raises_annotation_error(text: str, message: str) -> None:
    with pytest.raises(AnnotationError, match=message):
        parse_voc_xml(text)


def test_read_voc_reports_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<annotation>", encoding="utf-8")

    with pytest.raises(AnnotationError, match=r"bad\.xml"):
        read_voc(bad)


def test_coco_boxes_convert_exactly_and_every_image_gets_an_entry() -> None:
    coco = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 1152, "height": 864},
            {"id": 2, "file_name": "empty.jpg", "width": 1152, "height": 864},
        ],
        "categories": [{"id": 7, "name": "insulator"}, {"id": 9, "name": "defect"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [170, 372, 824, 180]},
            {"id": 2, "image_id": 1, "category_id": 9, "bbox": [834, 490, 72, 48]},
        ],
    }

    out = coco_to_yolo_lines(coco, CLASSES)

    assert out["empty.jpg"] == []
    assert _numbers(out["a.jpg"][0]) == [0, 582 / 1152, 462 / 864, 824 / 1152, 180 / 864]
    assert _numbers(out["a.jpg"][1]) == [1, 870 / 1152, 514 / 864, 72 / 1152, 48 / 864]


@pytest.mark.parametrize(
    ("coco", "message"),
    [
        ({"images": []}, "not a COCO"),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
                "categories": [{"id": 1, "name": "defect"}],
                "annotations": [{"id": 1, "image_id": 5, "category_id": 1, "bbox": [0, 0, 1, 1]}],
            },
            "unknown image id 5",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
                "categories": [{"id": 1, "name": "defect"}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 1]}],
            },
            "empty bbox",
        ),
    ],
)
def test_malformed_coco_raises_annotation_error(coco: dict[str, object], message: str) -> None:
    with pytest.raises(AnnotationError, match=message):
        coco_to_yolo_lines(coco, CLASSES)
