"""An inspector's working day (order 13 "Done when"), scripted, on SQLite and on PostgreSQL.

Four drone photos (copies of the CPLID fixture photos) flown along line L05 of a generated
2,000-pole ledger (40 parallel lines 16 m apart, 50 poles each 50 m apart): two with GPS over
P05-10 and P05-12, one without GPS taken between them (placed from its flight, at P05-11), one
with neither GPS nor capture time (its defect is unlocated: the inspector picks the pole); plus
one defect false alarm added to the run's records. Then, as the day goes:
`fieldops vision run` → `fieldops inspections import` twice (and a third time) → review over
HTTP (confirm, undo, a stale version refused, confirm again, reject the false alarm, pick a
pole) → repair orders dispatched (the admins' line table, and the district's default crew) →
repaired with before and after photos → verified (photos locked, undo refused) → ledger tasks
and coverage only where the photos looked → `fieldops inspections export-training-set` → one
Ultralytics epoch and `fieldops vision evaluate` on it (insulator precision above zero).

The training part runs on the SQLite leg only: the export is built from the same records and
the same decisions on both databases, and both legs check its counts.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from PIL import Image
from PIL.TiffImagePlugin import IFDRational
from sqlalchemy import select
from typer.testing import CliRunner

from field_api.common.actors import Role
from field_api.config import Settings, VisionSettings, get_settings
from field_api.db import make_engine, make_session_factory
from field_api.inspections.models import LedgerAsset
from field_api.main import create_app
from tests.builders import auth, make_crew, make_district, make_user
from tests.e2e.test_inspection_e2e import XMP, _dms

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vision" / "cplid" / "images"
LAT0, LON0 = 22.6, 113.9
DLAT, DLON = 0.000145, 0.0005  # lines 16 m apart (parallel circuits), poles 50 m apart
ROW = 5  # the flight follows line L05
DISTRICT = "DAY-D"
PEPPER = "day-pepper-0123456789"


def pole(row: int, col: int) -> tuple[float, float]:
    """(lat, lon) of ledger pole P<row>-<col>."""
    return LAT0 + row * DLAT, LON0 + col * DLON


def _photo(src: Path, dst: Path, *, pos: tuple[float, float] | None, when: str | None) -> None:
    """A copy of a fixture photo as a DJI camera writes it: nadir, 12 m up; GPS and capture
    time only when given."""
    with Image.open(src) as im:
        exif = im.getexif()
        exif[0x010F] = "DJI"
        exif[0x0110] = "FC6310"
        if pos is not None:
            gps = exif.get_ifd(0x8825)
            gps.update({1: "N", 2: _dms(pos[0]), 3: "E", 4: _dms(pos[1]), 5: 0,
                        6: IFDRational(62, 1)})
        exif_ifd = exif.get_ifd(0x8769)
        if when is not None:
            exif_ifd[0x9003] = when
        exif_ifd[0x920A] = IFDRational(88, 10)
        # another quality for the unlocated copy: other bytes, so another photo
        im.save(dst, "JPEG", quality=95 if when else 90, exif=exif.tobytes(),
                xmp=XMP.format(alt=62.0, rel=12.0).encode())


def write_flight(root: Path) -> tuple[Path, Path]:
    photos = root / "photos"
    photos.mkdir()
    _photo(FIXTURES / "defect_001.jpg", photos / "DJI_0001.JPG", pos=pole(ROW, 10),
           when="2026:12:01 10:00:00")
    _photo(FIXTURES / "defect_012.jpg", photos / "DJI_0002.JPG", pos=None,
           when="2026:12:01 10:00:10")
    _photo(FIXTURES / "defect_020.jpg", photos / "DJI_0003.JPG", pos=pole(ROW, 12),
           when="2026:12:01 10:00:20")
    _photo(FIXTURES / "defect_020.jpg", photos / "DJI_0004.JPG", pos=None, when=None)
    rows = ["Identifier,Name,GroupIdentifier,Latitude,Longitude,AssetType,Height,District,"
            "Equipment"]
    for r in range(40):
        for c in range(50):
            lat, lon = pole(r, c)
            rows.append(f"P{r:02d}-{c:02d},L{r:02d} {c}号杆,L{r:02d},{lat:.7f},{lon:.7f},pole,12,"
                        f"{DISTRICT},suspension insulators")
    ledger = root / "ledger.csv"
    ledger.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return photos, ledger


def _to_m(lon: float, lat: float) -> tuple[float, float]:
    """Local metres east/north of the grid's origin (the area is a few km across)."""
    return ((lon - LON0) * 111_320.0 * math.cos(math.radians(LAT0)), (lat - LAT0) * 110_574.0)


