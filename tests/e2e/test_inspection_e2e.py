"""From the drone photo to a crew fixing the defect (order 8, end to end).

`fieldops vision run` on CPLID fixture photos (GPS and DJI XMP written into copies of them)
with a small ledger → `fieldops inspections import` → an inspector confirms a defect over HTTP →
the repair order appears for the district's repair crew → the reviewed set is exported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from field_api.common.actors import Role
from field_api.config import Settings, VisionSettings, get_settings
from field_api.db import Base, make_engine, make_session_factory
from field_api.main import create_app
from tests.builders import auth, make_crew, make_district, make_user

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vision" / "cplid" / "images"
BASE_LAT, BASE_LON = 22.60000, 113.90000
XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" '
    'drone-dji:AbsoluteAltitude="+{alt:.2f}" drone-dji:RelativeAltitude="+{rel:.2f}" '
    'drone-dji:GimbalRollDegree="+0.00" drone-dji:GimbalYawDegree="+0.00" '
    'drone-dji:GimbalPitchDegree="-90.00" drone-dji:FlightRollDegree="+0.00" '
    'drone-dji:FlightYawDegree="+0.00" drone-dji:FlightPitchDegree="+0.00"/>'
    "</rdf:RDF></x:xmpmeta>"
)


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    degrees = int(value)
    minutes_full = (value - degrees) * 60
    minutes = int(minutes_full)
    seconds = IFDRational(round((minutes_full - minutes) * 60 * 10000), 10000)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), seconds


def geotag(source: Path, target: Path, *, lat: float, lon: float) -> None:
    """Copy a photo, writing EXIF GPS, camera data and a DJI XMP block (nadir, 12 m up)."""
    with Image.open(source) as im:
        exif = im.getexif()
        exif[0x010F] = "DJI"
        exif[0x0110] = "FC6310"
        gps = exif.get_ifd(0x8825)
        gps.update({1: "N", 2: _dms(lat), 3: "E", 4: _dms(lon), 5: 0, 6: IFDRational(62, 1)})
        exif_ifd = exif.get_ifd(0x8769)
        exif_ifd[0x9003] = "2025:10:01 10:00:00"
        exif_ifd[0x920A] = IFDRational(88, 10)  # focal length 8.8 mm (Phantom 4 Pro)
        im.save(target, "JPEG", quality=95, exif=exif.tobytes(),
                xmp=XMP.format(alt=62.0, rel=12.0).encode())


@pytest.fixture
def flight(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    photos = tmp_path / "photos"
    photos.mkdir()
    rows = ["Identifier,Name,GroupIdentifier,Latitude,Longitude,AssetType,Height,District,Equipment"]
    for i, src in enumerate(sorted(FIXTURES.glob("*.jpg"))):
        lat, lon = BASE_LAT + i * 0.0005, BASE_LON
        geotag(src, photos / f"DJI_{i:04d}.JPG", lat=lat, lon=lon)
        rows.append(f"P-{i:03d},{i + 1}号杆,L-E2E,{lat:.7f},{lon:.7f},pole,12,E2E-D,suspension insulators")
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("\n".join(rows) + "\n", encoding="utf-8")
    yield photos, ledger


def test_drone_photo_to_repair_order_and_training_set(
    flight: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos, ledger = flight
    out = tmp_path / "batch"
    run = subprocess.run(
        [sys.executable, "-m", "fieldops.cli", "vision", "run", str(photos), "--ledger", str(ledger),
         "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    defects = [r for r in records if r["kind"] == "detection" and r["role"] == "defect"]
    assert defects, "the bundled model finds the missing caps"
    assert all(d["asset_id"] for d in defects), "each defect attaches to a ledger pole"

    db_url = f"sqlite:///{tmp_path}/e2e.db"
    settings = Settings(env="test", database_url=db_url, media_dir=tmp_path / "media",
                        token_pepper="e2e-pepper-0123456789",
                        vision=VisionSettings(inspections_dir=tmp_path))
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        district = make_district(session, code="E2E-D")
        make_crew(session, district=district)
        repair_crew = make_crew(session, district=district, handles_repairs=True)
        _, inspector = make_user(session, settings, role=Role.inspector)
        _, repair_token = make_user(session, settings, role=Role.crew, crew=repair_crew)

    monkeypatch.setenv("FIELDOPS_DATABASE_URL", db_url)
    monkeypatch.setenv("FIELDOPS_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("FIELDOPS_TOKEN_PEPPER", "e2e-pepper-0123456789")
    get_settings.cache_clear()
    from typer.testing import CliRunner

    from field_api.cli import app as cli

    for _ in range(2):  # importing twice changes nothing
        imported = CliRunner().invoke(cli, ["inspections", "import", str(out)])
        assert imported.exit_code == 0, imported.output
    assert json.loads(imported.output)["unchanged"] is True

    with TestClient(create_app(settings, session_factory=factory)) as client:
        found = client.get("/inspections/findings?class_name=defect", headers=auth(inspector)).json()["items"]
        assert {f["photo_id"] for f in found} == {d["photo_id"] for d in defects}
        repairs = []
        for finding in found:
            r = client.post(f"/inspections/findings/{finding['id']}/review",
                            json={"decision": "confirmed"}, headers=auth(inspector))
            assert r.status_code == 200, r.text
            repairs.append(r.json()["repair_order"])
        assert {r["crew_id"] for r in repairs} == {repair_crew.id}
        assert {r["repair_kit_code"] for r in repairs} == {"RK-INS-STRING"}
        mine = client.get("/repair-orders", headers=auth(repair_token)).json()["items"]
        assert sorted(o["finding_id"] for o in mine) == sorted(f["id"] for f in found)

    exported = CliRunner().invoke(cli, ["inspections", "export-training-set", str(tmp_path / "reviewed")])
    assert exported.exit_code == 0, exported.output
    counts = json.loads(exported.output)
    # every confirmed defect, and the insulators proposed above the card's threshold beside them
    assert counts["boxes"]["defect"] == len(found)
    assert counts["boxes"].get("insulator", 0) >= 1
    assert counts["images"]["train"] >= 1 and counts["images"]["val"] >= 1
    assert counts["refused"] == []
    xml = next((tmp_path / "reviewed").glob("*/annotations/*.xml")).read_text()
    assert "<name>" in xml
    # the YOLO labels (class 1 = defect) hold every confirmed defect
    labels = [
        line
        for f in (tmp_path / "reviewed").glob("*/labels/*.txt")
        for line in f.read_text().splitlines()
    ]
    assert sum(line.startswith("1 ") for line in labels) == len(found)
    assert sum(line.startswith("0 ") for line in labels) == counts["boxes"].get("insulator", 0)
    get_settings.cache_clear()
    engine.dispose()
