"""Report outputs: the SVG map's extent, CSV cells, HTML escaping."""

from __future__ import annotations

from pathlib import Path

from vision.geo.ledger import Ledger, LedgerAsset
from vision.geo.report import BatchRecords, html_report, summary_csv, svg_map
from vision.records import AssetRecord, GeoPoint


def _asset(ident: str, name: str, lat: float, lon: float, status: str) -> AssetRecord:
    return AssetRecord(id=ident, batch_id="b", asset_id=ident, name=name, status=status,
                       position=GeoPoint(lat=lat, lon=lon))


def _records() -> tuple[Ledger, BatchRecords]:
    assets = [
        _asset("P1", "<script>alert(1)</script>", 30.0, 120.0, "inspected"),
        _asset("P2", "=HYPERLINK(\"http://x\")", 30.0004, 120.0, "position_mismatch"),
        _asset("P9", "Pole 9", 31.0, 121.0, "uninspected"),  # ~140 km away
    ]
    ledger = Ledger(tuple(LedgerAsset(a.asset_id, a.name, None, a.position.lat, a.position.lon)
                          for a in assets), ())
    return ledger, BatchRecords(assets=assets)


def test_map_covers_where_the_batch_found_something() -> None:
    ledger, records = _records()

    svg = svg_map(ledger, records)

    assert "(P1)" in svg and "(P2)" in svg
    assert "(P9)" not in svg  # far outside the flown area


def test_summary_csv_defuses_spreadsheet_formulas() -> None:
    _, records = _records()

    text = summary_csv(records)

    assert "'=HYPERLINK" in text
    assert "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


def test_html_escapes_ledger_text() -> None:
    ledger, records = _records()
    records.issues = []

    html = html_report(ledger, records, "b")

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def _defect_records() -> tuple[Ledger, BatchRecords]:
    from vision.records import DetectionRecord, PhotoRecord

    ledger, records = _records()
    located = PhotoRecord(id="p1", batch_id="b", photo_id="1" * 64, path="/f/DJI_0001.JPG",
                          width_px=10, height_px=10, camera=GeoPoint(lat=30.0, lon=120.0))
    unlocated = PhotoRecord(id="p2", batch_id="b", photo_id="2" * 64, path="/f/DJI_0002.JPG",
                            width_px=10, height_px=10)
    records.photos = [located, unlocated]

    def defect(ident: str, photo: PhotoRecord, ground: GeoPoint | None, asset: str | None,
               cls: str) -> DetectionRecord:
        return DetectionRecord(id=ident, batch_id="b", photo_id=photo.photo_id, class_id=1,
                               class_name=cls, role="defect", confidence=0.9, severity=3,
                               xyxy=(1, 1, 5, 5), ground=ground, asset_id=asset,
                               evidence_crop=f"crops/{ident}.jpg")

    records.detections = [
        defect("d1", located, GeoPoint(lat=30.0, lon=120.0), "P1", "broken_insulator"),
        defect("d2", unlocated, None, None, "missing_cap"),
    ]
    records.assets[0] = records.assets[0].model_copy(
        update={"defect_ids": ["d1"], "max_severity": 3})
    return ledger, records


def test_report_lists_located_and_unlocated_defects_in_chinese_by_default() -> None:
    ledger, records = _defect_records()

    html = html_report(ledger, records, "b")

    assert '<html lang="zh-CN">' in html
    assert "巡检批次 b" in html and "全部缺陷" in html
    # Both defects are listed: the one on the photo without a position too, said so.
    assert "broken_insulator" in html and "missing_cap" in html
    assert '<tr class="located">' in html and '<tr class="unlocated">' in html
    assert "未定位" in html and "DJI_0002.JPG" in html and "crops/d2.jpg" in html
    # Statuses are words, not raw values.
    assert "位置与台账不符" in html and "position_mismatch" not in html


def test_report_in_english_words() -> None:
    ledger, records = _defect_records()

    html = html_report(ledger, records, "b", lang="en", skipped=["notes.txt"])

    assert '<html lang="en">' in html and "Inspection batch b" in html
    assert "position differs from the ledger" in html and "position_mismatch" not in html
    assert "not inspected" in html and ">uninspected<" not in html
    assert "unlocated" in html and "notes.txt" in html


def test_an_unknown_report_language_is_refused() -> None:
    import pytest

    ledger, records = _defect_records()
    with pytest.raises(ValueError, match="zh-CN, en"):
        html_report(ledger, records, "b", lang="fr")


def test_every_csv_written_has_a_utf8_bom(tmp_path: Path) -> None:
    from vision.geo.report import write_outputs

    ledger, records = _defect_records()

    outputs = write_outputs(tmp_path, ledger, records)

    csvs = [p for p in outputs.values() if p.suffix == ".csv"]
    assert {p.name for p in csvs} == {"summary.csv", "ledger_validation.csv"}
    for path in csvs:
        assert path.read_bytes().startswith(b"\xef\xbb\xbf"), path.name


def test_a_defect_on_a_photo_placed_from_its_flight_says_so() -> None:
    ledger, records = _defect_records()
    records.photos[1] = records.photos[1].model_copy(update={
        "camera": GeoPoint(lat=30.0002, lon=120.0), "position_from_flight": True})

    zh = html_report(ledger, records, "b")
    en = html_report(ledger, records, "b", lang="en")

    assert '<tr class="flight_position">' in zh and "按航线推算" in zh
    assert "placed from its flight" in en
