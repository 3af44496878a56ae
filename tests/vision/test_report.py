"""Report outputs: the SVG map's extent, CSV cells, HTML escaping."""

from __future__ import annotations

from vision.ledger import Ledger, LedgerAsset
from vision.records import AssetRecord, GeoPoint
from vision.report import BatchRecords, html_report, summary_csv, svg_map


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