def _view_zone(by_path: dict[str, dict[str, Any]], buffer_m: float) -> shapely.Geometry:
    """What the photos saw (``buffer_m`` 0) or where the flight looked (``buffer_m`` the corridor
    buffer), as the reconciler draws it: each footprint widened by its 5 m margin; a photo
    placed from its flight has no footprint, only the 30 m disc round its camera."""
    parts = []
    for photo in by_path.values():
        if photo["footprint"]:
            ring = shapely.Polygon([_to_m(x, y) for x, y in photo["footprint"]])
            parts.append(ring.buffer(5.0 + buffer_m))
        elif photo["camera"]:
            cam = photo["camera"]
            parts.append(shapely.Point(_to_m(cam["lon"], cam["lat"])).buffer(30.0 + buffer_m))
    return shapely.union_all(parts)


def _poles_in(zone: shapely.Geometry) -> set[str]:
    return {
        f"P{r:02d}-{c:02d}" for r in range(40) for c in range(50)
        if zone.contains(shapely.Point(_to_m(pole(r, c)[1], pole(r, c)[0])))
    }


def _add_false_alarm(out: Path, photo_id: str) -> str:
    """One defect false alarm (on the sky of a photo) for the inspector to reject: the bundled
    model makes none on these photos."""
    lines = (out / "records.jsonl").read_text(encoding="utf-8").splitlines()
    batch_id = json.loads(lines[0])["batch_id"]
    alarm = {
        "schema_version": 1, "kind": "detection", "id": "day-false-alarm", "batch_id": batch_id,
        "photo_id": photo_id, "class_id": 1, "class_name": "defect", "role": "defect",
        "confidence": 0.62, "severity": 1, "xyxy": [20.0, 20.0, 80.0, 70.0], "ground": None,
        "uncertainty_m": None, "asset_id": None, "distance_to_asset_m": None, "attach": "none",
        "evidence_crop": None,
    }
    (out / "records.jsonl").write_text("\n".join([*lines, json.dumps(alarm)]) + "\n",
                                       encoding="utf-8")
    return "day-false-alarm"


