"""Ledger import (GeoJSON and CSV with eSmart Grid Vision property names) and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vision.errors import LedgerError
from vision.geo.ledger import load_ledger

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "drone"
HEADER = "Identifier,Name,GroupIdentifier,Latitude,Longitude,AssetType,Height,District,Equipment\n"


def test_geojson_fixture_loads_lines_and_assets() -> None:
    ledger = load_ledger(FIXTURES / "ledger.geojson")

    assert ledger.issues == ()
    assert [a.identifier for a in ledger.assets] == [
        "BRT01-000", "BRT01-001", "BRT01-002", "BRT01-003"]
    line = ledger.lines[0]
    assert (line.identifier, line.corridor_width_m, line.derived) == ("L-BRT-01", 20.0, False)
    p1 = ledger.asset("BRT01-002")
    assert p1 is not None
    assert (p1.line_id, p1.asset_type, p1.height_m) == ("L-BRT-01", "tower", 18.0)
    assert p1.lat == pytest.approx(46.8427739)


def test_csv_fixture_matches_geojson_and_derives_the_line() -> None:
    from_csv = load_ledger(FIXTURES / "ledger.csv")
    from_geojson = load_ledger(FIXTURES / "ledger.geojson")

    assert from_csv.assets == from_geojson.assets
    assert from_csv.lines[0].derived
    assert from_csv.lines[0].coords == tuple((a.lon, a.lat) for a in from_csv.assets)


def test_csv_validation_reports_each_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text(
        HEADER
        + "A1,Pole 1,L1,30.0000,120.0000,pole,12,,\n"
        + "A2,Pole 2,L1,30.0004,120.0000,pole,abc,,\n"  # bad height: kept, flagged
        + "A1,Again,L1,30.0008,120.0000,pole,12,,\n"  # duplicate id
        + "A3,Pole 3,L1,95.0,120.0,pole,12,,\n"  # latitude out of range
        + "A4,Pole 4,L1,,120.0,pole,12,,\n"  # missing latitude
        + ",No id,L1,30.0,120.0,pole,12,,\n",
        encoding="utf-8",
    )

    ledger = load_ledger(path)

    assert [a.identifier for a in ledger.assets] == ["A1", "A2"]
    found = [(i.row, i.identifier, i.code) for i in ledger.issues]
    assert found == [
        (3, "A2", "bad_value"),
        (4, "A1", "duplicate_id"),
        (5, "A3", "bad_coordinates"),
        (6, "A4", "bad_coordinates"),
        (7, None, "missing_field"),
    ]


def test_asset_far_from_its_line_is_flagged(tmp_path: Path) -> None:
    features = [
        {"type": "Feature", "properties": {"Identifier": "L1", "Name": "Line", "kind": "line"},
         "geometry": {"type": "LineString", "coordinates": [[120.0, 30.0], [120.01, 30.0]]}},
        {"type": "Feature", "properties": {"Identifier": "A1", "GroupIdentifier": "L1"},
         "geometry": {"type": "Point", "coordinates": [120.005, 30.0001]}},
        # About 1.1 km north of the line.
        {"type": "Feature", "properties": {"Identifier": "A2", "GroupIdentifier": "L1"},
         "geometry": {"type": "Point", "coordinates": [120.005, 30.01]}},
        {"type": "Feature", "properties": {"Identifier": "A3", "GroupIdentifier": "L9"},
         "geometry": {"type": "Point", "coordinates": [120.005, 30.0]}},
    ]
    path = tmp_path / "ledger.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))

    ledger = load_ledger(path, max_line_distance_m=50.0)

    assert [(i.row, i.identifier, i.code) for i in ledger.issues] == [
        (3, "A2", "far_from_line"), (4, "A3", "unknown_line")]
    assert "1109 m" in ledger.issues[0].message or "1108 m" in ledger.issues[0].message
    assert len(ledger.assets) == 3  # flagged, not dropped


def test_gbk_csv_from_excel_is_read(tmp_path: Path) -> None:
    path = tmp_path / "台账.csv"
    path.write_bytes((HEADER + "G1,东线1号杆,东线,30.0,120.0,杆塔,10,南山区,针式绝缘子\n").encode("gbk"))

    ledger = load_ledger(path)

    assert ledger.assets[0].name == "东线1号杆"
    assert ledger.assets[0].district == "南山区"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.geojson", "{not json", "not a readable GeoJSON"),
        ("x.geojson", '{"type": "Feature"}', "FeatureCollection"),
        ("x.csv", "Name,Height\nA,1\n", "lacks"),
        ("x.txt", "whatever", ".geojson, .json or .csv"),
    ],
)
def test_unreadable_ledger_raises_a_clear_error(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)

    with pytest.raises(LedgerError, match=message):
        load_ledger(path)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no such ledger file"):
        load_ledger(tmp_path / "absent.csv")


def test_branched_line_from_a_multilinestring(tmp_path: Path) -> None:
    features = [
        {"type": "Feature",
         "properties": {"Identifier": "L1", "Name": "Line", "kind": "line", "District": "南山区"},
         "geometry": {"type": "MultiLineString",
                      "coordinates": [[[120.0, 30.0], [120.01, 30.0]],
                                      [[120.005, 30.0], [120.005, 30.01]]]}},
        # Near the spur only: not far from its (branched) line.
        {"type": "Feature", "properties": {"Identifier": "A1", "GroupIdentifier": "L1"},
         "geometry": {"type": "Point", "coordinates": [120.0051, 30.008]}},
    ]
    path = tmp_path / "ledger.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))

    ledger = load_ledger(path)

    assert ledger.issues == ()
    assert len(ledger.lines[0].parts) == 2
    assert ledger.lines[0].district == "南山区"
