"""Detections: invariants, selection, merging, NMS and export."""

from __future__ import annotations

import numpy as np
import pytest

from vision.detect.detections import Detections, box_iou, nms_indices


def make_dets(
    boxes: list[list[float]],
    conf: list[float] | None = None,
    cls: list[int] | None = None,
) -> Detections:
    n = len(boxes)
    return Detections(
        xyxy=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=conf if conf is not None else [0.5] * n,
        class_id=cls if cls is not None else [0] * n,
        severity=[3 if c == 1 else 0 for c in (cls or [0] * n)],
    )


def test_columns_are_normalised_to_the_documented_dtypes() -> None:
    d = make_dets([[0, 0, 10, 20]], [0.5], [1])
    assert d.xyxy.dtype == np.float32 and d.xyxy.shape == (1, 4)
    assert d.confidence.dtype == np.float32
    assert d.class_id.dtype == np.int64
    assert d.severity.dtype == np.int16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"xyxy": [[0, 0, 1]], "confidence": [0.5], "class_id": [0], "severity": [0]}, "shape"),
        ({"xyxy": [[0, 0, 1, 1]], "confidence": [0.5, 0.6], "class_id": [0], "severity": [0]},
         "confidence"),
        ({"xyxy": [[0, 0, 1, 1]], "confidence": [0.5], "class_id": [0, 1], "severity": [0]},
         "class_id"),
        ({"xyxy": [[5, 0, 1, 1]], "confidence": [0.5], "class_id": [0], "severity": [0]},
         "x1 <= x2"),
        ({"xyxy": [[0, 5, 1, 1]], "confidence": [0.5], "class_id": [0], "severity": [0]},
         "y1 <= y2"),
        ({"xyxy": [[0, 0, np.nan, 1]], "confidence": [0.5], "class_id": [0], "severity": [0]},
         "NaN"),
        ({"xyxy": [[0, 0, 1, 1]], "confidence": [1.5], "class_id": [0], "severity": [0]},
         r"\[0, 1\]"),
        ({"xyxy": [[0, 0, 1, 1]], "confidence": [0.5], "class_id": [0], "severity": [0],
          "data": {"tile": np.zeros(2)}}, "rows"),
    ],
)
def test_invalid_columns_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Detections(**kwargs)  # type: ignore[arg-type]


def test_empty_has_zero_rows_and_well_shaped_columns() -> None:
    d = Detections.empty()
    assert len(d) == 0
    assert d.xyxy.shape == (0, 4)
    assert d.area.shape == (0,)
    assert d.centers.shape == (0, 2)


def test_indexing_by_int_slice_mask_and_index_array() -> None:
    d = make_dets([[0, 0, 1, 1], [0, 0, 2, 2], [0, 0, 3, 3]], [0.1, 0.2, 0.3], [0, 1, 0])
    assert d[1].confidence.tolist() == pytest.approx([0.2])
    assert d[-1].xyxy.tolist() == [[0, 0, 3, 3]]
    assert d[1:].class_id.tolist() == [1, 0]
    assert d[np.array([True, False, True])].confidence.tolist() == pytest.approx([0.1, 0.3])
    assert d[np.array([2, 0])].confidence.tolist() == pytest.approx([0.3, 0.1])
    assert len(d[np.array([], dtype=np.int64)]) == 0
    with pytest.raises(IndexError):
        d[3]
    with pytest.raises(IndexError):
        d[np.array([True, False])]


def test_data_columns_follow_selection() -> None:
    d = Detections(xyxy=[[0, 0, 1, 1], [0, 0, 2, 2]], confidence=[0.1, 0.9], class_id=[0, 0],
                   severity=[0, 0], data={"tile": np.array([7, 8])})
    assert d[d.confidence > 0.5].data["tile"].tolist() == [8]


def test_area_and_centers() -> None:
    d = make_dets([[0, 0, 10, 20], [10, 10, 14, 12]])
    assert d.area.tolist() == [200.0, 8.0]
    assert d.centers.tolist() == [[5.0, 10.0], [12.0, 11.0]]


def test_merge_concatenates_and_keeps_common_data_keys() -> None:
    a = Detections(xyxy=[[0, 0, 1, 1]], confidence=[0.5], class_id=[0], severity=[0],
                   data={"k": np.array([1]), "only_a": np.array([2])})
    b = Detections(xyxy=[[1, 1, 2, 2]], confidence=[0.6], class_id=[1], severity=[3],
                   data={"k": np.array([3])})
    m = Detections.merge([a, Detections.empty(), b])
    assert len(m) == 2
    assert m.class_id.tolist() == [0, 1]
    assert set(m.data) == {"k"}
    assert len(Detections.merge([])) == 0