@pytest.mark.filterwarnings("ignore:`get_trial_id` is meant:UserWarning")
def test_an_inspectors_day(
    committed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos, ledger = write_flight(tmp_path)
    out = tmp_path / "batch"
    run = subprocess.run(
        [sys.executable, "-m", "fieldops.cli", "vision", "run", str(photos), "--ledger",
         str(ledger), "--out", str(out), "--threads", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    by_path = {Path(r["path"]).name: r for r in records if r["kind"] == "photo"}
    assert len([r for r in records if r["kind"] == "asset"]) == 2000
    flown = by_path["DJI_0002.JPG"]
    assert flown["position_from_flight"] and flown["asset_id"] == "P05-11"
    lost = by_path["DJI_0004.JPG"]
    assert lost["camera"] is None and lost["asset_id"] is None
    defects = {r["photo_id"]: r for r in records
               if r["kind"] == "detection" and r["role"] == "defect"}
    assert set(defects) == {p["photo_id"] for p in by_path.values()}, "a defect on every photo"
    # a footprint for the two photos with a position of their own only
    assert len([p for p in by_path.values() if p["footprint"]]) == 2
    alarm_id = _add_false_alarm(out, by_path["DJI_0001.JPG"]["photo_id"])

    settings = Settings(env="test", database_url=committed_url, media_dir=tmp_path / "media",
                        token_pepper=PEPPER, vision=VisionSettings(inspections_dir=tmp_path))
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        district = make_district(session, code=DISTRICT)
        default_crew = make_crew(session, district=district, handles_repairs=True)
        line_crew = make_crew(session, district=district, handles_repairs=True)
        make_crew(session, district=district)  # a works crew: never given repairs
        _, admin = make_user(session, settings, role=Role.admin)
        _, planner = make_user(session, settings, role=Role.planner)
        _, inspector = make_user(session, settings, role=Role.inspector)
        _, default_token = make_user(session, settings, role=Role.crew, crew=default_crew)
        _, line_token = make_user(session, settings, role=Role.crew, crew=line_crew)
        district_id, default_id, line_id = district.id, default_crew.id, line_crew.id

    monkeypatch.setenv("FIELDOPS_DATABASE_URL", committed_url)
    monkeypatch.setenv("FIELDOPS_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("FIELDOPS_TOKEN_PEPPER", PEPPER)
    get_settings.cache_clear()
    from field_api.cli import app as cli

    try:
        runner = CliRunner()
        imports = [runner.invoke(cli, ["inspections", "import", str(out)]) for _ in range(2)]
        assert [r.exit_code for r in imports] == [0, 0], [r.output for r in imports]
        first, second = (json.loads(r.output) for r in imports)
        assert first["created"]["ledger_assets"] == 2000 and first["created"]["findings"] == 9
        assert second["unchanged"] is True and second["created"] == {}
        assert second["updated"] == {}

        # Ledger tasks only where the flight looked: inside the view areas widened by the
        # corridor buffer (half of 20 m), minus the poles seen.
        looked = _poles_in(_view_zone(by_path, 10.0))
        seen = _poles_in(_view_zone(by_path, 0.0))
        assert seen == {"P05-10", "P05-12", "P04-11", "P05-11", "P06-11"}
        assert len(looked) < 20  # a handful of the 2,000
        h_plan, h_insp = auth(planner), auth(inspector)
        with TestClient(create_app(settings, session_factory=factory)) as client:
            tasks = client.get("/inspections/ledger-tasks?limit=500&status=open",
                               headers=h_plan).json()
            task_poles = [t["asset_id"] for t in tasks["items"]]
            assert tasks["total"] == len(task_poles) == len(set(task_poles))  # one per pole
            assert set(task_poles) == looked - seen
            assert tasks["total"] == 6  # the parallel lines' poles beside the photos
            assert {t["kind"] for t in tasks["items"]} == {"uninspected"}
            assert tasks["total"] == first["created"]["ledger_tasks"]
            # a third import (the same batch) still raises no task
            again = runner.invoke(cli, ["inspections", "import", str(out)])
            assert again.exit_code == 0 and json.loads(again.output)["unchanged"] is True
            assert client.get("/inspections/ledger-tasks", headers=h_plan).json()["total"] == (
                tasks["total"])

            # The review queue: defects only by default, most serious first, with a total.
            queue = client.get("/inspections/findings?limit=2", headers=h_insp).json()
            assert queue["total"] == 5 and len(queue["items"]) == 2 and queue["next_offset"] == 2
            found = client.get("/inspections/findings", headers=h_insp).json()["items"]
            assert {f["class_name"] for f in found} == {"defect"}
            of_photo = {f["photo_id"]: f for f in found if f["id"] != alarm_id}
            located = of_photo[by_path["DJI_0001.JPG"]["photo_id"]]
            flown_defect = of_photo[flown["photo_id"]]
            second_located = of_photo[by_path["DJI_0003.JPG"]["photo_id"]]
            unlocated = of_photo[lost["photo_id"]]
            assert (located["asset_id"], flown_defect["asset_id"],
                    second_located["asset_id"], unlocated["asset_id"]) == (
                "P05-10", "P05-11", "P05-12", None)

            # The admins map line L05 to its own crew; other lines get the district's default.
            r = client.put("/admin/line-dispatch/L05",
                           json={"district_id": district_id, "crew_id": line_id},
                           headers=auth(admin))
            assert r.status_code == 200, r.text

            def decide(fid: str, body: dict[str, Any], action: str = "review") -> Any:
                version = client.get(f"/inspections/findings/{fid}", headers=h_insp).json()[
                    "version"]
                r = client.request("PUT" if action == "asset" else "POST",
                                   f"/inspections/findings/{fid}/{action}",
                                   json={**body, "finding_id": fid, "version": version},
                                   headers=h_insp)
                assert r.status_code == 200, r.text
                return r.json()

            # confirm, undo (the order is cancelled), a stale page refused, confirm again
            shown = located["version"]
            done = decide(located["id"], {"decision": "confirmed"})
            order = done["repair_order"]
            assert (order["crew_id"], order["asset_id"]) == (line_id, "P05-10")
            undone = decide(located["id"], {}, "undo")
            assert undone["repair_order"]["stage"] == "cancelled"
            assert undone["finding"]["status"] == "proposed"
            stale = client.post(f"/inspections/findings/{located['id']}/review",
                                json={"decision": "confirmed", "version": shown},
                                headers=h_insp)
            assert stale.status_code == 409 and stale.json()["code"] == "inspection.finding_stale"
            again_order = decide(located["id"], {"decision": "confirmed"})["repair_order"]
            assert again_order["id"] == order["id"] and again_order["stage"] == "assigned"

            # reject the false alarm; confirm the defect of the photo placed from its flight
            rejected = decide(alarm_id, {"decision": "rejected"})
            assert rejected["finding"]["status"] == "rejected" and rejected["repair_order"] is None
            flown_order = decide(flown_defect["id"], {"decision": "confirmed"})["repair_order"]
            assert (flown_order["asset_id"], flown_order["crew_id"]) == ("P05-11", line_id)
            second_order = decide(second_located["id"], {"decision": "confirmed"})["repair_order"]
            assert second_order["crew_id"] == line_id

            # the unlocated defect: confirmed, it waits unassigned until the inspector picks
            # its pole (P04-11, on the parallel line: the district's default crew)
            lost_order = decide(unlocated["id"], {"decision": "confirmed"})["repair_order"]
            assert (lost_order["asset_id"], lost_order["crew_id"]) == (None, None)
            waiting = client.get("/repair-orders/unassigned", headers=h_plan).json()
            assert [o["id"] for o in waiting["items"]] == [lost_order["id"]]
            picked = decide(unlocated["id"], {"asset_id": "P04-11"}, "asset")
            assert picked["repair_order"]["id"] == lost_order["id"]
            assert picked["repair_order"]["crew_id"] == default_id
            assert picked["finding"]["line_id"] == "L04"
            assert client.get("/repair-orders/unassigned", headers=h_plan).json()["total"] == 0

            # each crew sees its own orders
            crews = {default_token: default_id, line_token: line_id}
            mine = {tok: client.get("/repair-orders", headers=auth(tok)).json()
                    for tok in crews}
            assert sorted(o["id"] for o in mine[line_token]["items"]) == sorted(
                [order["id"], flown_order["id"], second_order["id"]])
            assert [o["id"] for o in mine[default_token]["items"]] == [lost_order["id"]]

            # repaired with before/after photos, verified; then undo and photos are refused
            png = io.BytesIO()
            Image.new("RGB", (32, 32), (0, 200, 0)).save(png, "PNG")
            for tok, listed in mine.items():
                h_crew = auth(tok)
                for o in listed["items"]:
                    r = client.post(f"/repair-orders/{o['id']}/transitions",
                                    json={"to": "on_site"}, headers=h_crew)
                    assert r.status_code == 200, r.text
                    for kind in ("before", "after"):
                        r = client.post(f"/repair-orders/{o['id']}/photos/{kind}",
                                        files={"file": (f"{kind}.png", png.getvalue(),
                                                        "image/png")},
                                        headers=h_crew)
                        assert r.status_code == 200, r.text
                    for to, who in (("repaired", h_crew), ("verified", h_insp)):
                        r = client.post(f"/repair-orders/{o['id']}/transitions",
                                        json={"to": to}, headers=who)
                        assert r.status_code == 200, r.text
                    r = client.post(f"/repair-orders/{o['id']}/photos/after",
                                    files={"file": ("after.png", png.getvalue(), "image/png")},
                                    headers=h_crew)
                    assert r.status_code == 409 and r.json()["code"] == "repair.photos_locked"
            r = client.post(f"/inspections/findings/{located['id']}/undo", json={},
                            headers=h_insp)
            assert r.status_code == 409 and r.json()["code"] == "inspection.undo_refused"
            verified = client.get("/repair-orders?stage=verified", headers=h_plan).json()
            assert verified["total"] == 4

            # coverage credits the poles the photos saw, and no other
            rows = client.get("/planner/inspection-coverage?days=90&basis=import",
                              headers=h_plan).json()
            credited = {row["line_id"]: row["seen"] for row in rows if row["seen"]}
            assert credited == {"L04": 1, "L05": 3, "L06": 1}
        with factory() as session:
            assert set(session.execute(
                select(LedgerAsset.id).where(LedgerAsset.last_seen_imported_at.is_not(None))
            ).scalars()) == seen

        # the retraining set: every confirmed defect, the insulators, the false alarm as a
        # hard negative
        export_dir = tmp_path / "retrain"
        exported = runner.invoke(cli, ["inspections", "export-training-set", str(export_dir)])
        assert exported.exit_code == 0, exported.output
        counts = json.loads(exported.output)
        assert counts["boxes"]["defect"] == 4 and counts["boxes"]["insulator"] >= 3
        assert counts["hard_negatives"] == 1 and counts["refused"] == []
        assert counts["images"]["train"] >= 1 and counts["images"]["val"] >= 1
        if "sqlite" in committed_url:  # the same export on both databases: train once
            _train_and_evaluate(export_dir, tmp_path, monkeypatch)
    finally:
        get_settings.cache_clear()
        engine.dispose()


def _train_and_evaluate(export_dir: Path, tmp_path: Path, mp: pytest.MonkeyPatch) -> None:
    """One Ultralytics epoch on the export's data.yaml (yolo11n from scratch, imgsz 64), then
    `fieldops vision evaluate` of the bundled model on its val split (as
    tests/field_api/inspections/test_training_export.py does)."""
    pytest.importorskip("ultralytics")
    from vision.offline import prepare_offline, restore_pillow_open
    from vision.train.training import model_yaml

    mp.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo-config"))
    mp.setenv("YOLO_OFFLINE", "1")
    prepare_offline(tmp_path / "yolo-config")
    from ultralytics import YOLO  # type: ignore[attr-defined,unused-ignore]

    restore_pillow_open()
    YOLO(str(model_yaml(tmp_path / "cfg", nc=2))).train(
        data=str(export_dir / "data.yaml"), epochs=1, imgsz=64, batch=4, workers=0,
        device="cpu", project=str(tmp_path / "runs"), name="retrain", exist_ok=True,
        pretrained=False, amp=False, plots=False, verbose=False, seed=0, deterministic=True,
        val=True,
    )
    run = tmp_path / "runs" / "retrain"
    assert (run / "weights" / "last.pt").is_file()
    results = list(csv.DictReader(io.StringIO((run / "results.csv").read_text())))
    assert len(results) == 1
    losses = [float(v) for k, v in results[0].items() if "loss" in k and v.strip()]
    assert losses and all(math.isfinite(v) for v in losses)

    import fieldops.cli  # noqa: F401  (registers `fieldops vision` on the service's app)
    from field_api.cli import app

    figures = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["vision", "evaluate", "--data", str(export_dir / "val"),
                                      "--json", str(figures), "--threads", "1"])
    assert result.exit_code == 0, result.output
    insulator = json.loads(figures.read_text())["classes"]["insulator"]
    assert insulator["tp"] > 0 and insulator["precision"] > 0
