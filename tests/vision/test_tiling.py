"""Tiles along a box: coverage, overlap, image edges; box mapping tile <-> image."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vision.detect.tiling import (
    boxes_to_image,
    boxes_to_tile,
    crop,
    grid_tiles,
    slice_plan,
    stride_tiles,
    tiles_along,
)


def _covers(tiles: list[tuple[int, int, int, int]], box: tuple[int, int, int, int]) -> bool:
    x1, y1, x2, y2 = box
    mask = np.zeros((y2 - y1, x2 - x1), dtype=bool)
    for tx1, ty1, tx2, ty2 in tiles:
        mask[max(ty1 - y1, 0) : max(ty2 - y1, 0), max(tx1 - x1, 0) : max(tx2 - x1, 0)] = True
    return bool(mask.all())


def test_long_box_is_covered_by_evenly_spaced_full_tiles() -> None:
    tiles = tiles_along((100, 300, 900, 420), (1152, 864), tile_px=320, overlap=0.25)

    assert all(x2 - x1 == 320 and y2 - y1 == 320 for x1, y1, x2, y2 in tiles)
    assert _covers(tiles, (100, 300, 900, 420))
    assert tiles[0][0] == 100
    assert tiles[-1][2] == 900


def test_neighbours_overlap_at_least_the_requested_fraction() -> None:
    tiles = tiles_along((0, 0, 1100, 200), (1152, 864), tile_px=320, overlap=0.25)

    xs = sorted(t[0] for t in tiles)
    overlaps = [320 - (b - a) for a, b in itertools.pairwise(xs)]
    assert len(tiles) == 5  # (1100 - 320) / 240 -> 4 strides
    assert min(overlaps) >= 0.25 * 320


def test_zero_overlap_uses_the_fewest_tiles() -> None:
    tiles = tiles_along((0, 0, 640, 100), (1152, 864), tile_px=320, overlap=0.0)

    assert [t[0] for t in tiles] == [0, 320]


def test_small_box_gets_one_centred_tile() -> None:
    tiles = tiles_along((500, 400, 560, 450), (1152, 864), tile_px=320)

    assert tiles == [(370, 265, 690, 585)]


def test_tiles_are_shifted_inside_at_image_edges() -> None:
    tiles = tiles_along((1100, 820, 1150, 860), (1152, 864), tile_px=320)

    assert tiles == [(832, 544, 1152, 864)]


def test_box_partly_outside_the_image_is_clipped_first() -> None:
    tiles = tiles_along((-50, -40, 100, 60), (1152, 864), tile_px=320)

    assert tiles == [(0, 0, 320, 320)]


def test_image_smaller_than_a_tile_gives_the_whole_image_on_that_axis() -> None:
    tiles = tiles_along((10, 10, 200, 100), (250, 800), tile_px=320)

    assert tiles == [(0, 0, 250, 320)]


def test_tall_and_wide_box_is_tiled_on_both_axes() -> None:
    tiles = tiles_along((0, 0, 600, 600), (1152, 864), tile_px=320, overlap=0.25)

    assert len(tiles) == 9  # 3 x 3: two tiles of 320 over 600 px would overlap only 40 px
    assert _covers(tiles, (0, 0, 600, 600))


@pytest.mark.parametrize(
    ("box", "wh", "tile", "overlap"),
    [
        ((10, 10, 5, 20), (100, 100), 32, 0.2),  # inverted box
        ((200, 200, 300, 300), (100, 100), 32, 0.2),  # outside
        ((10, 10, 20, 20), (100, 100), 0, 0.2),  # no tile size
        ((10, 10, 20, 20), (100, 100), 32, 1.0),  # overlap 1 never advances
    ],
)
def test_invalid_input_raises_value_error(
    box: tuple[int, int, int, int], wh: tuple[int, int], tile: int, overlap: float
) -> None:
    with pytest.raises(ValueError):
        tiles_along(box, wh, tile_px=tile, overlap=overlap)


def test_grid_tiles_cover_a_large_photo() -> None:
    tiles = grid_tiles((4000, 3000), 1024, 0.2)

    assert _covers(tiles, (0, 0, 4000, 3000))
    assert all(x2 <= 4000 and y2 <= 3000 for _, _, x2, y2 in tiles)


def test_boxes_to_tile_clips_and_drops_slivers() -> None:
    boxes = [
        [110, 120, 150, 160],  # inside
        [300, 100, 340, 140],  # half outside on the right: 50 % visible, kept clipped
        [315, 100, 355, 140],  # 5 px visible: a sliver, dropped
        [500, 500, 520, 520],  # outside
    ]
    kept, mask = boxes_to_tile(boxes, (100, 100, 320, 320), min_visible=0.4, min_px=8)

    assert mask.tolist() == [True, True, False, False]
    assert kept.tolist() == [[10, 20, 50, 60], [200, 0, 220, 40]]


def test_boxes_round_trip_between_tile_and_image() -> None:
    tile = (240, 96, 560, 416)
    image_boxes = np.array([[250.5, 100.0, 300.25, 150.0]])

    in_tile, _ = boxes_to_tile(image_boxes, tile)
    back = boxes_to_image(in_tile, tile)

    np.testing.assert_array_equal(back, image_boxes)


def test_crop_returns_the_tile_pixels() -> None:
    image = np.arange(20 * 30).reshape(20, 30)

    patch = crop(image, (5, 2, 15, 12))

    assert patch.shape == (10, 10)
    assert patch[0, 0] == image[2, 5]


def test_stride_windows_start_at_the_corner_and_end_inside_the_image() -> None:
    tiles = stride_tiles((4000, 3000), 1152, 0.2)
    xs = sorted({t[0] for t in tiles})
    ys = sorted({t[1] for t in tiles})
    assert xs == [0, 922, 1844, 2766, 2848] and ys == [0, 922, 1844, 1848]
    assert all(t[2] - t[0] == 1152 and t[3] - t[1] == 1152 for t in tiles)
    assert stride_tiles((800, 600), 1152) == [(0, 0, 800, 600)]  # smaller than a window


def test_the_slice_plan_slices_only_photos_well_over_the_trained_size() -> None:
    assert slice_plan((1152, 864), 1152) == []
    assert slice_plan((1728, 1296), 1152) == []  # 1.5 windows: run whole
    assert len(slice_plan((4000, 3000), 1152)) == 20
    assert len(slice_plan((8192, 5460), 1152)) == 54
    with pytest.raises(ValueError):
        slice_plan((4000, 3000), 0)