def test_filter_by_class_and_confidence_per_class() -> None:
    d = make_dets([[0, 0, 1, 1]] * 4, [0.2, 0.4, 0.2, 0.4], [0, 0, 1, 1])
    assert d.filter(class_ids=[1]).confidence.tolist() == pytest.approx([0.2, 0.4])
    assert d.filter(min_confidence=0.3).class_id.tolist() == [0, 1]
    per_class = d.filter(min_confidence={0: 0.1, 1: 0.3})
    assert per_class.confidence.tolist() == pytest.approx([0.2, 0.4, 0.4])


def test_nms_is_class_aware_unless_told_otherwise() -> None:
    d = make_dets([[0, 0, 10, 10], [1, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]],
                  [0.9, 0.8, 0.7, 0.6], [0, 0, 1, 0])
    kept = d.with_nms(0.5)
    # the second class-0 box overlaps the first (IoU 0.9) and goes; the class-1 box stays
    assert kept.confidence.tolist() == pytest.approx([0.9, 0.7, 0.6])
    agnostic = d.with_nms(0.5, class_agnostic=True)
    assert agnostic.confidence.tolist() == pytest.approx([0.9, 0.6])


def test_nms_keeps_boxes_below_the_iou_threshold_and_respects_max_det() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], dtype=np.float32)  # IoU = 1/3
    assert nms_indices(boxes, [0.5, 0.9], 0.5).tolist() == [1, 0]
    assert nms_indices(boxes, [0.5, 0.9], 0.3).tolist() == [1]
    assert nms_indices(boxes, [0.5, 0.9], 0.5, max_det=1).tolist() == [1]
    assert nms_indices(np.zeros((0, 4)), [], 0.5).tolist() == []


def test_box_iou_known_values() -> None:
    iou = box_iou([[0, 0, 2, 2], [0, 0, 0, 0]], [[1, 0, 3, 2], [0, 0, 2, 2], [0, 0, 0, 0]])
    assert iou[0].tolist() == pytest.approx([1 / 3, 1.0, 0.0])
    assert iou[1].tolist() == [0.0, 0.0, 0.0]  # degenerate boxes: 0, not NaN


def test_shift_and_clip_map_crop_boxes_back_into_the_image() -> None:
    d = make_dets([[10, 20, 30, 40]]).shifted(100, 200)
    assert d.xyxy.tolist() == [[110, 220, 130, 240]]
    clipped = make_dets([[-5, -5, 50, 60]]).clipped(40, 30)
    assert clipped.xyxy.tolist() == [[0, 0, 40, 30]]


def test_rows_and_coco_results() -> None:
    d = make_dets([[10, 20, 30, 60]], [0.87654], [1])
    [row] = d.to_rows(["insulator", "defect"])
    assert row == {"xyxy": [10.0, 20.0, 30.0, 60.0], "class_id": 1, "class_name": "defect",
                   "confidence": 0.8765, "severity": 3}
    [coco] = d.to_coco_results(image_id=7)
    assert coco == {"image_id": 7, "category_id": 2, "bbox": [10.0, 20.0, 20.0, 40.0],
                    "score": 0.87654}
    assert d.to_coco_results(7, category_ids=[5, 9])[0]["category_id"] == 9


def test_equality_compares_columns() -> None:
    assert make_dets([[0, 0, 1, 1]]) == make_dets([[0, 0, 1, 1]])
    assert make_dets([[0, 0, 1, 1]]) != make_dets([[0, 0, 1, 2]])


def test_greedy_merging_joins_the_fragments_of_a_cut_object_into_the_best_box() -> None:
    dets = Detections(
        xyxy=[[0, 0, 100, 40], [90, 0, 160, 40], [300, 300, 320, 320], [95, 5, 150, 35]],
        confidence=[0.9, 0.6, 0.8, 0.7], class_id=[0, 0, 0, 1], severity=[0, 0, 0, 3],
    )
    merged = dets.with_greedy_merge(0.1)
    # the fragment (class 0) overlapping the best box joins it; the far box and the box of
    # another class stay; the best box keeps its score
    assert merged.xyxy.tolist() == [[0, 0, 160, 40], [300, 300, 320, 320], [95, 5, 150, 35]]
    assert merged.confidence.tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert merged.class_id.tolist() == [0, 0, 1]
    # below the threshold nothing merges
    assert len(dets.with_greedy_merge(0.9)) == 4
