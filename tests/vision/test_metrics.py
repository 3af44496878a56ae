"""Metrics on hand-made cases whose TP/FP/FN and AP were worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from vision.train.metrics import DetectionEvaluator, average_precision, match_predictions


def test_matching_is_greedy_by_score_and_one_to_one() -> None:
    gt = [[0, 0, 10, 10]]
    preds = [[0, 0, 10, 10], [0, 0, 10, 10]]
    # the higher score claims the box even though it comes second
    tp = match_predictions(preds, [0.3, 0.9], gt, [0.5])
    assert tp[:, 0].tolist() == [False, True]


def test_matching_prefers_the_best_overlapping_unclaimed_box() -> None:
    gt = [[0, 0, 10, 10], [2, 0, 12, 10]]
    tp = match_predictions([[2, 0, 12, 10], [0, 0, 10, 10]], [0.9, 0.8], gt, [0.5])
    assert tp[:, 0].tolist() == [True, True]


def test_iou_exactly_at_threshold_counts() -> None:
    # [0,0,10,10] vs [0,0,10,20]: IoU = 100 / 200 = 0.5
    assert match_predictions([[0, 0, 10, 20]], [0.9], [[0, 0, 10, 10]], [0.5])[0, 0]
    assert not match_predictions([[0, 0, 10, 21]], [0.9], [[0, 0, 10, 10]], [0.5])[0, 0]


def test_average_precision_101_point_interpolation() -> None:
    # sorted: T T F T F over 3 ground-truth boxes (see test_evaluator_counts_and_ap)
    ap = average_precision([True, True, False, True, False], [0.9, 0.8, 0.7, 0.6, 0.5], 3)
    assert ap == pytest.approx(92.5 / 101)
    assert average_precision([True], [0.9], 1) == 1.0
    assert average_precision([], [], 2) == 0.0
    assert np.isnan(average_precision([False], [0.9], 0))


def _two_image_case() -> DetectionEvaluator:
    ev = DetectionEvaluator(["insulator"], {0: 0.65})
    # image A: two boxes found (IoU 1 and 0.81), one false alarm
    ev.add_image([[0, 0, 10, 10], [21, 21, 30, 30], [50, 50, 60, 60]], [0.9, 0.8, 0.7],
                 [0, 0, 0], gt_xyxy=[[0, 0, 10, 10], [20, 20, 30, 30]], gt_class_id=[0, 0])
    # image B: found only below the threshold, plus a duplicate
    ev.add_image([[0, 0, 10, 10], [0, 0, 10, 10]], [0.6, 0.5], [0, 0],
                 gt_xyxy=[[0, 0, 10, 10]], gt_class_id=[0])
    return ev


def test_evaluator_counts_and_ap() -> None:
    s = _two_image_case().summary()["insulator"]
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 1)
    assert s["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["ap50"] == pytest.approx(92.5 / 101, abs=1e-4)
    # IoU 0.81 box is a TP for 7 of the 10 thresholds (0.50..0.80); at 0.85+ AP = 50.5 / 101
    assert s["ap50_95"] == pytest.approx((7 * 92.5 / 101 + 3 * 0.5) / 10, abs=1e-4)
    assert "image_recall" not in s


def test_image_recall_counts_images_whose_defect_was_matched() -> None:
    ev = DetectionEvaluator(["insulator", "defect"], {0: 0.25, 1: 0.3})
    ev.add_image([[100, 100, 150, 150]], [0.9], [1],
                 gt_xyxy=[[100, 100, 150, 150]], gt_class_id=[1])
    # a defect reported far from the real one does not find this image's defect
    ev.add_image([[0, 0, 20, 20]], [0.9], [1],
                 gt_xyxy=[[300, 300, 350, 350]], gt_class_id=[1])
    # an image without defects does not enter image-level recall
    ev.add_image([], [], [], gt_xyxy=[[0, 0, 500, 100]], gt_class_id=[0])
    d = ev.summary()["defect"]
    assert d["image_recall"] == 0.5
    assert d["images_with_class"] == 2
    assert (d["tp"], d["fp"], d["fn"]) == (1, 1, 1)
    ins = ev.summary()["insulator"]
    assert (ins["tp"], ins["fp"], ins["fn"]) == (0, 0, 1)
    assert ins["precision"] == 0.0 and ins["ap50"] == 0.0
    assert ev.images == 3


def test_classes_are_matched_separately() -> None:
    ev = DetectionEvaluator(["insulator", "defect"], {0: 0.25, 1: 0.25})
    ev.add_image([[0, 0, 10, 10]], [0.9], [0], gt_xyxy=[[0, 0, 10, 10]], gt_class_id=[1])
    s = ev.summary()
    assert (s["insulator"]["fp"], s["defect"]["fn"]) == (1, 1)
    assert s["insulator"]["recall"] is None  # no insulator ground truth: undefined, not 0


def test_mismatched_lengths_are_refused() -> None:
    ev = DetectionEvaluator(["a"], {0: 0.5})
    with pytest.raises(ValueError, match="differ in length"):
        ev.add_image([[0, 0, 1, 1]], [0.5, 0.6], [0], gt_xyxy=[], gt_class_id=[])


def test_max_f1_threshold_on_hand_made_scores() -> None:
    # Three defects; boxes by score: 0.9 TP, 0.8 FP, 0.7 TP, 0.6 TP, 0.5 FP.
    ev = DetectionEvaluator(["defect"], {0: 0.5})
    ev.add_image([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], [0, 0],
                 gt_xyxy=[[0, 0, 10, 10]], gt_class_id=[0])
    ev.add_image([[0, 0, 10, 10], [20, 20, 30, 30], [70, 70, 80, 80]], [0.7, 0.6, 0.5], [0, 0, 0],
                 gt_xyxy=[[0, 0, 10, 10], [20, 20, 30, 30]], gt_class_id=[0, 0])

    best = ev.summary()["defect"]["max_f1"]

    # At 0.6: TP 3, FP 1 -> P 0.75, R 1.0, F1 6/7 (at 0.5: P 0.6; at 0.9: R 1/3); any
    # threshold in (0.5, 0.6] counts the same, and the middle of that gap is reported.
    assert best["score"] == 0.6
    assert best["threshold"] == pytest.approx(0.55)
    assert (best["precision"], best["recall"]) == (0.75, 1.0)
    assert best["f1"] == pytest.approx(6 / 7)


def test_max_f1_is_none_without_ground_truth() -> None:
    ev = DetectionEvaluator(["defect"], {0: 0.5})
    ev.add_image([[0, 0, 10, 10]], [0.9], [0], gt_xyxy=[], gt_class_id=[])

    assert ev.summary()["defect"]["max_f1"] is None
