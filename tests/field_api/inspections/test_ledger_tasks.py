"""Ledger tasks only where the flight looked, one open task per asset and kind, paged lists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.inspections import importing
from field_api.inspections.models import LedgerTask
from tests.builders import auth, make_user
from vision import records as rec
from vision.geo.ledger import Ledger, LedgerAsset, LedgerLine
from vision.geo.reconcile import DetectionObservations, PhotoObservations, reconcile
from vision.geo.report import build_records

GEOD = Geod(ellps="WGS84")
ORIGIN = (113.93, 22.53)  # lon, lat


@pytest.fixture(autouse=True)
def _inspections_dir(settings: Settings, tmp_path: Path) -> None:
    settings.vision.inspections_dir = tmp_path


def at(east: float, north: float) -> tuple[float, float]:
    """(lon, lat) ``east``/``north`` metres from the origin."""
    dist = float(np.hypot(east, north))
    az = float(np.degrees(np.arctan2(east, north)))
    lon, lat, _ = GEOD.fwd(ORIGIN[0], ORIGIN[1], az, dist)
    return float(lon), float(lat)


def square(cx: float, cy: float, half: float) -> list[tuple[float, float]]:
    ring = [at(cx - half, cy - half), at(cx + half, cy - half), at(cx + half, cy + half),
            at(cx - half, cy + half)]
    return [*ring, ring[0]]


def district_ledger(rows: int = 40, cols: int = 50, spacing: float = 50.0) -> Ledger:
    """2,000 poles on 40 lines, 50 m apart."""
    assets, lines = [], []
    for r in range(rows):
        ident = f"L{r:02d}"
        pts = [at(c * spacing, r * spacing) for c in range(cols)]
        lines.append(LedgerLine(ident, ident, tuple(pts), corridor_width_m=20.0))
        assets += [LedgerAsset(f"P{r:02d}-{c:02d}", f"{ident} {c}号杆", ident, lat, lon)
                   for c, (lon, lat) in enumerate(pts)]
    return Ledger(tuple(assets), tuple(lines))


# Three nadir photos, each footprint (64 m square) round one pole and reaching, with the
# 5 m margin and the 10 m corridor buffer, the pole 50 m east of the footprint's centre pole
# but no other: each photo inspects one pole and raises one "uninspected" task.
CENTRES = [(105.0, 0.0), (505.0, 500.0), (1005.0, 1000.0)]
INSIDE = {"P00-02", "P00-03", "P10-10", "P10-11", "P20-20", "P20-21"}


def write_batch(root: Path, batch_id: str, ledger: Ledger) -> Path:
    """A batch folder as `fieldops vision run` leaves it, records built by the real code."""
    out = root / batch_id
    out.mkdir(parents=True)
    photos = PhotoObservations.from_lists(
        [at(*c) for c in CENTRES], [at(*c) for c in CENTRES],
        [square(x, y, 32.0) for x, y in CENTRES],
    )
    result = reconcile(ledger, photos, DetectionObservations.empty())
    records = [
        rec.PhotoRecord(
            id=rec.stable_id("photo", batch_id, i), batch_id=batch_id,
            photo_id=rec.stable_id(batch_id, i) * 2 + "0" * 16, path=f"DJI_{i:04d}.JPG",
            width_px=4000, height_px=3000,
            camera=rec.GeoPoint(lon=at(*c)[0], lat=at(*c)[1]),
            footprint=square(*c, 32.0),
        )
        for i, c in enumerate(CENTRES)
    ]
    built = build_records(batch_id, ledger, records, [], result)
    rec.write_jsonl(built.all(), out / "records.jsonl")
    (out / "batch.json").write_text(json.dumps({"finished_at": "2026-11-20T08:00:00+00:00"}))
    return out


def _open_tasks(session: Session) -> list[tuple[str, str]]:
    rows = session.execute(
        select(LedgerTask.asset_id, LedgerTask.kind).where(LedgerTask.status == "open")
    ).all()
    return sorted((a, k) for a, k in rows)


def test_tasks_only_inside_the_footprints_and_reimports_add_none(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    ledger = district_ledger()
    assert len(ledger.assets) == 2000
    first = write_batch(tmp_path, "B-1", ledger)

    importing.import_batch(session, first, settings=settings, actor=None)

    tasks = _open_tasks(session)
    assert tasks == [("P00-03", "uninspected"), ("P10-11", "uninspected"),
                     ("P20-21", "uninspected")]
    assert {a for a, _ in tasks} <= INSIDE

    again = importing.import_batch(session, first, settings=settings, actor=None)
    assert again.unchanged
    # A newer flight over the same poles (another batch): the open tasks are refreshed, not
    # doubled.
    second = write_batch(tmp_path, "B-2", ledger)
    summary = importing.import_batch(session, second, settings=settings, actor=None)
    assert summary.created.get("ledger_tasks", 0) == 0
    assert summary.updated["ledger_tasks"] == 3
    assert _open_tasks(session) == tasks
    count = session.execute(select(func.count()).select_from(LedgerTask)).scalar_one()
    assert count == 3
    refreshed = session.execute(
        select(LedgerTask).where(LedgerTask.asset_id == "P00-03")
    ).scalar_one()
    assert refreshed.batch_id == "B-2"


def test_the_database_holds_one_open_task_per_asset_and_kind(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    importing.import_batch(session, write_batch(tmp_path, "B-1", district_ledger(2, 30)),
                         settings=settings, actor=None)
    existing = session.execute(select(LedgerTask)).scalars().first()
    assert existing is not None

    nested = session.begin_nested()
    session.add(LedgerTask(
        id="duplicate", batch_id=existing.batch_id, kind=existing.kind,
        asset_id=existing.asset_id, line_id=existing.line_id, lat=existing.lat,
        lon=existing.lon,
    ))
    with pytest.raises(IntegrityError):
        session.flush()
    nested.rollback()


def test_ledger_task_list_pages_with_a_total(
    client: TestClient, session: Session, settings: Settings, tmp_path: Path
) -> None:
    importing.import_batch(session, write_batch(tmp_path, "B-1", district_ledger()),
                         settings=settings, actor=None)
    session.commit()
    _, planner = make_user(session, settings, role=Role.planner)
    session.commit()

    first = client.get("/inspections/ledger-tasks?limit=2", headers=auth(planner))
    assert first.status_code == 200
    page = first.json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    assert [t["asset_id"] for t in page["items"]] == ["P00-03", "P10-11"]
    assert page["next_offset"] == 2
    rest = client.get("/inspections/ledger-tasks?limit=2&offset=2", headers=auth(planner)).json()
    assert [t["asset_id"] for t in rest["items"]] == ["P20-21"]
    assert rest["next_offset"] is None
    only = client.get("/inspections/ledger-tasks?line_id=L10&kind=uninspected",
                      headers=auth(planner)).json()
    assert only["total"] == 1 and only["items"][0]["asset_id"] == "P10-11"
    bad = client.get("/inspections/ledger-tasks?limit=0", headers=auth(planner))
    assert bad.status_code == 422
    assert client.get("/inspections/ledger-tasks?kind=nonsense",
                      headers=auth(planner)).status_code == 422


def test_a_later_flight_that_sees_the_pole_settles_its_uninspected_task(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    ledger = district_ledger(rows=11, cols=12)
    importing.import_batch(session, write_batch(tmp_path, "B-1", ledger), settings=settings,
                         actor=None)
    assert _open_tasks(session) == [("P00-03", "uninspected"), ("P10-11", "uninspected")]
    # The next flight photographs P00-03 (a 20 m footprint round it, nothing else in view).
    out = tmp_path / "B-2"
    out.mkdir()
    photos = PhotoObservations.from_lists([at(150, 0)], [at(150, 0)], [square(150, 0, 10.0)])
    result = reconcile(ledger, photos, DetectionObservations.empty())
    record = rec.PhotoRecord(id="p-b2", batch_id="B-2", photo_id="e" * 64, path="DJI_0100.JPG",
                             width_px=4000, height_px=3000, footprint=square(150, 0, 10.0))
    rec.write_jsonl(build_records("B-2", ledger, [record], [], result).all(),
                    out / "records.jsonl")
    (out / "batch.json").write_text(json.dumps({"finished_at": "2026-11-21T08:00:00+00:00"}))

    importing.import_batch(session, out, settings=settings, actor=None)

    assert ("P00-03", "uninspected") not in _open_tasks(session)
    task = session.execute(
        select(LedgerTask).where(LedgerTask.asset_id == "P00-03")
    ).scalar_one()
    assert task.status.value == "resolved" and "seen in batch B-2" in task.detail
    assert _open_tasks(session) == [("P10-11", "uninspected")]  # not flown again: still open
