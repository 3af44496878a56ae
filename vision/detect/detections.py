"""Columnar detections: one value object over parallel numpy arrays.

Modelled on ``supervision.Detections``: every per-box attribute is a column of the same length,
so filtering, slicing and merging are single numpy operations and never loops over boxes.

Columns
    xyxy        float32 (N, 4)  pixel corners in the image that was analysed (x1 <= x2, y1 <= y2)
    confidence  float32 (N,)    detector score in [0, 1]
    class_id    int64   (N,)    index into the model card's class list
    severity    int16   (N,)    severity of the class (0 = asset marker, higher = more urgent)
    data        dict[str, ndarray (N, ...)]  optional extra per-row columns

The object is immutable in spirit: every operation returns a new ``Detections``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float32]
IntArray: TypeAlias = npt.NDArray[np.int64]
SeverityArray: TypeAlias = npt.NDArray[np.int16]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
Index: TypeAlias = int | slice | Sequence[int] | Sequence[bool] | npt.NDArray[Any]


def _as_column(values: Any, dtype: type[np.generic], name: str) -> npt.NDArray[Any]:
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim == 0:
        raise ValueError(f"{name} must be a 1-D column, got a scalar")
    return arr


@dataclass(frozen=True, eq=False, init=False)
class Detections:
    """Boxes found in one image, as parallel columns (see the module docstring).

    The constructor takes anything array-like and normalises dtypes and shapes, refusing
    inconsistent columns (``ValueError``).

    Example:
        >>> d = Detections(xyxy=[[0, 0, 10, 10]], confidence=[0.9], class_id=[1], severity=[3])
        >>> len(d), d.area.tolist()
        (1, [100.0])
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    severity: SeverityArray
    data: dict[str, npt.NDArray[Any]] = field(default_factory=dict)

    def __init__(
        self,
        xyxy: npt.ArrayLike,
        confidence: npt.ArrayLike,
        class_id: npt.ArrayLike,
        severity: npt.ArrayLike,
        data: Mapping[str, npt.ArrayLike] | None = None,
    ) -> None:
        boxes = np.asarray(xyxy, dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {boxes.shape}")
        n = boxes.shape[0]
        conf = _as_column(confidence, np.float32, "confidence")
        cls = _as_column(class_id, np.int64, "class_id")
        sev = _as_column(severity, np.int16, "severity")
        for name, col in (("confidence", conf), ("class_id", cls), ("severity", sev)):
            if col.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {col.shape}")
        if not np.all(np.isfinite(boxes)):
            raise ValueError("xyxy holds NaN or infinite coordinates")
        if np.any(boxes[:, 0] > boxes[:, 2]) or np.any(boxes[:, 1] > boxes[:, 3]):
            raise ValueError("every box needs x1 <= x2 and y1 <= y2")
        if np.any((conf < 0) | (conf > 1)):
            raise ValueError("confidence must lie in [0, 1]")
        columns: dict[str, npt.NDArray[Any]] = {}
        for key, values in (data or {}).items():
            col = np.asarray(values)
            if col.ndim == 0 or col.shape[0] != n:
                raise ValueError(f"data[{key!r}] must have {n} rows, got shape {col.shape}")
            columns[key] = col
        # frozen dataclass: columns are written once, here, and never again
        object.__setattr__(self, "xyxy", boxes)
        object.__setattr__(self, "confidence", conf)
        object.__setattr__(self, "class_id", cls)
        object.__setattr__(self, "severity", sev)
        object.__setattr__(self, "data", columns)

    # ------------------------------------------------------------------ construction
    @classmethod
    def _of_checked(
        cls, xyxy: FloatArray, confidence: FloatArray, class_id: IntArray,
        severity: SeverityArray, data: dict[str, npt.NDArray[Any]],
    ) -> Detections:
        """Build from columns taken from checked detections (rows selected, concatenated,
        shifted by a finite offset or clipped): the checks of ``__init__`` hold already, so
        they are not paid again (a photo's cascade builds a dozen of these)."""
        out = object.__new__(cls)
        object.__setattr__(out, "xyxy", xyxy)
        object.__setattr__(out, "confidence", confidence)
        object.__setattr__(out, "class_id", class_id)
        object.__setattr__(out, "severity", severity)
        object.__setattr__(out, "data", data)
        return out

    @classmethod
    def empty(cls, data_keys: Iterable[str] = ()) -> Detections:
        """Return detections with zero rows (optionally with empty ``data`` columns)."""
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int64),
            severity=np.zeros(0, np.int16),
            data={k: np.zeros(0) for k in data_keys},
        )

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """Concatenate several detections of one image into one.

        Only ``data`` keys present in every part are kept, so merged columns stay aligned.

        Example:
            >>> a = Detections(xyxy=[[0, 0, 1, 1]], confidence=[.5], class_id=[0], severity=[0])
            >>> len(Detections.merge([a, a, Detections.empty()]))
            2
        """
        parts = [p for p in parts if len(p)] or list(parts[:1])
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        keys = set(parts[0].data)
        for p in parts[1:]:
            keys &= set(p.data)
        return cls._of_checked(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.confidence for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.severity for p in parts]),
            {k: np.concatenate([p.data[k] for p in parts]) for k in sorted(keys)},
        )

    # ------------------------------------------------------------------ container protocol
    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: Index) -> Detections:
        """Select rows by int, slice, boolean mask or index array (always returns Detections)."""
        if isinstance(index, (int, np.integer)):
            n = len(self)
            if not -n <= int(index) < n:
                raise IndexError(f"row {index} out of range for {n} detections")
            idx: Any = [int(index)]
        elif isinstance(index, slice):
            idx = index
        else:
            idx = np.asarray(index)
            if idx.dtype == np.bool_:
                if idx.shape != (len(self),):
                    raise IndexError(f"boolean mask must have shape ({len(self)},)")
            elif idx.size == 0:
                idx = idx.astype(np.int64)
            elif not np.issubdtype(idx.dtype, np.integer):
                raise IndexError(f"cannot index detections with dtype {idx.dtype}")
        if isinstance(idx, np.ndarray) and idx.ndim != 1:
            raise IndexError(f"index must be 1-D, got shape {idx.shape}")
        return Detections._of_checked(
            self.xyxy[idx].reshape(-1, 4), self.confidence[idx], self.class_id[idx],
            self.severity[idx], {k: v[idx] for k, v in self.data.items()},
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Detections):
            return NotImplemented
        return (
            np.array_equal(self.xyxy, other.xyxy)
            and np.array_equal(self.confidence, other.confidence)
            and np.array_equal(self.class_id, other.class_id)
            and np.array_equal(self.severity, other.severity)
            and self.data.keys() == other.data.keys()
            and all(np.array_equal(v, other.data[k]) for k, v in self.data.items())
        )

    __hash__ = None  # type: ignore[assignment]  # mutable numpy columns: not hashable

    # ------------------------------------------------------------------ derived columns
    @property
    def area(self) -> FloatArray:
        """Box areas in square pixels, shape (N,)."""
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return (wh[:, 0] * wh[:, 1]).astype(np.float32)

    @property
    def centers(self) -> FloatArray:
        """Box centres (x, y) in pixels, shape (N, 2)."""
        return ((self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2).astype(np.float32)

    # ------------------------------------------------------------------ selection
    def filter(
        self,
        *,
        class_ids: Iterable[int] | None = None,
        min_confidence: float | Mapping[int, float] | None = None,
    ) -> Detections:
        """Keep rows of the given classes and/or at or above a confidence threshold.

        Args:
            class_ids: classes to keep; ``None`` keeps all.
            min_confidence: one threshold, or a threshold per class id (classes missing from
                the mapping are kept unfiltered).

        Returns:
            The selected rows.
        """
        keep = np.ones(len(self), dtype=bool)
        if class_ids is not None:
            keep &= np.isin(self.class_id, np.fromiter(class_ids, dtype=np.int64))
        if isinstance(min_confidence, Mapping):
            thresholds = np.zeros(len(self), dtype=np.float32)
            for cid, thr in min_confidence.items():
                thresholds[self.class_id == cid] = thr
            keep &= self.confidence >= thresholds
        elif min_confidence is not None:
            keep &= self.confidence >= np.float32(min_confidence)
        return self[keep]

    def with_nms(self, iou_threshold: float = 0.5, *, class_agnostic: bool = False) -> Detections:
        """Greedy non-maximum suppression (class-aware unless ``class_agnostic``), pure numpy.

        Example:
            >>> d = Detections(xyxy=[[0, 0, 10, 10], [1, 1, 10, 10]], confidence=[.9, .8],
            ...                class_id=[0, 0], severity=[0, 0])
            >>> d.with_nms(0.5).confidence.tolist()
            [0.8999999761581421]
        """
        keep = nms_indices(
            self.xyxy, self.confidence, iou_threshold,
            None if class_agnostic else self.class_id,
        )
        return self[keep]

    def with_greedy_merge(self, min_ios: float = 0.5) -> Detections:
        """Greedy non-maximum merging, class-aware (SAHI's default merge of sliced results).

        Best score first: every remaining box of the same class whose intersection with it
        covers at least ``min_ios`` of the smaller of the two is merged into it (the union of
        the boxes, the best box's score). A large object cut by window edges is seen whole again
        instead of as fragments beside a whole box.

        Example:
            >>> d = Detections(xyxy=[[0, 0, 10, 10], [8, 0, 30, 10], [50, 50, 60, 60]],
            ...                confidence=[.9, .8, .7], class_id=[0, 0, 0], severity=[0, 0, 0])
            >>> d.with_greedy_merge(0.1).xyxy.tolist()
            [[0.0, 0.0, 30.0, 10.0], [50.0, 50.0, 60.0, 60.0]]
        """
        n = len(self)
        if n < 2:
            return self
        boxes = self.xyxy.astype(np.float64)
        lt = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
        rb = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
        inter = np.clip(rb - lt, 0, None).prod(axis=2)
        area = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None).prod(axis=1)
        smaller = np.maximum(np.minimum(area[:, None], area[None, :]), 1e-9)
        close = (inter / smaller >= min_ios) & (self.class_id[:, None] == self.class_id[None, :])
        alive = np.ones(n, dtype=bool)
        keep: list[int] = []
        merged = boxes.copy()
        for i in np.argsort(-self.confidence, kind="stable"):
            if not alive[i]:
                continue
            group = np.flatnonzero(alive & close[i])  # i itself among them
            alive[group] = False
            keep.append(int(i))
            merged[i, :2] = boxes[group, :2].min(axis=0)
            merged[i, 2:] = boxes[group, 2:].max(axis=0)
        out = self[np.asarray(keep, dtype=np.int64)]
        return Detections(merged[keep].astype(np.float32), out.confidence, out.class_id,
                          out.severity, dict(out.data))

    def shifted(self, dx: float, dy: float) -> Detections:
        """Translate every box by (dx, dy): maps boxes from a crop back to the full image."""
        if not (math.isfinite(dx) and math.isfinite(dy)):
            raise ValueError(f"shift must be finite, got ({dx}, {dy})")
        offset = np.array([dx, dy, dx, dy], dtype=np.float32)
        return Detections._of_checked(self.xyxy + offset, self.confidence, self.class_id,
                                      self.severity, dict(self.data))

    def clipped(self, width: int, height: int) -> Detections:
        """Clip boxes to the image rectangle [0, width] x [0, height]."""
        xyxy = self.xyxy.copy()
        np.clip(xyxy[:, 0::2], 0, width, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, height, out=xyxy[:, 1::2])
        return Detections._of_checked(xyxy, self.confidence, self.class_id, self.severity,
                                      dict(self.data))

    # ------------------------------------------------------------------ export
    def to_rows(self, class_names: Sequence[str]) -> list[dict[str, Any]]:
        """One JSON-ready dict per box: xyxy (rounded to 0.1 px), class, confidence, severity."""
        rows: list[dict[str, Any]] = []
        for i in range(len(self)):
            cid = int(self.class_id[i])
            row: dict[str, Any] = {
                "xyxy": [round(float(v), 1) for v in self.xyxy[i]],
                "class_id": cid,
                "class_name": class_names[cid] if 0 <= cid < len(class_names) else str(cid),
                "confidence": round(float(self.confidence[i]), 4),
                "severity": int(self.severity[i]),
            }
            for key, col in self.data.items():
                value = col[i]
                row[key] = value.item() if isinstance(value, np.generic) else value.tolist()
            rows.append(row)
        return rows

    def to_coco_results(
        self, image_id: int, category_ids: Sequence[int] | None = None
    ) -> list[dict[str, Any]]:
        """COCO "results" entries: ``{image_id, category_id, bbox: [x, y, w, h], score}``.

        Args:
            image_id: the COCO image id these boxes belong to.
            category_ids: COCO category id per class id; defaults to ``class_id + 1`` because
                COCO reserves 0.
        """
        out: list[dict[str, Any]] = []
        for i in range(len(self)):
            x1, y1, x2, y2 = (float(v) for v in self.xyxy[i])
            cid = int(self.class_id[i])
            out.append({
                "image_id": image_id,
                "category_id": category_ids[cid] if category_ids is not None else cid + 1,
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "score": round(float(self.confidence[i]), 5),
            })
        return out


