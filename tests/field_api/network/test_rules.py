"""Parsing network files: valid rows, and every bad row with all its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from field_api.network.rules import NetworkFileError, detect_format, parse_csv, parse_geojson

FIXTURES = Path(__file__).parents[2] / "fixtures" / "network"


def test_geojson_gives_transformers_and_lines() -> None:
    parsed = parse_geojson((FIXTURES / "network.geojson").read_bytes(), load_power_factor=0.9)
    assert parsed.errors == ()
    by_code = {t.code: t for t in parsed.transformers}
    assert by_code["TX-NANSHAN-01"].load_kva == 250
    # a load given in kW is converted with the assumed power factor
    assert by_code["TX-NANSHAN-02"].load_kva == pytest.approx(180 / 0.9)
    assert by_code["TX-NANSHAN-02"].measured_at is not None
    [line] = parsed.lines
    assert line.transformer_code == "TX-NANSHAN-01" and len(line.coords) == 3
    assert line.row == 3


def test_csv_files_are_told_apart_by_their_header() -> None:
    transformers = parse_csv((FIXTURES / "transformers.csv").read_bytes(), load_power_factor=0.9)
    lines = parse_csv((FIXTURES / "lines.csv").read_bytes(), load_power_factor=0.9)
    assert [t.code for t in transformers.transformers] == ["TX-NANSHAN-01", "TX-NANSHAN-02"]
    assert transformers.lines == () and lines.transformers == ()
    assert lines.lines[0].coords[0] == (113.931278, 22.5333)


def test_gb18030_csv_from_a_spreadsheet_is_read() -> None:
    data = (FIXTURES / "transformers.csv").read_text(encoding="utf-8").encode("gb18030")
    parsed = parse_csv(data, load_power_factor=0.9)
    assert parsed.transformers[0].name == "科技园1号配变"


def test_every_bad_row_is_reported_with_its_line_number() -> None:
    parsed = parse_csv((FIXTURES / "broken.csv").read_bytes(), load_power_factor=0.9)
    assert [t.code for t in parsed.transformers] == ["TX-OK-01"]
    errors = {e.row: e for e in parsed.errors}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8]
    assert "code is required (at most 64 characters)" in errors[3].errors
    assert "rated_kva must be a number > 0" in errors[4].errors
    assert "load_kva or load_kw is required (the present load)" in errors[5].errors
    assert "position (213.93, 22.53) is not a WGS84 lon/lat" in errors[6].errors
    assert errors[7].errors == ("code TX-DUP appears more than once",)
    assert errors[8].code == "TX-DUP"


def test_bad_geojson_features_are_reported() -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": []},
         "properties": {"code": "X"}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[113.9, 22.5]]},
         "properties": {"code": "L", "transformer_code": "T"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [113.9, 22.5]},
         "properties": {"code": "T", "rated_kva": 100, "load_kva": 10,
                        "measured_at": "2026-01-05 10:00"}},
    ]}
    parsed = parse_geojson(json.dumps(doc).encode(), load_power_factor=0.9)
    errors = {e.row: e.errors for e in parsed.errors}
    assert "unsupported geometry 'Polygon'" in errors[1][0]
    assert errors[2] == ("a line needs at least two [lon, lat] positions",)
    assert errors[3] == ("measured_at needs a time zone (e.g. +08:00)",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid GeoJSON"),
        (b'{"type": "Feature"}', "expected a GeoJSON FeatureCollection"),
    ],
)
def test_unreadable_geojson_is_a_file_error(data: bytes, message: str) -> None:
    with pytest.raises(NetworkFileError, match=message):
        parse_geojson(data, load_power_factor=0.9)


def test_csv_without_known_columns_is_a_file_error() -> None:
    with pytest.raises(NetworkFileError, match="CSV header must name"):
        parse_csv(b"a,b\n1,2\n", load_power_factor=0.9)
    with pytest.raises(NetworkFileError, match="load_kva or load_kw column"):
        parse_csv(b"code,rated_kva,lon,lat\nT,1,2,3\n", load_power_factor=0.9)


def test_format_from_extension_or_explicit_choice() -> None:
    assert detect_format("net.GeoJSON") == "geojson"
    assert detect_format("x.json") == "geojson"
    assert detect_format("upload", "csv") == "csv"
    with pytest.raises(NetworkFileError, match="cannot tell the format"):
        detect_format("net.xlsx")
