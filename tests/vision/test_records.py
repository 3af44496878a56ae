"""Finding records: JSONL round trip, stable ids, schema version checks."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from vision.errors import RecordError
from vision.records import (
    SCHEMA_VERSION,
    AssetRecord,
    CorridorHazardRecord,
    DetectionRecord,
    FindingRecord,
    GeoPoint,
    LedgerIssueRecord,
    LineRecord,
    PhotoRecord,
    parse_record,
    read_jsonl,
    stable_id,
    write_jsonl,
)

PHOTO_ID = "a" * 64


def sample_records() -> list[FindingRecord]:
    here = GeoPoint(lat=30.0, lon=120.0)
    return [
        LineRecord(id="l1", batch_id="b1", line_id="L1", name="10kV 东线", district="南山区",
                   corridor_width_m=20.0, parts=[[(120.0, 30.0), (120.01, 30.0)]]),
        PhotoRecord(id=stable_id("photo", PHOTO_ID), batch_id="b1", photo_id=PHOTO_ID,
                    path="flight1/DJI_0001.JPG", width_px=4000, height_px=3000,
                    captured_at=datetime(2026, 5, 1, 10, 0), camera=here, center=here,
                    uncertainty_m=3.2, footprint=[(120.0, 30.0), (120.1, 30.0), (120.0, 30.0)],
                    asset_id="P1", detections=1),
        DetectionRecord(id="d1", batch_id="b1", photo_id=PHOTO_ID, class_id=1,
                        class_name="defect", role="defect", confidence=0.8, severity=3,
                        xyxy=(1.0, 2.0, 3.0, 4.0), ground=here, uncertainty_m=4.0,
                        asset_id="P1", distance_to_asset_m=2.5, attach="ground_point",
                        evidence_crop="crops/d1.jpg"),
        AssetRecord(id="a1", batch_id="b1", asset_id="P1", name="Pole 1", line_id="L1",
                    status="position_mismatch", position=here, observed=here, offset_m=12.0,
                    sightings=4, photo_ids=[PHOTO_ID], detection_ids=["d1"], defect_ids=["d1"],
                    max_severity=3),
        CorridorHazardRecord(id="h1", batch_id="b1", detection_id="d2", photo_id=PHOTO_ID,
                             class_name="tree", line_id="L1", distance_to_line_m=4.0,
                             corridor_width_m=20.0, ground=here, severity=2, confidence=0.5),
        LedgerIssueRecord(id="i1", batch_id="b1", issue="uninspected", asset_id="P9",
                          position=here, detail="no photo within 25 m"),
    ]


def test_jsonl_round_trip_keeps_every_kind(tmp_path: Path) -> None:
    records = sample_records()
    path = tmp_path / "records.jsonl"

    count = write_jsonl(records, path)
    back = list(read_jsonl(path))

    assert count == 6
    assert back == records
    assert [r.kind for r in back] == [
        "line", "photo", "detection", "asset", "corridor_hazard", "ledger_issue"]
    assert all(json.loads(line)["schema_version"] == SCHEMA_VERSION
               for line in path.read_text().splitlines())


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    write_jsonl(sample_records()[:1], path)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl"]


def test_stable_ids_repeat_and_differ() -> None:
    assert stable_id("detection", PHOTO_ID, 1) == stable_id("detection", PHOTO_ID, 1)
    assert stable_id("detection", PHOTO_ID, 1) != stable_id("detection", PHOTO_ID, 2)
    assert len(stable_id("x")) == 24


def test_newer_schema_is_refused_with_advice() -> None:
    line = json.dumps({"schema_version": SCHEMA_VERSION + 1, "kind": "photo"})

    with pytest.raises(RecordError, match="newer"):
        parse_record(line)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{nope", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"schema_version": 1, "kind": "rocket", "id": "x", "batch_id": "b"}', "kind"),
        ('{"schema_version": 1, "kind": "ledger_issue", "id": "x", "batch_id": "b", '
         '"issue": "stolen", "asset_id": "P", "position": {"lat": 1, "lon": 2}}', "issue"),
    ],
)
def test_bad_lines_name_the_problem(line: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        parse_record(line)


def test_bad_line_in_a_file_names_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    write_jsonl(sample_records()[:1], path)
    with path.open("a") as fh:
        fh.write("\n{broken\n")

    with pytest.raises(RecordError, match="line 3"):
        list(read_jsonl(path))


def test_a_line_that_is_not_utf8_is_a_record_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    write_jsonl(sample_records()[:2], path)
    with path.open("ab") as fh:
        fh.write('{"kind": "line", "name": "北线"}\n'.encode("gb18030"))

    with pytest.raises(RecordError, match=r"records.jsonl line 3: not UTF-8") as caught:
        list(read_jsonl(path))
    assert caught.value.line == 3


def test_an_invalid_record_error_carries_its_line(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text("\n\n[1, 2]\n", encoding="utf-8")

    with pytest.raises(RecordError, match="line 3") as caught:
        list(read_jsonl(path))
    assert caught.value.line == 3


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    write_jsonl(sample_records()[:2], path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())

    assert [r.kind for r in read_jsonl(path)] == [r.kind for r in sample_records()[:2]]


def test_an_unreadable_path_is_a_record_error(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="cannot read"):
        list(read_jsonl(tmp_path))  # a folder, not a file
