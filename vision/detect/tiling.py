"""Square native-resolution tiles along a box, and box mapping between tile and image.

Used by training (the cascade's defect detector learns on tiles cut along insulator boxes) and by
cascade inference (the same tiles are cut along each detected insulator), so both see defects at
the same scale: a ~66x47 px missing cap stays ~66x47 px in a 320 px tile instead of shrinking to
~37x26 px in a 640 letterbox of the whole 1152x864 photo.

Tiles are ``(x1, y1, x2, y2)`` integer pixel tuples, half-open (``image[y1:y2, x1:x2]``). They keep
their full ``tile_px`` size whenever the image is large enough: a tile that would cross an image
edge is shifted inward rather than cut, so the detector always sees native pixels at one scale.

Pure numpy, no I/O.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Tile = tuple[int, int, int, int]
FloatArray = npt.NDArray[np.float64]


def _axis_starts(lo: float, hi: float, tile: int, overlap: float, limit: int) -> list[int]:
    """Tile start positions covering ``[lo, hi)`` on one axis of length ``limit``."""
    if limit <= tile:
        return [0]  # the whole axis fits in one tile (cut to the image below)
    length = hi - lo
    stride = tile * (1.0 - overlap)
    if length <= tile:
        starts = [(lo + hi) / 2 - tile / 2]
    else:
        count = math.ceil((length - tile) / stride) + 1
        # Spread the tiles evenly from the box's start to its end: the real overlap is then at
        # least the requested one and both box ends are covered exactly.
        step = (length - tile) / (count - 1)
        starts = [lo + i * step for i in range(count)]
    clipped = [min(max(round(s), 0), limit - tile) for s in starts]
    return sorted(set(clipped))


def tiles_along(
    box_xyxy: tuple[float, float, float, float],
    image_wh: tuple[int, int],
    tile_px: int = 320,
    overlap: float = 0.25,
) -> list[Tile]:
    """Square tiles that together cover ``box_xyxy``, overlapping by at least ``overlap``.

    Along each axis the box is covered by as few ``tile_px`` tiles as give neighbours at least
    ``overlap * tile_px`` pixels in common; a box smaller than a tile gets one tile centred on
    it. Tiles are shifted inside the image at its edges; only an image smaller than ``tile_px``
    yields a smaller tile (the whole image on that axis).

    Args:
        box_xyxy: the box to cover, pixels (e.g. an insulator string).
        image_wh: ``(width, height)`` of the image.
        tile_px: tile side in pixels.
        overlap: minimum overlap between neighbouring tiles, as a fraction of ``tile_px``.

    Returns:
        Tiles ``(x1, y1, x2, y2)``, row-major, without duplicates.

    Raises:
        ValueError: non-positive sizes, overlap outside ``[0, 1)``, or a box outside the image.

    Example:
        >>> tiles_along((100, 100, 700, 200), (1152, 864), tile_px=320, overlap=0.25)
        [(100, 0, 420, 320), (240, 0, 560, 320), (380, 0, 700, 320)]
    """
    img_w, img_h = image_wh
    if tile_px <= 0 or img_w <= 0 or img_h <= 0:
        raise ValueError(f"tile and image sizes must be positive: {tile_px}, {image_wh}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(img_w)), min(y2, float(img_h))
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"box {box_xyxy} does not overlap the {img_w}x{img_h} image")
    xs = _axis_starts(x1, x2, tile_px, overlap, img_w)
    ys = _axis_starts(y1, y2, tile_px, overlap, img_h)
    tw, th = min(tile_px, img_w), min(tile_px, img_h)
    return [(x, y, x + tw, y + th) for y in ys for x in xs]


def grid_tiles(image_wh: tuple[int, int], tile_px: int, overlap: float = 0.2) -> list[Tile]:
    """Tiles covering the whole image (sliced inference of large photos).

    Example:
        >>> len(grid_tiles((4000, 3000), 1024, 0.2))
        20
    """
    return tiles_along((0, 0, image_wh[0], image_wh[1]), image_wh, tile_px, overlap)


#: A photo whose long side is over this many windows is sliced by the automatic plan.
AUTO_SLICE_OVER = 1.5


def slice_plan(
    image_wh: tuple[int, int],
    window_px: int,
    *,
    overlap: float = 0.2,
    over: float = AUTO_SLICE_OVER,
) -> list[Tile]:
    """The windows a sliced first stage runs on, or none when the photo is small enough.

    ``window_px`` is the photo size the first stage sees objects at their trained scale (the
    model card's ``native_px``); a photo whose long side is at most ``over`` times it is run
    whole, a larger one also on overlapping windows of that size (merged with the whole-photo
    pass). A 4000x3000 drone photo with 1152 px windows gets 20 windows; a 1152x864 one none.

    Example:
        >>> len(slice_plan((4000, 3000), 1152)), len(slice_plan((1152, 864), 1152))
        (20, 0)
    """
    if window_px <= 0 or over < 1.0:
        raise ValueError(f"window_px must be positive and over >= 1: {window_px}, {over}")
    if max(image_wh) <= over * window_px:
        return []
    return stride_tiles(image_wh, window_px, overlap)


def _stride_starts(limit: int, window: int, overlap: float) -> list[int]:
    if limit <= window:
        return [0]
    step = window - int(overlap * window)
    starts = list(range(0, limit - window, step))
    return [*starts, limit - window]  # the last window is moved back inside the image


def stride_tiles(image_wh: tuple[int, int], window_px: int, overlap: float = 0.2) -> list[Tile]:
    """Windows covering the whole image the way slicing tools lay them (SAHI, mmdet): from the
    top-left corner every ``window_px * (1 - overlap)`` pixels, the last one on each axis moved
    back inside the image; an axis shorter than a window is taken whole.

    Example:
        >>> [t[0] for t in stride_tiles((4000, 3000), 1152)][:5]
        [0, 922, 1844, 2766, 2848]
    """
    if window_px <= 0 or not 0.0 <= overlap < 1.0:
        raise ValueError(f"bad window {window_px} or overlap {overlap}")
    w, h = image_wh
    xs = _stride_starts(w, window_px, overlap)
    ys = _stride_starts(h, window_px, overlap)
    return [(x, y, min(x + window_px, w), min(y + window_px, h)) for y in ys for x in xs]


def boxes_to_tile(
    boxes_xyxy: npt.ArrayLike,
    tile: Tile,
    *,
    min_visible: float = 0.4,
    min_px: float = 4.0,
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Clip image-frame boxes to a tile and express them in tile pixels.

    A box whose visible part is less than ``min_visible`` of its area, or thinner than
    ``min_px`` on either side, is dropped: such slivers teach a detector to fire on fragments.

    Args:
        boxes_xyxy: ``(N, 4)`` boxes in image pixels.
        tile: the tile ``(x1, y1, x2, y2)``.
        min_visible: minimum kept fraction of a box's area.
        min_px: minimum kept width and height in pixels.

    Returns:
        ``(kept_boxes, keep_mask)``: the kept boxes in tile pixels ``(K, 4)`` and, for every
        input box, whether it was kept.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    tx1, ty1, tx2, ty2 = tile
    clipped = boxes.copy()
    clipped[:, [0, 2]] = np.clip(boxes[:, [0, 2]], tx1, tx2)
    clipped[:, [1, 3]] = np.clip(boxes[:, [1, 3]], ty1, ty2)
    cw = clipped[:, 2] - clipped[:, 0]
    ch = clipped[:, 3] - clipped[:, 1]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    visible = np.divide(cw * ch, area, out=np.zeros_like(area), where=area > 0)
    keep = (cw >= min_px) & (ch >= min_px) & (visible >= min_visible)
    kept = clipped[keep] - np.array([tx1, ty1, tx1, ty1], dtype=np.float64)
    return kept, keep


def boxes_to_image(boxes_xyxy: npt.ArrayLike, tile: Tile) -> FloatArray:
    """Map ``(N, 4)`` boxes from tile pixels back to image pixels.

    Example:
        >>> boxes_to_image([[10, 20, 30, 40]], (100, 200, 420, 520)).tolist()
        [[110.0, 220.0, 130.0, 240.0]]
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    x1, y1 = tile[0], tile[1]
    return boxes + np.array([x1, y1, x1, y1], dtype=np.float64)


def crop(image: npt.NDArray[np.generic], tile: Tile) -> npt.NDArray[np.generic]:
    """Return the tile's pixels of an ``(H, W, ...)`` image (a view, no copy)."""
    x1, y1, x2, y2 = tile
    return image[y1:y2, x1:x2]
