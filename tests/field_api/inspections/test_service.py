"""Importing a batch's records, reviewing findings, repair orders, ledger tasks, backlog."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common.actors import Role
from field_api.common.storage import store_of
from field_api.config import Settings
from field_api.errors import Forbidden, InvalidTransition, ValidationFailed
from field_api.inspections import export, importing, review
from field_api.inspections.models import Finding, LedgerAsset, LedgerTask, RepairOrder
from field_api.inspections.rules import FindingStatus, RepairStage
from tests.builders import auth, make_crew, make_district, make_user
from vision import records as rec

BATCH = "batch-test-0001"


@pytest.fixture(autouse=True)
def _inspections_dir(settings: Settings, tmp_path: Path) -> None:
    """Batches are imported from under the configured inspections folder (the test's own)."""
    settings.vision.inspections_dir = tmp_path


def _jpeg(color: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def write_batch(
    root: Path, *, severity: int = 3, finished: str = "2025-10-01T08:00:00+00:00"
) -> Path:
    """A batch output folder as `fieldops vision run` writes it (records.jsonl, crops, photos)."""
    out = root / "batch"
    (out / "crops").mkdir(parents=True, exist_ok=True)
    photo_bytes = _jpeg((90, 120, 160))
    (out / "DJI_0001.JPG").write_bytes(photo_bytes)
    (out / "crops" / "d1.jpg").write_bytes(_jpeg((200, 10, 10), (64, 64)))
    import hashlib

    photo_id = hashlib.sha256(photo_bytes).hexdigest()
    items: list[object] = [
        rec.PhotoRecord(
            id=rec.stable_id("photo", photo_id),
            batch_id=BATCH,
            photo_id=photo_id,
            path="DJI_0001.JPG",
            width_px=320,
            height_px=240,
            captured_at=datetime(2025, 9, 30, 9, 0, tzinfo=UTC),
            camera=rec.GeoPoint(lat=22.5333, lon=113.9305),
            asset_id="P-001",
            detections=2,
        ),
        rec.DetectionRecord(
            id="det-defect",
            batch_id=BATCH,
            photo_id=photo_id,
            class_id=1,
            class_name="defect",
            role="defect",
            confidence=0.91,
            severity=severity,
            xyxy=(100, 80, 160, 130),
            ground=rec.GeoPoint(lat=22.53331, lon=113.93051),
            asset_id="P-001",
            attach="ground_point",
            evidence_crop="crops/d1.jpg",
            model="cplid-cascade",
            model_version="4",
        ),
        rec.DetectionRecord(
            id="det-insulator",
            batch_id=BATCH,
            photo_id=photo_id,
            class_id=0,
            class_name="insulator",
            role="asset_marker",
            confidence=0.97,
            severity=0,
            xyxy=(60, 40, 250, 200),
            asset_id="P-001",
            attach="ground_point",
        ),
        rec.AssetRecord(
            id=rec.stable_id("asset", "P-001"),
            batch_id=BATCH,
            asset_id="P-001",
            name="1号杆",
            line_id="L-10KV-01",
            status="inspected",
            position=rec.GeoPoint(lat=22.5333, lon=113.9305),
            sightings=1,
            photo_ids=[photo_id],
            detection_ids=["det-defect"],
            defect_ids=["det-defect"],
            max_severity=severity,
        ),
        rec.AssetRecord(
            id=rec.stable_id("asset", "P-002"),
            batch_id=BATCH,
            asset_id="P-002",
            name="2号杆",
            line_id="L-10KV-01",
            status="uninspected",
            position=rec.GeoPoint(lat=22.5343, lon=113.9315),
        ),
        rec.LedgerIssueRecord(
            id="issue-mismatch",
            batch_id=BATCH,
            issue="position_mismatch",
            asset_id="P-001",
            line_id="L-10KV-01",
            position=rec.GeoPoint(lat=22.5333, lon=113.9305),
            observed=rec.GeoPoint(lat=22.5334, lon=113.9306),
            offset_m=14.2,
            sightings=3,
            photo_ids=[photo_id],
            detail="seen 14 m north-east of its ledger point",
        ),
        rec.LedgerIssueRecord(
            id="issue-unregistered",
            batch_id=BATCH,
            issue="unregistered",
            asset_id="U-7",
            line_id="L-10KV-01",
            position=rec.GeoPoint(lat=22.5350, lon=113.9320),
            sightings=2,
        ),
    ]
    rec.write_jsonl(items, out / "records.jsonl")  # type: ignore[arg-type]
    (out / "batch.json").write_text(
        json.dumps({"batch_id": BATCH, "finished_at": finished, "model": "cplid-cascade@3"})
    )
    return out


def test_import_is_idempotent_and_newer_run_supersedes(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    batch_dir = write_batch(tmp_path)
    first = importing.import_batch(session, batch_dir, settings=settings, actor=None)
    assert first.created["findings"] == 2 and first.created["ledger_tasks"] == 2
    events = audit.event_count(session)
    again = importing.import_batch(session, batch_dir, settings=settings, actor=None)
    assert again.unchanged
    assert audit.event_count(session) == events
    assert session.scalar(select(func.count()).select_from(Finding)) == 2
    # each finding names its model: the record's own, else (older records) the batch's
    defect, insulator = session.get(Finding, "det-defect"), session.get(Finding, "det-insulator")
    assert defect is not None and (defect.model, defect.model_version) == ("cplid-cascade", "4")
    assert insulator is not None and (insulator.model, insulator.model_version) == (
        "cplid-cascade", "3"
    )

    write_batch(tmp_path, severity=4, finished="2025-10-02T08:00:00+00:00")
    newer = importing.import_batch(session, batch_dir, settings=settings, actor=None)
    assert newer.updated["findings"] == 2  # both carry the newer run's time
    assert session.get(Finding, "det-defect").severity == 4  # type: ignore[union-attr]
    # the unregistered asset is not in the ledger until an inspector accepts it
    assert session.get(LedgerAsset, "U-7") is None
    assert session.get(LedgerAsset, "P-001").last_seen_at == datetime(2025, 9, 30, 9, tzinfo=UTC)  # type: ignore[union-attr]


def test_bad_batch_folder_is_refused(session: Session, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match=r"no records\.jsonl"):
        importing.import_batch(session, tmp_path, settings=settings, actor=None)
    (tmp_path / "records.jsonl").write_text('{"kind": "photo", "schema_version": 99}\n')
    with pytest.raises(ValidationFailed, match="newer"):
        importing.import_batch(session, tmp_path, settings=settings, actor=None)


@pytest.mark.both_stores
def test_confirmed_defect_creates_repair_order_for_the_district_repair_crew(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    district = make_district(session)
    make_crew(session, district=district)
    repair_crew = make_crew(session, district=district, handles_repairs=True)
    inspector, _ = make_user(session, settings, role=Role.inspector)
    importing.import_batch(session, write_batch(tmp_path), settings=settings, actor=None)
    from field_api.inspections.models import LedgerLine

    session.get(LedgerLine, "L-10KV-01").district_id = district.id  # type: ignore[union-attr]
    from field_api.common.actors import Principal

    actor = Principal(user_id=inspector.id, name=inspector.name, role=Role.inspector)
    finding, repair = review.review(
        session, "det-defect", decision=FindingStatus.confirmed, actor=actor, settings=settings
    )
    assert finding.status == FindingStatus.confirmed and finding.reviewed_by == inspector.id
    assert repair is not None
    assert repair.crew_id == repair_crew.id
    assert repair.repair_kit_code == "RK-INS-STRING"
    assert (
        repair.evidence_sha256 is not None
        and store_of(settings).exists(repair.evidence_sha256)
    )
    with pytest.raises(InvalidTransition):
        review.review(
            session, "det-defect", decision=FindingStatus.rejected, actor=actor, settings=settings
        )
    # an asset marker, even confirmed, is not a repair
    _, none = review.review(
        session, "det-insulator", decision=FindingStatus.confirmed, actor=actor, settings=settings
    )
    assert none is None


def test_low_severity_defect_makes_no_repair(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    inspector, _ = make_user(session, settings, role=Role.inspector)
    importing.import_batch(session, write_batch(tmp_path, severity=1), settings=settings, actor=None)
    from field_api.common.actors import Principal

    actor = Principal(user_id=inspector.id, name="i", role=Role.inspector)
    _, repair = review.review(
        session, "det-defect", decision=FindingStatus.confirmed, actor=actor, settings=settings
    )
    assert repair is None
    assert session.scalar(select(func.count()).select_from(RepairOrder)) == 0


@pytest.mark.both_stores
def test_http_review_repair_flow_and_ledger_tasks(
    client: TestClient, session: Session, settings: Settings, tmp_path: Path
) -> None:
    district = make_district(session)
    repair_crew = make_crew(session, district=district, handles_repairs=True)
    other_crew = make_crew(session, district=district)
    _, inspector = make_user(session, settings, role=Role.inspector)
    _, crew_token = make_user(session, settings, role=Role.crew, crew=repair_crew)
    _, other_token = make_user(session, settings, role=Role.crew, crew=other_crew)
    _, planner = make_user(session, settings, role=Role.planner)
    settings.vision.inspections_dir = tmp_path
    write_batch(tmp_path)
    session.commit()

    r = client.post(
        "/inspections/batches/import", json={"directory": "batch"}, headers=auth(crew_token)
    )
    assert r.status_code == 403
    r = client.post(
        "/inspections/batches/import", json={"directory": "batch"}, headers=auth(inspector)
    )
    assert r.status_code == 200, r.text
    assert client.post(
        "/inspections/batches/import", json={"directory": "batch"}, headers=auth(inspector)
    ).json()["unchanged"]
    from field_api.inspections.models import LedgerLine

    session.get(LedgerLine, "L-10KV-01").district_id = district.id  # type: ignore[union-attr]
    session.commit()

    found = client.get(
        "/inspections/findings?class_name=defect&min_severity=3", headers=auth(planner)
    ).json()["items"]
    assert [f["id"] for f in found] == ["det-defect"]
    r = client.post(
        "/inspections/findings/det-defect/review",
        json={"decision": "corrected", "severity": 4, "xyxy": [101, 81, 161, 131]},
        headers=auth(inspector),
    )
    assert r.status_code == 200, r.text
    repair = r.json()["repair_order"]
    assert repair["crew_id"] == repair_crew.id and repair["stage"] == "assigned"
    rid = repair["id"]

    assert client.get(f"/repair-orders/{rid}", headers=auth(other_token)).status_code == 403
    mine = client.get("/repair-orders", headers=auth(crew_token)).json()
    assert [o["id"] for o in mine["items"]] == [rid] and mine["total"] == 1
    crop = client.get("/inspections/findings/det-defect/crop", headers=auth(crew_token))
    assert crop.status_code == 200  # streamed from the folder or the bucket
    assert crop.headers["content-type"] == "image/jpeg"
    assert crop.headers["x-content-type-options"] == "nosniff"
    with Image.open(io.BytesIO(crop.content)) as im:
        assert im.format == "JPEG"
    h = auth(crew_token)
    assert (
        client.post(
            f"/repair-orders/{rid}/transitions", json={"to": "repaired"}, headers=h
        ).status_code
        == 409
    )
    assert (
        client.post(
            f"/repair-orders/{rid}/transitions", json={"to": "on_site"}, headers=h
        ).status_code
        == 200
    )
    r = client.post(f"/repair-orders/{rid}/transitions", json={"to": "repaired"}, headers=h)
    assert r.status_code == 422 and "before、after" in r.json()["detail"]  # zh-CN list
    assert r.json()["params"]["missing"] == ["before", "after"]
    bad = client.post(
        f"/repair-orders/{rid}/photos/before",
        files={"file": ("x.jpg", b"MZ\x90\x00", "image/jpeg")},
        headers=h,
    )
    assert bad.status_code == 422
    for kind in ("before", "after"):
        r = client.post(
            f"/repair-orders/{rid}/photos/{kind}",
            files={"file": (f"{kind}.jpg", _jpeg((1, 2, 3)), "image/jpeg")},
            headers=h,
        )
        assert r.status_code == 200
    assert (
        client.post(
            f"/repair-orders/{rid}/transitions", json={"to": "repaired"}, headers=h
        ).status_code
        == 200
    )
    assert (
        client.post(
            f"/repair-orders/{rid}/transitions", json={"to": "verified"}, headers=h
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/repair-orders/{rid}/transitions", json={"to": "verified"}, headers=auth(inspector)
        ).json()["stage"]
        == "verified"
    )

    tasks = client.get(
        "/inspections/ledger-tasks?line_id=L-10KV-01", headers=auth(planner)
    ).json()["items"]
    assert {t["kind"] for t in tasks} == {"position_mismatch", "unregistered"}
    r = client.post(
        "/inspections/ledger-tasks/issue-mismatch/decision",
        json={"accept": True},
        headers=auth(inspector),
    )
    assert r.status_code == 200
    moved = session.get(LedgerAsset, "P-001")
    session.refresh(moved)
    assert (moved.lat, moved.lon) == (22.5334, 113.9306)  # type: ignore[union-attr]
    assert (
        client.post(
            "/inspections/ledger-tasks/issue-mismatch/decision",
            json={"accept": True},
            headers=auth(inspector),
        ).status_code
        == 409
    )
    client.post(
        "/inspections/ledger-tasks/issue-unregistered/decision",
        json={"accept": True},
        headers=auth(inspector),
    )
    assert session.get(LedgerAsset, "U-7") is not None
    assert session.get(LedgerTask, "issue-unregistered").status.value == "accepted"  # type: ignore[union-attr]

    backlog = client.get("/planner/defect-backlog", headers=auth(planner)).json()
    assert backlog == []  # the only defect was repaired and verified
    cov = client.get("/planner/inspection-coverage?days=3650", headers=auth(planner)).json()
    assert cov[0]["line_id"] == "L-10KV-01" and cov[0]["assets"] == 3 and cov[0]["seen"] == 1
    csv_text = client.get(
        "/planner/repair-lead-times?format=csv", headers=auth(planner, **{"Accept-Language": "en"})
    ).text
    assert csv_text.lstrip("\ufeff").splitlines()[0].startswith("Repair order,Finding,Stage")
    assert RepairStage.verified.value in csv_text


@pytest.mark.both_stores
def test_export_training_set_writes_voc(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    inspector, _ = make_user(session, settings, role=Role.inspector)
    importing.import_batch(session, write_batch(tmp_path), settings=settings, actor=None)
    from field_api.common.actors import Principal

    actor = Principal(user_id=inspector.id, name="i", role=Role.inspector)
    review.review(
        session, "det-defect", decision=FindingStatus.confirmed, actor=actor, settings=settings
    )
    review.review(
        session, "det-insulator", decision=FindingStatus.rejected, actor=actor, settings=settings
    )
    summary = export.export_training_set(session, tmp_path / "export", settings=settings)
    assert summary.boxes == {"defect": 1} and sum(summary.images.values()) == 1
    xml = next((tmp_path / "export").glob("*/annotations/*.xml")).read_text()
    assert "<name>defect</name>" in xml and "<xmin>100</xmin>" in xml and "insulator" not in xml


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_import_reads_only_under_the_inspections_folder(
    client: TestClient, session: Session, settings: Settings, tmp_path: Path, kind: str
) -> None:
    _, inspector = make_user(session, settings, role=Role.inspector)
    session.commit()
    root = tmp_path / "inspections"
    root.mkdir()
    settings.vision.inspections_dir = root
    outside = write_batch(tmp_path / "elsewhere")  # a real batch folder, outside the root
    directory = {
        "dotdot": "../elsewhere/batch",
        "absolute": str(outside),
        "symlink": "linked",
    }[kind]
    if kind == "symlink":
        (root / "linked").symlink_to(outside, target_is_directory=True)
    r = client.post(
        "/inspections/batches/import", json={"directory": directory}, headers=auth(inspector)
    )
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "inspection.path_outside"
    assert "不在巡检目录内" in r.json()["detail"]  # detail: zh-CN by default
    assert session.scalar(select(func.count()).select_from(Finding)) == 0

    inside = write_batch(root)
    r = client.post(
        "/inspections/batches/import", json={"directory": str(inside)}, headers=auth(inspector)
    )
    assert r.status_code == 200, r.text


def test_a_photo_named_outside_the_folder_refuses_the_whole_import(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    batch_dir = write_batch(tmp_path)
    secret = tmp_path.parent / f"{tmp_path.name}-secret.jpg"
    secret.write_bytes(_jpeg((1, 2, 3)))
    lines = (batch_dir / "records.jsonl").read_text().splitlines()
    patched = [
        line.replace('"path":"DJI_0001.JPG"', f'"path":"{secret}"') for line in lines
    ]
    assert patched != lines
    (batch_dir / "records.jsonl").write_text("\n".join(patched) + "\n")
    with pytest.raises(Forbidden, match="outside the inspections folder"):
        importing.import_batch(session, batch_dir, settings=settings, actor=None)
    assert session.scalar(select(func.count()).select_from(Finding)) == 0
    # the operator's command line is not confined
    summary = importing.import_batch(
        session, batch_dir, settings=settings, actor=None, confined=False
    )
    assert summary.created["findings"] == 2
