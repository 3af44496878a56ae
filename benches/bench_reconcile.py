"""Reconciliation speed at three sizes, and an STRtree-vs-naive nearest search at the smallest.

Usage: python benches/bench_reconcile.py [--scales 0.01,0.1,1] [--seed 0]

Scale 1 is 1,000,000 ledger assets (10,000 lines of 100 poles, 50 m spans), 100,000 photos and
300,000 detections (a third each asset markers, defects, corridor hazards), with some ledger
points moved (position mismatches) and some poles left out of the ledger (unregistered).
One run per size (no repeats: the machine is shared); growth is the time ratio over the size
ratio, so 1.0 means linear.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from pyproj import Transformer

from vision.geo.ledger import Ledger, LedgerAsset, LedgerLine
from vision.geo.reconcile import (
    ROLE_CODES,
    DetectionObservations,
    PhotoObservations,
    _nearest,
    reconcile,
)

UTM = "EPSG:32650"  # UTM 50N, around Guangzhou/Shenzhen
POLES_PER_LINE = 100
SPAN_M = 50.0


def synthetic(scale: float, rng: np.random.Generator) -> tuple[Ledger, PhotoObservations,
                                                             DetectionObservations]:
    """A ledger, photos and detections of the given scale (1.0 = the largest size)."""
    n_lines = max(1, int(10_000 * scale))
    n_photos = int(100_000 * scale)
    n_dets = int(300_000 * scale)
    to_wgs = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    # Lines run east, 400 m apart, in a square-ish block.
    cols = max(1, int(np.sqrt(n_lines)))
    line_idx = np.arange(n_lines)
    x0 = 300_000 + (line_idx % cols) * (POLES_PER_LINE * SPAN_M + 500)
    y0 = 2_500_000 + (line_idx // cols) * 400.0
    k = np.arange(POLES_PER_LINE)
    px = (x0[:, None] + k[None, :] * SPAN_M).ravel()
    py = np.repeat(y0, POLES_PER_LINE) + rng.normal(0, 2.0, px.size)
    true_x, true_y = px.copy(), py.copy()
    # 1 % of ledger points are 20 m off; 1 % of poles are missing from the ledger.
    moved = rng.random(px.size) < 0.01
    ledger_y = py + np.where(moved, 20.0, 0.0)
    in_ledger = rng.random(px.size) >= 0.01
    lon, lat = to_wgs.transform(px, ledger_y)
    assets = tuple(
        LedgerAsset(f"A{i}", f"A{i}", f"L{i // POLES_PER_LINE}", float(la), float(lo))
        for i, (lo, la) in enumerate(zip(lon, lat, strict=True)) if in_ledger[i]
    )
    lines = []
    for i in range(n_lines):
        lx = [float(x0[i]) - SPAN_M, float(x0[i]) + POLES_PER_LINE * SPAN_M]
        llon, llat = to_wgs.transform(lx, [float(y0[i])] * 2)
        lines.append(LedgerLine(f"L{i}", f"L{i}", tuple(zip(llon, llat, strict=True))))
    ledger = Ledger(assets, tuple(lines))

    # A flight photographs a quarter as many poles as it takes photos: ~4 photos per pole.
    flown = rng.choice(px.size, size=max(1, n_photos // 4), replace=False)
    target = flown[rng.integers(0, flown.size, n_photos)]
    cx = true_x[target] + rng.normal(0, 4, n_photos)
    cy = true_y[target] + rng.normal(0, 4, n_photos)
    cam_lon, cam_lat = to_wgs.transform(cx, cy - 10)
    cen_lon, cen_lat = to_wgs.transform(cx, cy)
    photos = PhotoObservations(np.asarray(cam_lon), np.asarray(cam_lat),
                               np.asarray(cen_lon), np.asarray(cen_lat))

    photo_index = rng.integers(0, n_photos, n_dets)
    role = rng.integers(0, 3, n_dets).astype(np.int8)
    base = target[photo_index]
    dx = rng.normal(0, 2, n_dets)
    dy = np.where(role == ROLE_CODES["corridor_hazard"], rng.uniform(-15, 15, n_dets),
                  rng.normal(0, 2, n_dets))
    d_lon, d_lat = to_wgs.transform(true_x[base] + dx, true_y[base] + dy)
    dets = DetectionObservations(
        photo_index=photo_index.astype(np.int64),
        role=role,
        severity=np.where(role == 0, 0, 2).astype(np.int16),
        lon=np.asarray(d_lon), lat=np.asarray(d_lat),
        uncertainty_m=np.full(n_dets, 3.0),
    )
    return ledger, photos, dets


def naive_nearest(a_xy: np.ndarray, q_xy: np.ndarray, max_distance: float) -> np.ndarray:
    """Brute force: distance from every query to every asset (numpy per query row)."""
    out = np.full(q_xy.shape[0], -1, dtype=np.int64)
    for i, (x, y) in enumerate(q_xy):
        d = np.hypot(a_xy[:, 0] - x, a_xy[:, 1] - y)
        j = int(np.argmin(d))
        if d[j] <= max_distance:
            out[i] = j
    return out


def compare_nearest(ledger: Ledger, photos: PhotoObservations,
                    dets: DetectionObservations) -> None:
    """Time nearest-asset lookup for all photo centres and detections, STRtree vs naive."""
    import shapely
    from shapely import STRtree

    to_m = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
    ax, ay = to_m.transform([a.lon for a in ledger.assets], [a.lat for a in ledger.assets])
    a_xy = np.column_stack([ax, ay])
    qx, qy = to_m.transform(np.concatenate([photos.center_lon, dets.lon]),
                            np.concatenate([photos.center_lat, dets.lat]))
    q_xy = np.column_stack([qx, qy])
    t0 = time.perf_counter()
    tree = STRtree(shapely.points(a_xy))
    fast, _ = _nearest(tree, q_xy, 25.0)
    t_tree = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = naive_nearest(a_xy, q_xy, 25.0)
    t_naive = time.perf_counter() - t0
    agree = float(np.mean(fast == slow))
    print(f"nearest asset for {len(q_xy):,} points among {len(a_xy):,} assets: "
          f"STRtree {t_tree:.3f} s | naive {t_naive:.3f} s | speed-up {t_naive / t_tree:.0f}x "
          f"| same answer for {agree:.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.01,0.1,1")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scales = [float(s) for s in args.scales.split(",")]
    rng = np.random.default_rng(args.seed)
    rows = []
    for i, scale in enumerate(scales):
        ledger, photos, dets = synthetic(scale, rng)
        if i == 0:
            compare_nearest(ledger, photos, dets)
        t0 = time.perf_counter()
        result = reconcile(ledger, photos, dets)
        seconds = time.perf_counter() - t0
        size = len(ledger.assets) + len(photos) + len(dets)
        rows.append((scale, len(ledger.assets), len(photos), len(dets), size, seconds,
                     result.counts()))
        del ledger, photos, dets, result
    print(f"{'assets':>10} {'photos':>8} {'detections':>10} {'seconds':>8} {'us/item':>8} "
          f"{'growth':>7}  counts")
    for j, (_, n_a, n_p, n_d, size, seconds, counts) in enumerate(rows):
        growth = "" if j == 0 else f"{(seconds / rows[j - 1][5]) / (size / rows[j - 1][4]):.2f}"
        print(f"{n_a:>10,} {n_p:>8,} {n_d:>10,} {seconds:>8.2f} {1e6 * seconds / size:>8.2f} "
              f"{growth:>7}  {counts}")


if __name__ == "__main__":
    main()
