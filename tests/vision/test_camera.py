"""Camera-to-ground projection on synthetic poses with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pyproj import Geod

from vision.errors import GeoreferenceError
from vision.geo.camera import Camera, Intrinsics, Pose, camera_for, pose_for
from vision.geo.metadata import read_metadata

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "drone"
GEOD = Geod(ellps="WGS84")
K = Intrinsics(focal_px=1000.0, width_px=1000, height_px=800)


def _offset_m(cam: Camera, lat: float, lon: float) -> tuple[float, float]:
    """(east, north) metres of a WGS84 point from the camera, measured on the ellipsoid."""
    az, _, dist = GEOD.inv(cam.pose.lon, cam.pose.lat, lon, lat)
    return dist * math.sin(math.radians(az)), dist * math.cos(math.radians(az))


def test_nadir_centre_is_below_the_camera_and_edges_scale_with_height() -> None:
    cam = Camera(K, Pose(lat=31.2, lon=121.5, height_above_ground_m=50.0, yaw_deg=0, pitch_deg=-90))

    centre = cam.centre()
    right_edge = cam.ground_point(1000.0, 400.0)
    top_edge = cam.ground_point(500.0, 0.0)

    assert centre.distance_m == pytest.approx(0.0, abs=1e-6)
    assert centre.lat == pytest.approx(31.2)
    assert centre.lon == pytest.approx(121.5)
    # Half width 500 px at f=1000 px is 0.5 * height.
    assert _offset_m(cam, right_edge.lat, right_edge.lon) == pytest.approx((25.0, 0.0), abs=0.01)
    # The image top points along the gimbal heading (north at yaw 0).
    assert _offset_m(cam, top_edge.lat, top_edge.lon) == pytest.approx((0.0, 20.0), abs=0.01)


def test_oblique_centre_lands_at_height_over_tan_pitch() -> None:
    cam = Camera(K, Pose(lat=40.0, lon=-80.0, height_above_ground_m=30.0, yaw_deg=0, pitch_deg=-30))

    point = cam.centre()

    expected = 30.0 / math.tan(math.radians(30.0))
    assert _offset_m(cam, point.lat, point.lon) == pytest.approx((0.0, expected), abs=0.01)


@pytest.mark.parametrize(
    ("yaw", "east", "north"),
    [(45.0, 1, 1), (135.0, 1, -1), (-135.0, -1, -1), (-45.0, -1, 1), (225.0, -1, -1)],
)
def test_gimbal_yaw_turns_the_view_in_every_quadrant(yaw: float, east: int, north: int) -> None:
    cam = Camera(K, Pose(22.5, 114.0, height_above_ground_m=40.0, yaw_deg=yaw, pitch_deg=-45))

    point = cam.centre()

    leg = 40.0 / math.sqrt(2.0)
    got = _offset_m(cam, point.lat, point.lon)
    assert got == pytest.approx((east * leg, north * leg), abs=0.01)


def test_uncertainty_grows_as_the_pitch_gets_shallow() -> None:
    sigmas = [
        Camera(K, Pose(30.0, 120.0, 40.0, 0.0, pitch)).centre().uncertainty_m
        for pitch in (-90.0, -60.0, -40.0, -25.0, -15.0)
    ]

    assert sigmas == sorted(sigmas)
    assert sigmas[-1] > 3 * sigmas[0]


@pytest.mark.parametrize("pitch", [-5.0, 0.0, 10.0])
def test_pitch_near_horizontal_is_refused(pitch: float) -> None:
    cam = Camera(K, Pose(30.0, 120.0, 40.0, 0.0, pitch), min_depression_deg=10.0)

    with pytest.raises(GeoreferenceError, match="horizontal"):
        cam.centre()


def test_roll_turns_the_image_about_the_optical_axis() -> None:
    # Gimbal roll is about the camera's viewing axis; positive lowers the right side, so at
    # nadir with yaw 0 the right-edge pixel swings from due east towards the south.
    cam = Camera(K, Pose(30.0, 120.0, 50.0, 0.0, -90.0, roll_deg=10.0))

    point = cam.ground_point(1000.0, 400.0)

    roll = math.radians(10.0)
    expected = (25.0 * math.cos(roll), -25.0 * math.sin(roll))
    assert _offset_m(cam, point.lat, point.lon) == pytest.approx(expected, abs=0.01)
    assert cam.centre().distance_m == pytest.approx(0.0, abs=1e-6)


def test_fixture_pose_uses_gimbal_yaw_not_flight_yaw() -> None:
    meta = read_metadata(FIXTURES / "h20t_oblique.jpg")

    pose = pose_for(meta)

    assert pose.yaw_deg == pytest.approx(32.5)  # GimbalYawDegree; FlightYawDegree is 30.3
    assert pose.height_above_ground_m == pytest.approx(16.508)


def test_ground_elevation_replaces_relative_altitude() -> None:
    meta = read_metadata(FIXTURES / "phantom3_nadir_0018.jpg")

    pose = pose_for(meta, ground_elevation_m=170.0)

    assert pose.height_above_ground_m == pytest.approx(198.31 - 170.0)


def test_thumbnail_keeps_the_field_of_view_of_the_full_photo() -> None:
    meta = read_metadata(FIXTURES / "phantom3_nadir_0018.jpg")

    cam = camera_for(meta)

    # FC300S: 3.61 mm on a 6.17 mm wide sensor spans the full width, whatever the pixel count.
    assert cam.intrinsics.focal_px / cam.intrinsics.width_px == pytest.approx(3.61 / 6.17)


def test_photo_without_attitude_cannot_be_posed() -> None:
    meta = read_metadata(FIXTURES / "xts_no_dji_xmp.jpg")

    with pytest.raises(GeoreferenceError, match="gimbal"):
        camera_for(meta)


def test_footprint_is_closed_and_surrounds_the_nadir_point() -> None:
    from shapely.geometry import Point, Polygon

    cam = Camera(K, Pose(30.0, 120.0, 50.0, 30.0, -90.0))

    ring = cam.footprint()

    assert ring[0] == ring[-1]
    assert Polygon(ring).contains(Point(120.0, 30.0))


def test_nadir_footprint_is_the_four_ground_corners() -> None:
    cam = Camera(K, Pose(30.0, 120.0, 50.0, 0.0, -90.0))

    ring = cam.footprint()

    assert len(ring) == 5
    offsets = [_offset_m(cam, lat, lon) for lon, lat in ring[:4]]
    expected = [(-25.0, 20.0), (25.0, 20.0), (25.0, -20.0), (-25.0, -20.0)]
    for got, want in zip(offsets, expected, strict=True):
        assert got == pytest.approx(want, abs=0.01)


def test_oblique_footprint_is_cut_at_max_range() -> None:
    # Pitch -15° with a ±21.8° vertical field of view: the top of the image shows sky.
    cam = Camera(K, Pose(30.0, 120.0, 50.0, 0.0, -15.0))

    ring = cam.footprint(max_range_m=300.0)

    far = max(_offset_m(cam, lat, lon)[1] for lon, lat in ring)
    assert far == pytest.approx(300.0, rel=0.01)


def test_rangefinder_target_is_the_centre_when_present() -> None:
    from dataclasses import replace

    from vision.geo.camera import centre_for
    from vision.geo.metadata import LrfTarget

    meta = read_metadata(FIXTURES / "h20t_oblique.jpg")
    assert meta.xmp is not None
    target = LrfTarget(lat=40.56400, lon=-79.76480, abs_alt_m=205.0, distance_m=30.0)
    with_lrf = replace(meta, xmp=replace(meta.xmp, lrf=target))
    cam = camera_for(with_lrf)

    centre = centre_for(with_lrf, cam)

    assert (centre.lat, centre.lon) == (40.56400, -79.76480)
    assert centre.uncertainty_m == pytest.approx(cam.errors.gps_m)
    assert centre.distance_m == pytest.approx(_ellipsoid_distance(cam, 40.56400, -79.76480),
                                              abs=0.05)
    # Without the rangefinder the flat-ground guess lands ~89 m out.
    assert centre_for(meta, cam).distance_m > 80.0


def _ellipsoid_distance(cam: Camera, lat: float, lon: float) -> float:
    return float(GEOD.inv(cam.pose.lon, cam.pose.lat, lon, lat)[2])


def test_dji_factory_calibration_sets_focal_and_optical_centre() -> None:
    from dataclasses import replace

    meta = read_metadata(FIXTURES / "phantom3_nadir_0018.jpg")
    assert meta.xmp is not None
    # As a calibrated camera writes them, in pixels of the full 4000 px wide photo.
    calibrated = replace(meta, xmp=replace(meta.xmp, calibrated_focal_px=2400.0,
                                           calibrated_cx_px=2040.0, calibrated_cy_px=1100.0))

    k = camera_for(calibrated).intrinsics

    scale = 320 / 4000  # the fixture is a thumbnail
    assert k.focal_px == pytest.approx(2400.0 * scale)
    assert k.cx == pytest.approx(2040.0 * scale)
    assert k.cy == pytest.approx(1100.0 * scale)


def test_fixed_rtk_solution_shrinks_the_uncertainty() -> None:
    from dataclasses import replace

    meta = read_metadata(FIXTURES / "phantom3_nadir_0018.jpg")
    assert meta.xmp is not None
    rtk = replace(meta, xmp=replace(meta.xmp, rtk_flag=50, rtk_std_m=0.02))
    float_solution = replace(meta, xmp=replace(meta.xmp, rtk_flag=16, rtk_std_m=0.6))

    fixed_sigma = camera_for(rtk).centre().uncertainty_m
    plain_sigma = camera_for(meta).centre().uncertainty_m

    assert camera_for(rtk).errors.gps_m == pytest.approx(0.02)
    assert fixed_sigma < plain_sigma / 2
    assert camera_for(float_solution).errors.gps_m == pytest.approx(3.0)