def box_iou(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Pairwise IoU between boxes ``a`` (N, 4) and ``b`` (M, 4) in xyxy; returns (N, M).

    Example:
        >>> box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2]]).round(3).tolist()
        [[0.333]]
    """
    aa = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    bb = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(aa[:, None, :2], bb[None, :, :2])
    rb = np.minimum(aa[:, None, 2:], bb[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (aa[:, 2:] - aa[:, :2]).prod(axis=1)
    area_b = (bb[:, 2:] - bb[:, :2]).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    # zero-area boxes against each other: IoU 0 rather than 0/0
    iou: npt.NDArray[np.float64] = np.divide(
        inter, union, out=np.zeros_like(inter), where=union > 0
    )
    return iou


def nms_indices(
    xyxy: npt.ArrayLike,
    scores: npt.ArrayLike,
    iou_threshold: float,
    class_ids: npt.ArrayLike | None = None,
    *,
    max_det: int | None = None,
) -> IntArray:
    """Indices kept by greedy NMS, best score first.

    Boxes of different classes never suppress each other when ``class_ids`` is given (the
    boxes of each class are moved apart by an offset larger than any coordinate, so one pass
    handles all classes).
    """
    boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    conf = np.asarray(scores, dtype=np.float32).reshape(-1)
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    if class_ids is not None:
        cls = np.asarray(class_ids, dtype=np.float32).reshape(-1)
        span = float(np.abs(boxes).max()) + 1.0
        boxes = boxes + (cls * span * 2)[:, None]
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-conf, kind="stable")
    keep: list[int] = []
    limit = max_det if max_det is not None else boxes.shape[0]
    while order.size and len(keep) < limit:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
