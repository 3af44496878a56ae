"""Ledger reconciliation on synthetic batches laid out in metres around a fixed origin."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from pyproj import Geod

from vision.geo.ledger import Ledger, LedgerAsset, LedgerLine
from vision.geo.reconcile import (
    ROLE_CODES,
    DetectionObservations,
    PhotoObservations,
    ReconcileOptions,
    ReconcileResult,
    reconcile,
)
from vision.records import GeoPoint, PhotoRecord

GEOD = Geod(ellps="WGS84")
ORIGIN = (120.0, 30.0)  # lon, lat


def at(east: float, north: float) -> tuple[float, float]:
    """(lon, lat) of a point ``east``/``north`` metres from the origin."""
    dist = float(np.hypot(east, north))
    az = float(np.degrees(np.arctan2(east, north)))
    lon, lat, _ = GEOD.fwd(ORIGIN[0], ORIGIN[1], az, dist)
    return float(lon), float(lat)


def metres_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def make_ledger(width_m: float = 20.0) -> Ledger:
    """Three poles 50 m apart along a line running east."""
    poles = [at(0, 0), at(50, 0), at(100, 0)]
    assets = tuple(
        LedgerAsset(f"P{i}", f"Pole {i}", "L1", lat, lon) for i, (lon, lat) in enumerate(poles)
    )
    line = LedgerLine("L1", "Line 1", (at(-20, 0), *poles, at(120, 0)), corridor_width_m=width_m)
    return Ledger(assets, (line,))


def nadir_photos(*points: tuple[float, float]) -> PhotoObservations:
    return PhotoObservations.from_lists(list(points), list(points))


def detections(rows: list[tuple[int, str, tuple[float, float] | None]]) -> DetectionObservations:
    """Rows of (photo index, role, ground (lon, lat) or None)."""
    ground = [g if g is not None else (np.nan, np.nan) for _, _, g in rows]
    return DetectionObservations(
        photo_index=np.array([r[0] for r in rows], dtype=np.int64),
        role=np.array([ROLE_CODES[r[1]] for r in rows], dtype=np.int8),
        severity=np.array([2 if r[1] == "defect" else 0 for r in rows], dtype=np.int16),
        lon=np.array([g[0] for g in ground], dtype=np.float64),
        lat=np.array([g[1] for g in ground], dtype=np.float64),
        uncertainty_m=np.full(len(rows), 3.0),
    )


def status_of(result: ReconcileResult, ledger: Ledger) -> dict[str, str]:
    names = ("uninspected", "inspected", "position_mismatch")
    return {a.identifier: names[int(s)] for a, s in zip(ledger.assets, result.status, strict=True)}


def test_asset_without_a_photo_near_is_uninspected() -> None:
    ledger = make_ledger()
    photos = nadir_photos(at(2, 3), at(48, -4))

    result = reconcile(ledger, photos, DetectionObservations.empty())

    assert status_of(result, ledger) == {"P0": "inspected", "P1": "inspected", "P2": "uninspected"}
    assert result.photo_asset == ["P0", "P1"]
    assert result.asset_photos[0] == [0]


def test_oblique_photo_inspects_the_pole_it_looks_over() -> None:
    ledger = make_ledger()
    # Camera 30 m south of P2 looking north; the centre ray lands 90 m beyond, behind it.
    photos = PhotoObservations.from_lists([at(100, -30)], [at(100, 60)])

    result = reconcile(ledger, photos, DetectionObservations.empty())

    assert result.photo_asset == ["P2"]
    assert status_of(result, ledger)["P2"] == "inspected"
    assert status_of(result, ledger)["P0"] == "uninspected"


def test_markers_far_from_the_ledger_are_one_unregistered_asset() -> None:
    ledger = make_ledger()
    spot = (200.0, 40.0)
    photos = nadir_photos(at(200, 38), at(203, 41), at(0, 0))
    dets = detections([
        (0, "asset_marker", at(spot[0] + 1, spot[1])),
        (1, "asset_marker", at(spot[0] - 1, spot[1] + 1)),
        (1, "asset_marker", at(spot[0], spot[1] - 1)),
        # A single stray sighting elsewhere is not enough evidence.
        (2, "asset_marker", at(-150, 80)),
    ])

    result = reconcile(ledger, photos, dets)

    assert len(result.unregistered) == 1
    unreg = result.unregistered[0]
    assert metres_between((unreg.lon, unreg.lat), at(*spot)) < 1.0
    assert unreg.photo_indices == (0, 1)
    assert result.detection_asset[:3] == [unreg.asset_id] * 3
    assert result.detection_asset[3] is None


def test_consistent_offset_is_a_position_mismatch() -> None:
    ledger = make_ledger()
    photos = nadir_photos(at(50, 15), at(52, 14), at(49, 17), at(1, 1))
    seen_at = (50.0, 15.0)  # P1 is really 15 m north of its ledger point
    jitter = [(0.5, 0.3), (-0.4, 0.6), (0.2, -0.5), (-0.3, -0.2)]
    rows: list[tuple[int, str, tuple[float, float] | None]] = [
        (k % 3, "asset_marker", at(seen_at[0] + dx, seen_at[1] + dy))
        for k, (dx, dy) in enumerate(jitter)
    ]
    # P0's markers sit 2 m from its ledger point: inside the tolerance.
    rows += [(3, "asset_marker", at(2, 0)), (3, "asset_marker", at(1.5, 0.5)),
             (3, "asset_marker", at(2, -0.5))]

    result = reconcile(ledger, photos, detections(rows))

    status = status_of(result, ledger)
    assert status["P1"] == "position_mismatch"
    assert status["P0"] == "inspected"
    assert result.sightings[1].offset_m == pytest.approx(15.0, abs=0.5)
    assert result.sightings[1].sightings == 4
    assert result.unregistered == []


def test_scattered_sightings_are_not_called_a_mismatch() -> None:
    ledger = make_ledger()
    photos = nadir_photos(at(50, 10))
    # Two sightings from one photo only: too little evidence for a mismatch.
    dets = detections([(0, "asset_marker", at(50, 12)), (0, "asset_marker", at(51, 13))])

    result = reconcile(ledger, photos, dets)

    assert status_of(result, ledger)["P1"] == "inspected"


def test_defects_attach_to_the_nearest_asset_or_their_photo() -> None:
    ledger = make_ledger()
    photos = nadir_photos(at(0, 0), at(100, 2))
    dets = detections([
        (0, "defect", at(3, 2)),
        (1, "defect", None),  # not geo-referenced: belongs to what photo 1 shows
        (0, "defect", at(25, 60)),  # far from everything
    ])

    result = reconcile(ledger, photos, dets)

    assert result.detection_asset == ["P0", "P2", None]
    assert result.detection_attach == ["ground_point", "photo", "none"]
    assert result.detection_distance_m[0] == pytest.approx(np.hypot(3, 2), abs=0.1)
    assert result.asset_detections[0] == [0]


def test_corridor_hazards_inside_the_buffer_with_distance() -> None:
    ledger = make_ledger(width_m=20.0)
    photos = nadir_photos(at(30, 0))
    dets = detections([
        (0, "corridor_hazard", at(30, 6)),  # 6 m from the line: inside 10 m half width
        (0, "corridor_hazard", at(30, -15)),  # outside
        (0, "corridor_hazard", None),  # cannot be placed
    ])

    result = reconcile(ledger, photos, dets)

    assert len(result.hazards) == 1
    hazard = result.hazards[0]
    assert (hazard.detection_index, hazard.line_id) == (0, "L1")
    assert hazard.distance_m == pytest.approx(6.0, abs=0.1)
    assert result.unplaced_hazards == 1


def test_options_change_the_tolerances() -> None:
    ledger = make_ledger()
    photos = nadir_photos(at(0, 20))

    loose = reconcile(ledger, photos, DetectionObservations.empty())
    strict = reconcile(ledger, photos, DetectionObservations.empty(),
                       options=ReconcileOptions(photo_tolerance_m=10.0))

    assert loose.photo_asset == ["P0"]
    assert strict.photo_asset == [None]
    assert strict.counts()["uninspected"] == 3


def test_defect_near_where_a_misplaced_asset_was_seen_attaches_to_it() -> None:
    ledger = make_ledger()
    photos = nadir_photos(at(50, 15), at(52, 14), at(49, 17))
    rows: list[tuple[int, str, tuple[float, float] | None]] = [
        (k % 3, "asset_marker", at(50 + dx, 15 + dy))
        for k, (dx, dy) in enumerate([(0.5, 0.3), (-0.4, 0.6), (0.2, -0.5), (-0.3, -0.2)])
    ]
    # 17 m from P1's ledger point (beyond the 13 m tolerance), 2 m from where P1 was seen.
    rows.append((1, "defect", at(50, 17)))

    result = reconcile(ledger, photos, detections(rows))

    assert result.detection_asset[-1] == "P1"
    assert result.detection_distance_m[-1] == pytest.approx(2.0, abs=0.6)
    assert 4 in result.asset_detections[1]


def test_hazard_near_the_branch_of_a_multipart_line_is_found() -> None:
    ledger = make_ledger()
    branch = (at(50, 0), at(50, 100))  # a spur running north from P1
    line = ledger.lines[0]
    branched = Ledger(ledger.assets, (LedgerLine(line.identifier, line.name, line.coords,
                                                 corridor_width_m=20.0,
                                                 extra_parts=(branch,)),))
    photos = nadir_photos(at(50, 60))
    dets = detections([(0, "corridor_hazard", at(54, 70))])  # 4 m east of the spur

    result = reconcile(branched, photos, dets)

    assert [(h.line_id, round(h.distance_m)) for h in result.hazards] == [("L1", 4)]


def square(cx: float, cy: float, half: float) -> list[tuple[float, float]]:
    """A footprint ring (lon, lat) of a square ``half`` metres round (cx, cy) metres."""
    ring = [at(cx - half, cy - half), at(cx + half, cy - half), at(cx + half, cy + half),
            at(cx - half, cy + half)]
    return [*ring, ring[0]]


def big_ledger(rows: int = 40, cols: int = 50, spacing: float = 50.0) -> Ledger:
    """rows x cols poles (2,000 by default), ``spacing`` metres apart, one line per row."""
    assets = []
    lines = []
    for r in range(rows):
        ident = f"L{r}"
        pts = [at(c * spacing, r * spacing) for c in range(cols)]
        lines.append(LedgerLine(ident, ident, tuple(pts), corridor_width_m=20.0))
        assets += [LedgerAsset(f"P{r}-{c}", f"P{r}-{c}", ident, lat, lon)
                   for c, (lon, lat) in enumerate(pts)]
    return Ledger(tuple(assets), tuple(lines))


def test_uninspected_only_inside_the_footprints_plus_corridor_buffer() -> None:
    ledger = big_ledger()
    assert len(ledger.assets) == 2000
    # Three nadir photos, footprints 60 m square, each round one pole; margin (5 m) plus the
    # corridor buffer (half of 20 m) reach 45 m, short of the neighbours 50 m away.
    centres = [(100.0, 100.0), (500.0, 500.0), (1000.0, 1000.0)]
    photos = PhotoObservations.from_lists(
        [at(*c) for c in centres], [at(*c) for c in centres],
        [square(x, y, 30.0) for x, y in centres],
    )

    result = reconcile(ledger, photos, DetectionObservations.empty())

    ids = [a.identifier for a in ledger.assets]
    inspected = {ids[i] for i in np.flatnonzero(result.status == 1)}
    in_view = {ids[i] for i in np.flatnonzero(result.in_view)}
    assert inspected == {"P2-2", "P10-10", "P20-20"}
    assert in_view == inspected
    assert result.counts()["not_flown"] == 1997
    assert result.counts()["uninspected"] == 1997


def test_uninspected_tasks_are_raised_only_for_assets_in_view() -> None:
    from vision.geo.report import build_records
    from vision.records import PhotoRecord

    ledger = big_ledger(rows=4, cols=10)
    # A footprint from 73 to 137 m east: P0-3 at 150 m is within the margin (5 m) plus the
    # corridor buffer (10 m); P0-1 at 50 m and the next row 50 m north are not.
    photos = PhotoObservations.from_lists([at(105, 0)], [at(105, 0)], [square(105, 0, 32.0)])
    result = reconcile(ledger, photos, DetectionObservations.empty())
    record = PhotoRecord(id="p", batch_id="b", photo_id="0" * 64, path="a.jpg", width_px=10,
                         height_px=10)

    out = build_records("b", ledger, [record], [], result)

    uninspected = {i.asset_id for i in out.issues if i.issue == "uninspected"}
    assert uninspected == {"P0-3"}
    assert {a.asset_id for a in out.assets if a.status == "inspected"} == {"P0-2"}
    # Re-running gives the same issue ids (an importer upserts on them).
    again = build_records("b", ledger, [record], [], result)
    assert [i.id for i in again.issues] == [i.id for i in out.issues]


def test_oblique_photo_credits_the_pole_it_looks_at_not_the_one_under_it() -> None:
    ledger = make_ledger()
    # The drone hovers over P1 looking east: the footprint starts 20 m ahead and ends 70 m
    # ahead, centred on P2 at 50 m.
    ring = [at(70, -20), at(120, -30), at(120, 30), at(70, 20)]
    photos = PhotoObservations.from_lists([at(50, 0)], [at(100, 0)], [[*ring, ring[0]]])

    result = reconcile(ledger, photos, DetectionObservations.empty())

    assert result.photo_asset == ["P2"]
    assert status_of(result, ledger) == {"P0": "uninspected", "P1": "uninspected",
                                         "P2": "inspected"}


def _flight_photo(i: int, second: int, where: tuple[float, float] | None,
                  model: str = "FC6310", sigma: float | None = 3.0) -> PhotoRecord:
    return PhotoRecord(
        id=f"p{i}", batch_id="b", photo_id=f"{i:064d}", path=f"DJI_{i:04d}.JPG", width_px=10,
        height_px=10, captured_at=datetime(2025, 5, 1, 9, 0, second), camera_model=model,
        camera=GeoPoint(lon=where[0], lat=where[1]) if where else None,
        uncertainty_m=sigma if where else None,
    )


def test_a_photo_without_position_is_placed_between_its_flight_neighbours() -> None:
    from vision.geo.reconcile import locate_from_flight

    photos = [_flight_photo(1, 0, at(0, 0)), _flight_photo(2, 10, None),
              _flight_photo(3, 40, at(40, 0))]

    out = locate_from_flight(photos)

    placed = out[1]
    assert placed.position_from_flight and placed.camera is not None
    # A quarter of the way in time: 10 m east, on the line between the neighbours.
    assert metres_between((placed.camera.lon, placed.camera.lat), at(10, 0)) < 0.01
    # Larger than the neighbours' 3 m: 5 m floor plus half the 40 m between them.
    assert placed.uncertainty_m == pytest.approx(25.0, abs=0.01)
    assert any("placed from its flight" in p for p in placed.problems)
    assert out[0] == photos[0] and out[2] == photos[2]  # positioned photos untouched


def test_only_the_same_flight_within_the_time_gap_places_a_photo() -> None:
    from vision.geo.reconcile import FlightOptions, locate_from_flight

    photos = [
        _flight_photo(1, 0, at(0, 0)),
        _flight_photo(2, 5, None, model="ZH20T"),  # another camera: another flight
        _flight_photo(3, 59, None),  # one neighbour only, 4 s after it
        _flight_photo(4, 55, at(100, 0)),
    ]
    no_time = _flight_photo(5, 0, None).model_copy(update={"captured_at": None})

    out = locate_from_flight([*photos, no_time], FlightOptions(max_gap_s=30.0))

    assert out[1].camera is None and not out[1].position_from_flight
    assert out[4].camera is None
    one_sided = out[2]
    assert one_sided.camera == photos[3].camera
    assert one_sided.uncertainty_m == pytest.approx(5.0 + 10.0 * 4, abs=0.01)


def test_a_defect_on_a_placed_photo_reaches_the_pole_it_was_taken_at() -> None:
    from vision.geo.reconcile import locate_from_flight

    ledger = make_ledger()
    photos = locate_from_flight([_flight_photo(1, 0, at(0, 2)), _flight_photo(2, 20, None),
                                 _flight_photo(3, 40, at(100, 2))])
    obs = PhotoObservations.from_lists(
        [(p.camera.lon, p.camera.lat) if p.camera else None for p in photos],
        [None, None, None],
    )

    result = reconcile(ledger, obs, detections([(1, "defect", None)]))

    assert result.photo_asset == ["P0", "P1", "P2"]
    assert result.detection_asset == ["P1"] and result.detection_attach == ["photo"]
