"""Metadata reading on real drone photo fixtures (tests/fixtures/drone, see README there)."""

from __future__ import annotations

import importlib
from datetime import datetime
from pathlib import Path

import pytest

from vision.geo.metadata import parse_dji_xmp, read_metadata

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "drone"


def test_nadir_phantom3_reads_gps_camera_and_gimbal() -> None:
    meta = read_metadata(FIXTURES / "phantom3_nadir_0018.jpg")

    assert meta.problems == ()
    # 46°50'33.3855"N 91°59'40.4156"W
    assert meta.lat == pytest.approx(46.842607, abs=1e-6)
    assert meta.lon == pytest.approx(-91.994560, abs=1e-6)
    assert meta.alt_m == pytest.approx(198.309)
    assert meta.captured_at == datetime(2016, 6, 23, 16, 31, 59)
    assert (meta.make, meta.model) == ("DJI", "FC300S")
    assert meta.focal_length_mm == pytest.approx(3.61)
    assert meta.focal_length_35mm == pytest.approx(20.0)
    assert (meta.exif_width_px, meta.exif_height_px) == (4000, 2250)
    assert (meta.width_px, meta.height_px) == (320, 180)
    assert meta.xmp is not None
    assert meta.xmp.relative_altitude_m == pytest.approx(39.8)
    assert meta.xmp.absolute_altitude_m == pytest.approx(198.31)
    assert meta.xmp.gimbal_pitch_deg == pytest.approx(-89.9)
    assert meta.xmp.gimbal_yaw_deg == pytest.approx(45.0)
    assert meta.xmp.flight_yaw_deg == pytest.approx(46.0)
    assert meta.xmp.flight_roll_deg == pytest.approx(3.0)
    assert meta.xmp.lrf is None


def test_oblique_h20t_reads_shallow_gimbal_pitch() -> None:
    meta = read_metadata(FIXTURES / "h20t_oblique.jpg")

    assert meta.problems == ()
    assert meta.model == "ZH20T"
    assert meta.lat == pytest.approx(40.563781, abs=1e-6)
    assert meta.lon == pytest.approx(-79.764963, abs=1e-6)
    assert meta.xmp is not None
    assert meta.xmp.gimbal_pitch_deg == pytest.approx(-10.5)
    assert meta.xmp.gimbal_yaw_deg == pytest.approx(32.5)
    assert meta.xmp.flight_yaw_deg == pytest.approx(30.3)
    assert meta.xmp.relative_altitude_m == pytest.approx(16.508)


def test_photo_without_dji_xmp_is_reported_not_raised() -> None:
    meta = read_metadata(FIXTURES / "xts_no_dji_xmp.jpg")

    assert meta.xmp is None
    assert meta.has_gps
    # GPSAltitudeRef 1: below sea level.
    assert meta.alt_m == pytest.approx(-29.4)
    assert any("drone-dji" in p for p in meta.problems)


def test_unreadable_file_gives_a_reason(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")

    meta = read_metadata(bad)

    assert not meta.readable
    assert meta.problems[0].startswith("unreadable")


def test_unreadable_reason_does_not_depend_on_plugins_registered_elsewhere(tmp_path: Path) -> None:
    # A batch's records must be the same in any process: the media slice registers
    # pillow-heif's opener, whose error for a non-image differs from Pillow's own.
    pillow_heif = pytest.importorskip("pillow_heif")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    before = read_metadata(bad).problems

    pillow_heif.register_heif_opener()
    after = read_metadata(bad).problems

    assert after == before
    assert "cannot identify image file" in after[0]


def test_unreadable_reason_is_pillows_in_a_process_that_imported_ultralytics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Importing Ultralytics replaces PIL.Image.open with a wrapper that tries to install and
    # import pi-heif on the first unidentified file; a Ray worker imports it, a local run may not.
    pytest.importorskip("ultralytics")
    from PIL import Image

    from vision.offline import prepare_offline

    prepare_offline()
    patches = importlib.import_module("ultralytics.utils.patches")
    monkeypatch.setattr(Image, "open", patches.image_open)  # as Ultralytics' import leaves it
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")

    problems = read_metadata(bad).problems

    assert "cannot identify image file" in problems[0]
    assert Image.open is patches._image_open


def test_photo_without_gps_reports_it(tmp_path: Path) -> None:
    from PIL import Image

    plain = tmp_path / "plain.jpg"
    Image.new("RGB", (8, 8)).save(plain)

    meta = read_metadata(plain)

    assert not meta.has_gps
    assert "no EXIF GPS block" in meta.problems
    assert "no XMP packet" in meta.problems


def test_laser_rangefinder_target_is_parsed_from_elements_and_attributes() -> None:
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description '
        'xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" '
        'drone-dji:GimbalPitchDegree="-30.0" drone-dji:LRFTargetLat="22.5431" '
        'drone-dji:LRFTargetLon="114.0579" drone-dji:LRFTargetAbsAlt="12.5">'
        "<drone-dji:LRFTargetDistance>45.2</drone-dji:LRFTargetDistance>"
        "</rdf:Description></x:xmpmeta>"
    )

    xmp, reason = parse_dji_xmp(packet)

    assert reason is None
    assert xmp is not None
    assert xmp.gimbal_pitch_deg == pytest.approx(-30.0)
    assert xmp.lrf is not None
    assert xmp.lrf.lat == pytest.approx(22.5431)
    assert xmp.lrf.lon == pytest.approx(114.0579)
    assert xmp.lrf.distance_m == pytest.approx(45.2)
    assert xmp.lrf.abs_alt_m == pytest.approx(12.5)


def test_calibration_and_rtk_fields_are_parsed() -> None:
    packet = (
        '<rdf:Description xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" '
        'drone-dji:CalibratedFocalLength="3666.666504" '
        'drone-dji:CalibratedOpticalCenterX="2736.000000" '
        'drone-dji:CalibratedOpticalCenterY="1824.000000" drone-dji:RtkFlag="50" '
        'drone-dji:RtkStdLon="0.01200" drone-dji:RtkStdLat="0.01600"/>'
    )

    xmp, _ = parse_dji_xmp(packet)

    assert xmp is not None
    assert xmp.calibrated_focal_px == pytest.approx(3666.666504)
    assert xmp.calibrated_cx_px == pytest.approx(2736.0)
    assert xmp.rtk_flag == 50
    assert xmp.rtk_std_m == pytest.approx(0.02)
