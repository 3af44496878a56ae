"""Detection metrics, pure numpy: matching, precision/recall, COCO-style AP.

Matching follows COCO: predictions of one class in one image are taken best score first and each
claims the unmatched ground-truth box it overlaps most, provided the IoU reaches the threshold.
A ground-truth box is matched at most once; an unmatched prediction is a false positive.

- Counts (TP/FP/FN, precision, recall) use IoU 0.5 and only predictions at or above the chosen
  confidence threshold (the model card's), i.e. what an inspector actually sees.
- AP50 and AP50-95 use all predictions (any score) and COCO's 101-point interpolated
  precision; AP50-95 averages the ten IoU thresholds 0.50, 0.55, ..., 0.95.
- Image-level recall (reported for ``defect``): of the images that hold at least one ground-truth
  box of the class, the share in which at least one of those boxes is matched at IoU 0.5 by a
  prediction above the threshold. A box elsewhere in the photo does not count as finding it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from vision.detect.detections import box_iou

IOU_THRESHOLDS: npt.NDArray[np.float64] = np.linspace(0.5, 0.95, 10)
RECALL_POINTS: npt.NDArray[np.float64] = np.linspace(0.0, 1.0, 101)


def match_predictions(
    pred_xyxy: npt.ArrayLike,
    pred_scores: npt.ArrayLike,
    gt_xyxy: npt.ArrayLike,
    iou_thresholds: Sequence[float] | npt.NDArray[np.float64] = IOU_THRESHOLDS,
) -> npt.NDArray[np.bool_]:
    """Greedy COCO matching of one class in one image.

    Args:
        pred_xyxy: predicted boxes (N, 4).
        pred_scores: their scores (N,).
        gt_xyxy: ground-truth boxes (M, 4).
        iou_thresholds: the T IoU thresholds to match at.

    Returns:
        Boolean (N, T): whether prediction i is a true positive at threshold t, in the input
        order of the predictions.

    Example:
        >>> match_predictions([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8],
        ...                   [[0, 0, 10, 10]], [0.5]).ravel().tolist()
        [True, False]
    """
    preds = np.asarray(pred_xyxy, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    gts = np.asarray(gt_xyxy, dtype=np.float64).reshape(-1, 4)
    thresholds = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    tp = np.zeros((preds.shape[0], thresholds.size), dtype=bool)
    if preds.shape[0] == 0 or gts.shape[0] == 0:
        return tp
    iou = box_iou(preds, gts)
    order = np.argsort(-scores, kind="stable")
    for t, thr in enumerate(thresholds):
        taken = np.zeros(gts.shape[0], dtype=bool)
        for i in order:
            candidates = np.where(taken, -1.0, iou[i])
            j = int(np.argmax(candidates))
            # tiny epsilon: an IoU of exactly 0.5 computed in floats must still count at 0.5
            if candidates[j] >= thr - 1e-9:
                taken[j] = True
                tp[i, t] = True
    return tp


def average_precision(
    tp: npt.ArrayLike, scores: npt.ArrayLike, n_gt: int
) -> float:
    """COCO 101-point interpolated AP for one class at one IoU threshold.

    Args:
        tp: per-prediction true-positive flags over the whole data set (N,).
        scores: the predictions' scores (N,).
        n_gt: number of ground-truth boxes of the class.

    Returns:
        AP in [0, 1]; ``nan`` when there is no ground truth (undefined, not zero).

    Example:
        >>> average_precision([True, False], [0.9, 0.8], 1)
        1.0
    """
    if n_gt == 0:
        return float("nan")
    flags = np.asarray(tp, dtype=bool).reshape(-1)
    conf = np.asarray(scores, dtype=np.float64).reshape(-1)
    if flags.size == 0:
        return 0.0
    order = np.argsort(-conf, kind="mergesort")
    flags = flags[order]
    tps = np.cumsum(flags)
    fps = np.cumsum(~flags)
    recall = tps / n_gt
    precision = tps / np.maximum(tps + fps, np.finfo(np.float64).eps)
    # precision envelope: best precision at any recall at least this high
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(idx < envelope.size, envelope[np.minimum(idx, envelope.size - 1)], 0.0)
    return float(sampled.mean())


@dataclass
class ClassTally:
    """Running statistics of one class over a data set (fed image by image)."""

    n_gt: int = 0
    tp: int = 0
    fp: int = 0
    images_with_gt: int = 0
    images_found: int = 0
    scores: list[npt.NDArray[np.float64]] = field(default_factory=list)
    matches: list[npt.NDArray[np.bool_]] = field(default_factory=list)

    @property
    def fn(self) -> int:
        """Ground-truth boxes not matched at IoU 0.5 above the threshold."""
        return self.n_gt - self.tp

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 0 when nothing was predicted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """TP / ground truth; ``nan`` without ground truth."""
        return self.tp / self.n_gt if self.n_gt else float("nan")

    @property
    def image_recall(self) -> float:
        """Share of images holding this class in which at least one box was found."""
        return self.images_found / self.images_with_gt if self.images_with_gt else float("nan")

    def ap(self) -> npt.NDArray[np.float64]:
        """AP at each of the ten IoU thresholds 0.50..0.95."""
        scores = np.concatenate(self.scores) if self.scores else np.zeros(0)
        matches = (
            np.concatenate(self.matches) if self.matches
            else np.zeros((0, IOU_THRESHOLDS.size), dtype=bool)
        )
        return np.array([
            average_precision(matches[:, t], scores, self.n_gt)
            for t in range(IOU_THRESHOLDS.size)
        ])


    def best_f1(self) -> dict[str, float] | None:
        """The score threshold with the highest F1 at IoU 0.5, and its precision and recall.

        Greedy matching takes boxes best score first, so the matches of the boxes above any
        threshold are those found over all boxes: one sort gives every threshold's counts.
        Every threshold between the lowest kept score and the highest dropped one gives the
        same counts; the midpoint of that gap is reported (``score`` is the lowest kept), so
        a threshold chosen here is not set right at the edge of what this data happened to
        score. ``None`` without ground truth or predictions.
        """
        scores = np.concatenate(self.scores) if self.scores else np.zeros(0)
        if not self.n_gt or not scores.size:
            return None
        matched = np.concatenate(self.matches)[:, 0]
        order = np.argsort(-scores, kind="stable")
        scores, matched = scores[order], matched[order]
        tp = np.cumsum(matched)
        fp = np.cumsum(~matched)
        # Only the last box of a run of equal scores is a threshold one can set.
        last = np.r_[scores[1:] != scores[:-1], True]
        precision, recall = tp / (tp + fp), tp / self.n_gt
        f1 = np.where(tp > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
        i = int(np.argmax(np.where(last, f1, -1.0)))
        threshold = (scores[i] + scores[i + 1]) / 2 if i + 1 < scores.size else scores[i]
        return {
            "threshold": float(threshold),
            "score": float(scores[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
        }


class DetectionEvaluator:
    """Accumulates predictions and ground truth image by image, then reports per class.

    Example:
        >>> ev = DetectionEvaluator(["insulator", "defect"], {0: 0.25, 1: 0.25})
        >>> ev.add_image([[0, 0, 10, 10]], [0.9], [1], gt_xyxy=[[0, 0, 10, 10]], gt_class_id=[1])
        >>> ev.summary()["defect"]["tp"]
        1
    """

    def __init__(self, class_names: Sequence[str], conf_threshold: dict[int, float]) -> None:
        self.class_names = list(class_names)
        self.conf_threshold = dict(conf_threshold)
        self.tallies = [ClassTally() for _ in self.class_names]
        self.images = 0

    def add_image(
        self,
        pred_xyxy: npt.ArrayLike,
        pred_scores: npt.ArrayLike,
        pred_class_id: npt.ArrayLike,
        *,
        gt_xyxy: npt.ArrayLike,
        gt_class_id: npt.ArrayLike,
    ) -> None:
        """Add one image's predictions (any score) and its ground truth."""
        p_xyxy = np.asarray(pred_xyxy, dtype=np.float64).reshape(-1, 4)
        p_scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
        p_cls = np.asarray(pred_class_id, dtype=np.int64).reshape(-1)
        g_xyxy = np.asarray(gt_xyxy, dtype=np.float64).reshape(-1, 4)
        g_cls = np.asarray(gt_class_id, dtype=np.int64).reshape(-1)
        if not p_xyxy.shape[0] == p_scores.size == p_cls.size:
            raise ValueError("predictions: xyxy, scores and class ids differ in length")
        if g_xyxy.shape[0] != g_cls.size:
            raise ValueError("ground truth: xyxy and class ids differ in length")
        self.images += 1
        for cid, tally in enumerate(self.tallies):
            pm = p_cls == cid
            gm = g_cls == cid
            boxes, scores, gts = p_xyxy[pm], p_scores[pm], g_xyxy[gm]
            tally.n_gt += int(gts.shape[0])
            matched_all = match_predictions(boxes, scores, gts, IOU_THRESHOLDS)
            tally.scores.append(scores)
            tally.matches.append(matched_all)
            # counts are re-matched among the shown boxes only: a suppressed low-score box
            # must not take a ground-truth box away from a shown one
            shown = scores >= self.conf_threshold.get(cid, 0.0)
            matched = match_predictions(boxes[shown], scores[shown], gts, [0.5])[:, 0]
            tally.tp += int(matched.sum())
            tally.fp += int((~matched).sum())
            if gts.shape[0]:
                tally.images_with_gt += 1
                tally.images_found += int(bool(matched.any()))

    def summary(self, *, image_recall_for: Sequence[str] = ("defect",)) -> dict[str, Any]:
        """Per-class figures: precision, recall, ap50, ap50_95, tp, fp, fn (+ image_recall).

        Undefined values (no ground truth) are reported as ``None`` so the result is valid JSON.
        """
        out: dict[str, Any] = {}
        for name, tally in zip(self.class_names, self.tallies, strict=True):
            ap = tally.ap()
            row: dict[str, Any] = {
                "precision": _finite(tally.precision),
                "recall": _finite(tally.recall),
                "ap50": _finite(float(ap[0])),
                "ap50_95": _finite(float(np.mean(ap))),
                "tp": tally.tp,
                "fp": tally.fp,
                "fn": tally.fn,
                "ground_truth": tally.n_gt,
                # What the threshold would be if chosen on this data (report it on val only).
                "max_f1": tally.best_f1(),
            }
            if name in image_recall_for:
                row["image_recall"] = _finite(tally.image_recall)
                row["images_with_class"] = tally.images_with_gt
            out[name] = row
        return out


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)
