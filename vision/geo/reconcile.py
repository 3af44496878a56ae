"""Ledger checking (台账校核): match photos and detections to ledger assets, pure and columnar.

Everything is projected once into the UTM zone of the ledger (metres) and matched with shapely
STRtrees, so the cost grows near-linearly with the number of assets, photos and detections.

What is decided, and how (all distances are options of :class:`ReconcileOptions`):

* **Photos**: a ledger asset is *inspected* when it lies inside the photo's ground footprint
  (widened by ``footprint_margin_m``, cut at ``max_footprint_range_m`` from the camera), so an
  oblique photo credits what it looks at, never the pole under the drone. Without a footprint,
  an asset within ``photo_tolerance_m`` of the line of sight on the ground (camera position to
  the ground point of the image centre, at most ``max_view_range_m`` long; a point for a nadir
  photo) is inspected. The asset nearest the centre of the view is the photo's asset. A photo
  that could not be projected (no attitude, shallow view) falls back to its camera position
  within ``camera_tolerance_m``.
* **Asset markers** (classes that stand for the asset they sit on, e.g. an insulator for its
  pole) are clustered (single linkage, ``cluster_radius_m``). Each cluster goes to the nearest
  unclaimed ledger asset within ``mismatch_search_m``; a cluster consistently offset by more than
  ``position_tolerance_m`` from its asset (at least ``min_sightings`` sightings from two photos,
  offset beyond twice its standard error) is a *position mismatch*; a cluster with no ledger
  asset near is an *unregistered* asset.
* **Defects** attach to the nearest asset (at its observed position when one was seen) within
  the detection tolerance widened by the ground point's uncertainty; without a ground point they
  attach to their photo's asset.
* **Corridor hazards**: each line is buffered by half its corridor width; hazards inside are
  reported with their distance to the line.
* **Uninspected**: ledger assets with no photo and no detection attached. Only those *in view*
  (:attr:`ReconcileResult.in_view`: inside the union of the photos' view areas widened by the
  corridor buffer, ``view_buffer_m`` or half the widest corridor) are where the flight looked;
  the rest of the ledger was not flown and raises no task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Geod, Transformer
from shapely import STRtree

from vision.geo.ledger import Ledger, metric_crs
from vision.records import GeoPoint, PhotoRecord, stable_id

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

ROLE_ASSET_MARKER: Final = 0
ROLE_DEFECT: Final = 1
ROLE_CORRIDOR_HAZARD: Final = 2
ROLE_CODES: Final = {"asset_marker": 0, "defect": 1, "corridor_hazard": 2}

UNINSPECTED: Final = 0
INSPECTED: Final = 1
POSITION_MISMATCH: Final = 2
STATUS_NAMES: Final = ("uninspected", "inspected", "position_mismatch")


@dataclass(frozen=True)
class ReconcileOptions:
    """Matching distances in metres and evidence thresholds; defaults are [U] field practice."""

    photo_tolerance_m: float = 25.0
    max_view_range_m: float = 60.0
    footprint_margin_m: float = 5.0
    max_footprint_range_m: float = 100.0
    #: Widening of the flown area for uninspected tasks; None: half the widest corridor.
    view_buffer_m: float | None = None
    camera_tolerance_m: float = 30.0
    detection_tolerance_m: float = 10.0
    max_detection_tolerance_m: float = 25.0
    cluster_radius_m: float = 6.0
    mismatch_search_m: float = 40.0
    position_tolerance_m: float = 8.0
    min_sightings: int = 3
    min_unregistered_sightings: int = 2


@dataclass(frozen=True)
class PhotoObservations:
    """Photos as columns: camera position and (NaN when not projected) ground centre, WGS84.

    ``footprints`` (optional, one per photo or empty) are ground rings of (lon, lat) pairs.
    """

    camera_lon: FloatArray
    camera_lat: FloatArray
    center_lon: FloatArray
    center_lat: FloatArray
    footprints: tuple[Sequence[tuple[float, float]] | None, ...] = ()

    def __len__(self) -> int:
        return int(self.camera_lon.shape[0])

    @classmethod
    def from_lists(
        cls,
        camera: Sequence[tuple[float, float] | None],
        center: Sequence[tuple[float, float] | None],
        footprints: Sequence[Sequence[tuple[float, float]] | None] | None = None,
    ) -> PhotoObservations:
        """Build from per-photo ``(lon, lat)`` pairs (None when unknown) and footprint rings."""
        cam = _pairs(camera)
        cen = _pairs(center)
        return cls(cam[:, 0], cam[:, 1], cen[:, 0], cen[:, 1], tuple(footprints or ()))


@dataclass(frozen=True)
class DetectionObservations:
    """Detections as columns: photo index, role code, severity, ground point (NaN if none)."""

    photo_index: IntArray
    role: NDArray[np.int8]
    severity: NDArray[np.int16]
    lon: FloatArray
    lat: FloatArray
    uncertainty_m: FloatArray

    def __len__(self) -> int:
        return int(self.photo_index.shape[0])

    @classmethod
    def empty(cls) -> DetectionObservations:
        """No detections."""
        return cls(
            np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int16),
            np.zeros(0), np.zeros(0), np.zeros(0),
        )


@dataclass(frozen=True)
class Sighting:
    """Where the asset markers of one cluster put an asset."""

    lon: float
    lat: float
    offset_m: float
    sightings: int
    photos: int


@dataclass(frozen=True)
class UnregisteredAsset:
    """An asset seen in the photos with no ledger asset near it."""

    asset_id: str
    lon: float
    lat: float
    detection_indices: tuple[int, ...]
    photo_indices: tuple[int, ...]


@dataclass(frozen=True)
class CorridorHazard:
    """A hazard detection inside a line corridor."""

    detection_index: int
    line_id: str
    distance_m: float
    corridor_width_m: float


@dataclass
class ReconcileResult:
    """Outcome of :func:`reconcile`; ledger assets are addressed by their index in the ledger."""

    crs: CRS
    status: NDArray[np.int8]
    #: Assets where the flight looked (see the module doc); uninspected ones outside it were
    #: not flown.
    in_view: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    asset_photos: dict[int, list[int]] = field(default_factory=dict)
    asset_detections: dict[int, list[int]] = field(default_factory=dict)
    sightings: dict[int, Sighting] = field(default_factory=dict)
    unregistered: list[UnregisteredAsset] = field(default_factory=list)
    photo_asset: list[str | None] = field(default_factory=list)
    detection_asset: list[str | None] = field(default_factory=list)
    detection_distance_m: FloatArray = field(default_factory=lambda: np.zeros(0))
    detection_attach: list[str] = field(default_factory=list)
    hazards: list[CorridorHazard] = field(default_factory=list)
    unplaced_hazards: int = 0

    def counts(self) -> dict[str, int]:
        """Numbers per status plus unregistered assets and corridor hazards."""
        out = {name: int(np.count_nonzero(self.status == code))
               for code, name in enumerate(STATUS_NAMES)}
        out["not_flown"] = int(np.count_nonzero((self.status == UNINSPECTED) & ~self.in_view))
        out["unregistered"] = len(self.unregistered)
        out["corridor_hazards"] = len(self.hazards)
        return out


def _pairs(values: Sequence[tuple[float, float] | None]) -> FloatArray:
    out = np.full((len(values), 2), np.nan)
    for i, v in enumerate(values):
        if v is not None:
            out[i] = v
    return out


def _project(to_m: Transformer, lon: FloatArray, lat: FloatArray) -> FloatArray:
    """(N, 2) metres; NaN rows stay NaN."""
    ok = np.isfinite(lon) & np.isfinite(lat)
    xy = np.full((lon.shape[0], 2), np.nan)
    if ok.any():
        x, y = to_m.transform(lon[ok], lat[ok])
        xy[ok, 0], xy[ok, 1] = x, y
    return xy


def _min_per_query(
    q: IntArray, item: IntArray, dist: FloatArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """Keep the closest item per query (ties: lowest item index, so results are stable)."""
    order = np.lexsort((item, dist, q))
    q_sorted = q[order]
    first = np.ones(q_sorted.size, dtype=bool)
    first[1:] = q_sorted[1:] != q_sorted[:-1]
    sel = order[first]
    return q[sel], item[sel], dist[sel]


def _nearest(
    tree: STRtree, xy: FloatArray, max_distance: float, item_xy: FloatArray | None = None
) -> tuple[IntArray, FloatArray]:
    """Index and distance of the nearest tree item for each row within ``max_distance``.

    Rows with no item in range (or NaN coordinates) get index -1 and distance inf. A
    ``dwithin`` query plus vectorised distances is several times faster than shapely's
    ``query_nearest`` for the short search radii used here; ``item_xy`` (the tree's points)
    lets distances be computed in numpy.
    """
    n = xy.shape[0]
    index = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, np.inf)
    ok = np.flatnonzero(np.isfinite(xy).all(axis=1))
    if ok.size == 0 or len(tree) == 0:
        return index, distance
    q, item = tree.query(shapely.points(xy[ok]), predicate="dwithin", distance=max_distance)
    if q.size == 0:
        return index, distance
    if item_xy is not None:
        delta = xy[ok][q] - item_xy[item]
        dist = np.hypot(delta[:, 0], delta[:, 1])
    else:
        dist = shapely.distance(shapely.points(xy[ok][q]), tree.geometries[item])
    rows, best, best_d = _min_per_query(q.astype(np.int64), item.astype(np.int64), dist)
    index[ok[rows]] = best
    distance[ok[rows]] = best_d
    return index, distance


def _clusters(xy: FloatArray, radius: float) -> IntArray:
    """Single-linkage cluster labels (0..k-1) of points within ``radius`` of each other."""
    n = xy.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pts = shapely.points(xy)
    tree = STRtree(pts)
    left, right = tree.query(pts, predicate="dwithin", distance=radius)
    labels = np.arange(n, dtype=np.int64)
    # Label propagation: every point takes the smallest label among its neighbours until
    # nothing changes; pointer jumping keeps the number of rounds small.
    while True:
        before = labels.copy()
        np.minimum.at(labels, left, labels[right])
        np.minimum.at(labels, right, labels[left])
        labels = labels[labels]
        if np.array_equal(labels, before):
            break
    _, compact = np.unique(labels, return_inverse=True)
    return compact.astype(np.int64)


def reconcile(
    ledger: Ledger,
    photos: PhotoObservations,
    detections: DetectionObservations,
    *,
    options: ReconcileOptions | None = None,
    crs: CRS | None = None,
) -> ReconcileResult:
    """Match a batch's photos and detections against the ledger.

    Args:
        ledger: assets and lines (see :mod:`vision.geo.ledger`).
        photos: one row per photo.
        detections: one row per detection; ``photo_index`` points into ``photos``.
        options: distances and thresholds.
        crs: metric CRS to work in; defaults to the UTM zone of the ledger.

    Returns:
        Per-asset status and evidence, unregistered assets, detection links, corridor hazards.

    Example:
        >>> from vision.geo.ledger import Ledger, LedgerAsset
        >>> ledger = Ledger((LedgerAsset("P1", "P1", None, 30.0, 120.0),), ())
        >>> photos = PhotoObservations.from_lists([(120.0, 30.0)], [(120.0, 30.0)])
        >>> reconcile(ledger, photos, DetectionObservations.empty()).counts()["inspected"]
        1
    """
    opts = options or ReconcileOptions()
    assets = ledger.assets
    a_lon = np.fromiter((a.lon for a in assets), dtype=np.float64, count=len(assets))
    a_lat = np.fromiter((a.lat for a in assets), dtype=np.float64, count=len(assets))
    if crs is None:
        crs = _default_crs(a_lon, a_lat, photos)
    to_m = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    to_wgs = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    a_xy = _project(to_m, a_lon, a_lat)
    tree = STRtree(shapely.points(a_xy)) if len(assets) else STRtree([])
    result = ReconcileResult(crs=crs, status=np.zeros(len(assets), dtype=np.int8),
                             in_view=np.zeros(len(assets), dtype=bool))
    ids = [a.identifier for a in assets]

    buffer_m = opts.view_buffer_m
    if buffer_m is None:
        buffer_m = max((ln.corridor_width_m for ln in ledger.lines), default=0.0) / 2.0
    photo_primary = _match_photos(result, tree, a_xy, to_m, photos, opts, buffer_m)
    result.photo_asset = [ids[i] if i >= 0 else None for i in photo_primary]

    n_det = len(detections)
    det_asset = np.full(n_det, -1, dtype=np.int64)  # ledger index, or -(2 + unregistered index)
    det_dist = np.full(n_det, np.nan)
    det_attach = np.zeros(n_det, dtype=np.int8)  # 0 none, 1 ground point, 2 photo
    d_xy = _project(to_m, detections.lon, detections.lat)

    observed_xy = _match_markers(
        result, tree, a_xy, d_xy, detections, det_asset, det_dist, det_attach, to_wgs, opts
    )
    _match_defects(result, tree, a_xy, observed_xy, d_xy, detections, det_asset, det_dist,
                   det_attach, opts)

    _attach_unplaced(detections, d_xy, photo_primary, det_asset, det_attach)
    _credit_detections(result, det_asset)

    unreg_ids = [u.asset_id for u in result.unregistered]
    result.detection_asset = [
        ids[i] if i >= 0 else (unreg_ids[-i - 2] if i <= -2 else None) for i in det_asset.tolist()
    ]
    result.detection_distance_m = det_dist
    names = ("none", "ground_point", "photo")
    result.detection_attach = [names[c] for c in det_attach.tolist()]
    _corridor(result, ledger, to_m, d_xy, detections)
    return result


def _default_crs(a_lon: FloatArray, a_lat: FloatArray, photos: PhotoObservations) -> CRS:
    """The UTM zone of the ledger's assets, else of the photos' cameras."""
    if len(a_lon):
        return metric_crs(a_lon, a_lat)
    return metric_crs(photos.camera_lon[np.isfinite(photos.camera_lon)],
                      photos.camera_lat[np.isfinite(photos.camera_lat)])


def _attach_unplaced(
    detections: DetectionObservations, d_xy: FloatArray, photo_primary: NDArray[np.int64],
    det_asset: NDArray[np.int64], det_attach: NDArray[np.int8],
) -> None:
    """Markers and defects without a ground point belong to what their photo shows."""
    unplaced = ~np.isfinite(d_xy).all(axis=1)
    for role in (ROLE_ASSET_MARKER, ROLE_DEFECT):
        rows = np.flatnonzero((detections.role == role) & unplaced)
        fallback = photo_primary[detections.photo_index[rows]] if rows.size else rows
        take = rows[fallback >= 0]
        det_asset[take] = fallback[fallback >= 0]
        det_attach[take] = 2


def _credit_detections(result: ReconcileResult, det_asset: NDArray[np.int64]) -> None:
    """Each ledger asset lists its detections; one with a detection counts as inspected."""
    for row in np.flatnonzero(det_asset >= 0):
        asset = int(det_asset[row])
        result.asset_detections.setdefault(asset, []).append(int(row))
        if result.status[asset] == UNINSPECTED:
            result.status[asset] = INSPECTED
    result.in_view |= result.status != UNINSPECTED


def _view_lines(camera: FloatArray, centre: FloatArray, max_range: float) -> FloatArray:
    """(N, 2, 2) segments from the camera's ground position towards its centre point.

    An oblique photo of a pole looks *over* it: the centre ray meets the ground behind the
    pole. What the photo shows lies along this line of sight, cut at ``max_range``.
    """
    delta = centre - camera
    length = np.hypot(delta[:, 0], delta[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(length > max_range, max_range / length, 1.0)
    end = camera + delta * scale[:, None]
    return np.stack([camera, end], axis=1)


def _view_areas(
    to_m: Transformer,
    camera: FloatArray,
    centre: FloatArray,
    photos: PhotoObservations,
    opts: ReconcileOptions,
) -> list[shapely.Geometry | None]:
    """Per photo, the ground it shows in metres (None when the photo has no position).

    A footprint (cut at ``max_footprint_range_m`` from the camera, widened by
    ``footprint_margin_m``) when the photo has one; else the line of sight widened by
    ``photo_tolerance_m``; else a disc of ``camera_tolerance_m`` round the camera.
    """
    n = len(photos)
    has_camera = np.isfinite(camera[:, 0]) & np.isfinite(camera[:, 1])
    has_view = has_camera & np.isfinite(centre[:, 0]) & np.isfinite(centre[:, 1])
    lines = _view_lines(camera, np.where(has_view[:, None], centre, camera),
                        opts.max_view_range_m)
    areas: list[shapely.Geometry | None] = [None] * n
    for i in range(n):
        if not has_camera[i]:
            continue
        ring = photos.footprints[i] if i < len(photos.footprints) else None
        if ring is not None and len(ring) >= 4:
            pts = np.asarray(ring, dtype=np.float64)
            xy = _project(to_m, pts[:, 0], pts[:, 1])
            if np.isfinite(xy).all():
                poly = shapely.make_valid(shapely.polygons(xy))
                disc = shapely.buffer(shapely.points(camera[i]), opts.max_footprint_range_m)
                area = shapely.intersection(poly, disc)
                if not area.is_empty:
                    areas[i] = shapely.buffer(area, opts.footprint_margin_m)
                    continue
        if has_view[i]:
            areas[i] = shapely.buffer(shapely.linestrings(lines[i]), opts.photo_tolerance_m)
        else:
            areas[i] = shapely.buffer(shapely.points(camera[i]), opts.camera_tolerance_m)
    return areas


def _match_photos(
    result: ReconcileResult,
    tree: STRtree,
    a_xy: FloatArray,
    to_m: Transformer,
    photos: PhotoObservations,
    opts: ReconcileOptions,
    buffer_m: float,
) -> IntArray:
    centre = _project(to_m, photos.center_lon, photos.center_lat)
    camera = _project(to_m, photos.camera_lon, photos.camera_lat)
    n = len(photos)
    primary = np.full(n, -1, dtype=np.int64)
    areas = _view_areas(to_m, camera, centre, photos, opts)
    rows = np.asarray([i for i, a in enumerate(areas) if a is not None], dtype=np.int64)
    if rows.size == 0 or len(tree) == 0:
        return primary
    geoms = np.asarray([areas[i] for i in rows.tolist()], dtype=object)
    q, asset = tree.query(geoms, predicate="intersects")
    q, asset = q.astype(np.int64), asset.astype(np.int64)
    photo = rows[q]
    # The photo's asset is the one nearest the centre of its view (the camera when unknown).
    has_centre = np.isfinite(centre[:, 0]) & np.isfinite(centre[:, 1])
    ref = np.where(has_centre[:, None], centre, camera)
    delta = a_xy[asset] - ref[photo]
    dist = np.hypot(delta[:, 0], delta[:, 1])
    if photo.size:
        p_rows, best, _ = _min_per_query(photo, asset, dist)
        primary[p_rows] = best
    order = np.lexsort((photo, asset))
    seen: set[tuple[int, int]] = set()
    for k in order.tolist():
        key = (int(asset[k]), int(photo[k]))
        if key not in seen:
            seen.add(key)
            result.asset_photos.setdefault(key[0], []).append(key[1])
    result.status[np.unique(asset)] = INSPECTED
    # Where the flight looked: the view areas widened by the corridor buffer.
    widened = shapely.buffer(geoms, buffer_m) if buffer_m > 0 else geoms
    _, looked = tree.query(widened, predicate="intersects")
    result.in_view[looked.astype(np.int64)] = True
    return primary


def _match_markers(
    result: ReconcileResult,
    tree: STRtree,
    a_xy: FloatArray,
    d_xy: FloatArray,
    det: DetectionObservations,
    det_asset: IntArray,
    det_dist: FloatArray,
    det_attach: NDArray[np.int8],
    to_wgs: Transformer,
    opts: ReconcileOptions,
) -> dict[int, FloatArray]:
    """Cluster asset markers, match clusters to assets; returns observed xy per ledger asset."""
    rows = np.flatnonzero((det.role == ROLE_ASSET_MARKER) & np.isfinite(d_xy).all(axis=1))
    observed: dict[int, FloatArray] = {}
    if rows.size == 0:
        return observed
    labels = _clusters(d_xy[rows], opts.cluster_radius_m)
    k = int(labels.max()) + 1
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    cx = np.bincount(labels, weights=d_xy[rows, 0], minlength=k) / counts
    cy = np.bincount(labels, weights=d_xy[rows, 1], minlength=k) / counts
    centres = np.column_stack([cx, cy])
    nearest, dist = _nearest(tree, centres, opts.mismatch_search_m, a_xy)
    c_lon, c_lat = (np.asarray(v, dtype=np.float64) for v in to_wgs.transform(cx, cy))
    # Per-cluster statistics in numpy: member lists, distinct photos, spread of sightings.
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    member_rows = rows[order]
    pairs = np.unique(np.column_stack([labels, det.photo_index[rows]]), axis=0)
    n_photos = np.bincount(pairs[:, 0], minlength=k)
    dev = d_xy[rows] - centres[labels]
    rms = np.sqrt(np.bincount(labels, weights=np.sum(dev**2, axis=1), minlength=k) / counts)
    std_err = rms / np.sqrt(counts)
    claimed: set[int] = set()
    # Closest clusters claim their asset first: a second cluster near the same asset is
    # another asset (an unregistered pole beside a registered one).
    for c in np.argsort(dist, kind="stable").tolist():
        mem = member_rows[bounds[c]:bounds[c + 1]]
        asset = int(nearest[c])
        photos = int(n_photos[c])
        if asset >= 0 and asset not in claimed:
            claimed.add(asset)
            offset = float(dist[c])
            consistent = (
                offset > opts.position_tolerance_m
                and len(mem) >= opts.min_sightings
                and photos >= 2
                and offset > 2.0 * float(std_err[c])
            )
            if consistent:
                result.status[asset] = POSITION_MISMATCH
            elif result.status[asset] == UNINSPECTED:
                result.status[asset] = INSPECTED
            lon, lat = c_lon[c], c_lat[c]
            result.sightings[asset] = Sighting(float(lon), float(lat), offset, len(mem), photos)
            observed[asset] = centres[c]
            det_asset[mem] = asset
            det_dist[mem] = np.hypot(*(d_xy[mem] - a_xy[asset]).T)
            det_attach[mem] = 1
        elif len(mem) >= opts.min_unregistered_sightings and photos >= min(
            2, opts.min_unregistered_sightings
        ):
            lon, lat = c_lon[c], c_lat[c]
            det_ids = tuple(sorted(mem.tolist()))
            index = len(result.unregistered)
            result.unregistered.append(
                UnregisteredAsset(
                    asset_id="UNREG-" + stable_id("unregistered", round(float(lon), 6),
                                                  round(float(lat), 6))[:12],
                    lon=float(lon),
                    lat=float(lat),
                    detection_indices=det_ids,
                    photo_indices=tuple(sorted(set(det.photo_index[mem].tolist()))),
                )
            )
            det_asset[mem] = -(2 + index)
            det_dist[mem] = np.hypot(*(d_xy[mem] - centres[c]).T)
            det_attach[mem] = 1
    return observed


def _match_defects(
    result: ReconcileResult,
    tree: STRtree,
    a_xy: FloatArray,
    observed: dict[int, FloatArray],
    d_xy: FloatArray,
    det: DetectionObservations,
    det_asset: IntArray,
    det_dist: FloatArray,
    det_attach: NDArray[np.int8],
    opts: ReconcileOptions,
) -> None:
    rows = np.flatnonzero((det.role == ROLE_DEFECT) & np.isfinite(d_xy).all(axis=1))
    if rows.size == 0:
        return
    unc = np.nan_to_num(det.uncertainty_m[rows], nan=0.0)
    tol = np.clip(opts.detection_tolerance_m + unc, opts.detection_tolerance_m,
                  opts.max_detection_tolerance_m)
    best, best_d = _nearest(tree, d_xy[rows], opts.max_detection_tolerance_m, a_xy)
    # Where an asset was seen away from its ledger point, its defects are near where it was
    # seen; unregistered assets only exist where they were seen.
    extra_xy: list[FloatArray] = []
    extra_ref: list[int] = []
    for asset, xy in observed.items():
        extra_xy.append(xy)
        extra_ref.append(asset)
    for i, u in enumerate(result.unregistered):
        members = d_xy[list(u.detection_indices)]
        extra_xy.append(members.mean(axis=0))
        extra_ref.append(-(2 + i))
    if extra_xy:
        extra = np.vstack(extra_xy)
        extra_tree = STRtree(shapely.points(extra))
        alt, alt_d = _nearest(extra_tree, d_xy[rows], opts.max_detection_tolerance_m, extra)
        better = (alt >= 0) & (alt_d < best_d)
        refs = np.asarray(extra_ref, dtype=np.int64)
        best = np.where(better, refs[np.maximum(alt, 0)], best)
        best_d = np.where(better, alt_d, best_d)
    ok = (best != -1) & (best_d <= tol)
    det_asset[rows[ok]] = best[ok]
    det_dist[rows[ok]] = best_d[ok]
    det_attach[rows[ok]] = 1


def _corridor(
    result: ReconcileResult,
    ledger: Ledger,
    to_m: Transformer,
    d_xy: FloatArray,
    det: DetectionObservations,
) -> None:
    hazard = det.role == ROLE_CORRIDOR_HAZARD
    rows = np.flatnonzero(hazard & np.isfinite(d_xy).all(axis=1))
    result.unplaced_hazards = int(np.count_nonzero(hazard)) - int(rows.size)
    if rows.size == 0 or not ledger.lines:
        return
    # One projection call for every vertex of every line part, then split back per part;
    # each part keeps the index of its line.
    parts = [(i, part) for i, line in enumerate(ledger.lines) for part in line.parts]
    flat = np.array([c for _, part in parts for c in part], dtype=np.float64)
    xs, ys = to_m.transform(flat[:, 0], flat[:, 1])
    part_of = np.repeat(np.arange(len(parts)), [len(part) for _, part in parts])
    geoms = shapely.linestrings(np.column_stack([xs, ys]), indices=part_of)
    part_line = np.array([i for i, _ in parts], dtype=np.int64)
    half = np.array([ledger.lines[i].corridor_width_m / 2.0 for i, _ in parts])
    tree = STRtree(geoms)
    pts = shapely.points(d_xy[rows])
    p_idx, l_idx = tree.query(pts, predicate="dwithin", distance=float(half.max()))
    if p_idx.size == 0:
        return
    dist = shapely.distance(pts[p_idx], geoms[l_idx])
    inside = dist <= half[l_idx]
    best: dict[int, tuple[float, int]] = {}
    lines_hit = part_line[l_idx[inside]]
    for p, ln, d in zip(p_idx[inside].tolist(), lines_hit.tolist(), dist[inside].tolist(),
                        strict=True):
        if p not in best or d < best[p][0]:
            best[p] = (d, ln)
    for p in sorted(best):
        d, ln = best[p]
        line = ledger.lines[ln]
        result.hazards.append(CorridorHazard(int(rows[p]), line.identifier, float(d),
                                             line.corridor_width_m))


# ----------------------------------------------------------------------------- unlocated photos
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class FlightOptions:
    """How a photo without a position takes one from its flight; defaults are [U] practice.

    A photo is placed between the positioned photos of the same flight (same batch and camera
    model) taken just before and after it, by capture time, when both are within
    ``max_gap_s``; else at the nearer one within ``max_gap_s``. Its uncertainty is the
    neighbours' plus what the aircraft may have moved unseen: ``interpolation_share`` of the
    distance between the neighbours, or ``speed_m_s`` times the time to the one neighbour.
    """

    max_gap_s: float = 60.0
    base_uncertainty_m: float = 5.0
    interpolation_share: float = 0.5
    speed_m_s: float = 10.0


def locate_from_flight(
    photos: Sequence[PhotoRecord], options: FlightOptions | None = None
) -> list[PhotoRecord]:
    """Give photos without a position one interpolated from their flight (see FlightOptions).

    Photos with a position, and those with no capture time or no positioned neighbour in
    time, are returned as they are. A placed photo gets ``position_from_flight``, a larger
    ``uncertainty_m`` and a problem saying so.

    Example:
        >>> from datetime import datetime
        >>> def ph(i, s, pos):
        ...     return PhotoRecord(id=str(i), batch_id="b", photo_id=str(i) * 64, path=f"{i}.jpg",
        ...         width_px=1, height_px=1, captured_at=datetime(2025, 1, 1, 8, 0, s),
        ...         camera=GeoPoint(lat=30.0, lon=pos) if pos is not None else None)
        >>> out = locate_from_flight([ph(1, 0, 120.0), ph(2, 10, None), ph(3, 20, 120.001)])
        >>> round(out[1].camera.lon, 4), out[1].position_from_flight
        (120.0005, True)
    """
    opts = options or FlightOptions()
    out = list(photos)
    flights: dict[tuple[str, str | None], list[int]] = {}
    for i, p in enumerate(out):
        if p.captured_at is not None:
            flights.setdefault((p.batch_id, p.camera_model), []).append(i)
    for members in flights.values():
        members.sort(key=lambda i: (_stamp(out[i]), out[i].photo_id))
        placed = [i for i in members if out[i].camera is not None]
        if not placed:
            continue
        times = np.array([_stamp(out[i]) for i in placed])
        for i in members:
            if out[i].camera is not None:
                continue
            t = _stamp(out[i])
            k = int(np.searchsorted(times, t))
            before = placed[k - 1] if k > 0 and t - times[k - 1] <= opts.max_gap_s else None
            after = placed[k] if k < len(placed) and times[k] - t <= opts.max_gap_s else None
            located = _between(out, before, after, t, opts)
            if located is not None:
                point, sigma = located
                out[i] = out[i].model_copy(update={
                    "camera": point,
                    "uncertainty_m": round(sigma, 2),
                    "position_from_flight": True,
                    "problems": [*out[i].problems,
                                 f"no position of its own: placed from its flight "
                                 f"(±{sigma:.0f} m)"],
                })
    return out


def _stamp(p: PhotoRecord) -> float:
    assert p.captured_at is not None
    return p.captured_at.timestamp()


def _sigma(p: PhotoRecord, opts: FlightOptions) -> float:
    return max(p.uncertainty_m or 0.0, opts.base_uncertainty_m)


def _between(
    photos: list[PhotoRecord], before: int | None, after: int | None, t: float,
    opts: FlightOptions,
) -> tuple[GeoPoint, float] | None:
    a = photos[before] if before is not None else None
    b = photos[after] if after is not None else None
    if a is not None and b is not None and a.camera is not None and b.camera is not None:
        ta, tb = _stamp(a), _stamp(b)
        share = 0.5 if tb == ta else (t - ta) / (tb - ta)
        az, _, dist = _GEOD.inv(a.camera.lon, a.camera.lat, b.camera.lon, b.camera.lat)
        lon, lat, _ = _GEOD.fwd(a.camera.lon, a.camera.lat, az, dist * share)
        sigma = max(_sigma(a, opts), _sigma(b, opts)) + opts.interpolation_share * dist
        return GeoPoint(lat=float(lat), lon=float(lon)), float(sigma)
    one = a if a is not None else b
    if one is None or one.camera is None:
        return None
    sigma = _sigma(one, opts) + opts.speed_m_s * abs(t - _stamp(one))
    return one.camera, float(sigma)
