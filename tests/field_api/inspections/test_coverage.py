"""Coverage by footprint: the poles inside a photo's footprint are seen, by flight or import date."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.errors import ValidationFailed
from field_api.inspections import importing, reports
from field_api.inspections.models import LedgerAsset
from tests.builders import auth, make_user
from tests.clocks import ChinaClock
from vision import records as rec
from vision.geo.ledger import Ledger, LedgerLine
from vision.geo.ledger import LedgerAsset as VisionAsset
from vision.geo.reconcile import DetectionObservations, PhotoObservations, reconcile
from vision.geo.report import build_records

GEOD = Geod(ellps="WGS84")
ORIGIN = (113.93, 22.53)
FLOWN = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # photos taken long before the import


@pytest.fixture(autouse=True)
def _inspections_dir(settings: Settings, tmp_path: Path) -> None:
    settings.vision.inspections_dir = tmp_path


def at(east: float, north: float) -> tuple[float, float]:
    dist = float(np.hypot(east, north))
    lon, lat, _ = GEOD.fwd(ORIGIN[0], ORIGIN[1], float(np.degrees(np.arctan2(east, north))), dist)
    return float(lon), float(lat)


def write_batch(root: Path) -> Path:
    """Poles 0..5 every 50 m east; one oblique photo from above pole 1 looking east whose
    footprint (70..160 m, used up to 100 m from the camera) holds poles 2 and 3; it is the
    main subject photo of pole 2 only."""
    pts = [at(50.0 * c, 0.0) for c in range(6)]
    ledger = Ledger(
        tuple(VisionAsset(f"P{c}", f"P{c}", "L1", lat, lon) for c, (lon, lat) in enumerate(pts)),
        (LedgerLine("L1", "L1", tuple(pts), corridor_width_m=20.0),),
    )
    ring = [at(70, -20), at(160, -40), at(160, 40), at(70, 20)]
    ring = [*ring, ring[0]]
    photos = PhotoObservations.from_lists([at(50, 0)], [at(110, 0)], [ring])
    result = reconcile(ledger, photos, DetectionObservations.empty())
    photo = rec.PhotoRecord(
        id="photo-1", batch_id="B-COV", photo_id="c" * 64, path="DJI_0001.JPG", width_px=4000,
        height_px=3000, captured_at=FLOWN, camera=rec.GeoPoint(lon=at(50, 0)[0], lat=at(50, 0)[1]),
        footprint=ring,
    )
    built = build_records("B-COV", ledger, [photo], [], result)
    assert built.photos[0].asset_id == "P2"  # the pole at the centre of the view
    out = root / "batch"
    out.mkdir()
    rec.write_jsonl(built.all(), out / "records.jsonl")
    (out / "batch.json").write_text(json.dumps({"finished_at": "2026-11-20T08:00:00+00:00"}))
    return out


def test_coverage_credits_the_footprint_poles_by_flight_or_import_date(
    client: TestClient,
    session: Session,
    settings: Settings,
    tmp_path: Path,
    server_clock: ChinaClock,
) -> None:
    server_clock.set(datetime(2026, 12, 4, 2, 0, tzinfo=UTC))
    importing.import_batch(session, write_batch(tmp_path), settings=settings, actor=None)
    _, planner = make_user(session, settings, role=Role.planner)
    session.commit()

    seen = {a.id: a for a in session.query(LedgerAsset)}
    assert {i for i, a in seen.items() if a.last_seen_at is not None} == {"P2", "P3"}
    assert seen["P1"].last_seen_at is None  # the pole under the drone was not in view

    def coverage(query: str) -> list[dict[str, object]]:
        r = client.get(f"/planner/inspection-coverage?{query}", headers=auth(planner))
        assert r.status_code == 200, r.text
        rows: list[dict[str, object]] = r.json()
        return rows

    # Flown 21 months ago: nothing seen in 90 days by flight date, both poles by import date.
    assert coverage("days=90") == [{"line_id": "L1", "assets": 6, "seen": 0, "coverage": 0.0}]
    assert coverage("days=90&basis=flight")[0]["seen"] == 0
    assert coverage("days=90&basis=import") == [
        {"line_id": "L1", "assets": 6, "seen": 2, "coverage": 0.3333}]
    assert coverage("days=3650&basis=flight")[0]["seen"] == 2
    server_clock.advance(seconds=91 * 86400)
    assert coverage("days=90&basis=import")[0]["seen"] == 0
    csv_text = client.get("/planner/inspection-coverage?days=3650&basis=import&format=csv",
                          headers=auth(planner)).text
    assert csv_text.splitlines()[1].startswith("L1,6,2,")
    bad = client.get("/planner/inspection-coverage?basis=capture", headers=auth(planner))
    assert bad.status_code == 422


def test_an_unknown_coverage_basis_is_refused(session: Session) -> None:
    with pytest.raises(ValidationFailed, match="basis"):
        reports.inspection_coverage(session, days=30, basis="yesterday")
