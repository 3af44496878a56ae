"""Dispatch of repair orders: the line → district/crew table, the unassigned queue, assignment,
the one-off dispatch command, picking the pole of an unlocated defect, undo, locked evidence."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from field_api.audit import service as audit
from field_api.audit.models import AuditEvent
from field_api.cli import app as cli
from field_api.common.actors import Principal, Role
from field_api.config import Settings, get_settings
from field_api.db import make_engine, make_session_factory
from field_api.errors import Conflict, NotFound, ValidationFailed
from field_api.inspections import dispatch, importing, repairs, review
from field_api.inspections.models import Finding, LedgerLine, LineDispatch, RepairOrder
from field_api.inspections.rules import FindingStatus, RepairStage
from tests.builders import auth, make_crew, make_district, make_user
from tests.field_api.inspections.test_service import BATCH, write_batch
from vision import records as rec

LINE = "L-10KV-01"


@pytest.fixture(autouse=True)
def _inspections_dir(settings: Settings, tmp_path: Path) -> None:
    settings.vision.inspections_dir = tmp_path


def write_batch_with_unlocated(root: Path) -> Path:
    """The test batch plus a defect on a photo without any position (no ground point, no pole)."""
    out = write_batch(root)
    records = list(rec.read_jsonl(out / "records.jsonl"))
    photo_id = next(r.photo_id for r in records if r.kind == "photo")
    records.append(
        rec.DetectionRecord(
            id="det-unlocated",
            batch_id=BATCH,
            photo_id=photo_id,
            class_id=1,
            class_name="defect",
            role="defect",
            confidence=0.88,
            severity=3,
            xyxy=(10, 10, 50, 50),
            attach="none",
        )
    )
    rec.write_jsonl(records, out / "records.jsonl")
    return out


def _actor(session: Session, settings: Settings, role: Role) -> Principal:
    user, _ = make_user(session, settings, role=role)
    return Principal(user_id=user.id, name=user.name, role=role)


def _confirm(
    session: Session, settings: Settings, actor: Principal, finding_id: str
) -> RepairOrder:
    _, repair = review.review(
        session, finding_id, decision=FindingStatus.confirmed, actor=actor, settings=settings
    )
    assert repair is not None
    return repair


def _actions(session: Session) -> list[str]:
    return list(session.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


def test_the_dispatch_table_gives_the_crew_else_the_district_default(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    east, west = make_district(session), make_district(session)
    east_default = make_crew(session, district=east, handles_repairs=True)
    west_default = make_crew(session, district=west, handles_repairs=True)
    west_second = make_crew(session, district=west, handles_repairs=True)
    make_crew(session, district=west)  # a works crew: never given repairs
    admin = _actor(session, settings, Role.admin)
    inspector = _actor(session, settings, Role.inspector)
    importing.import_batch(session, write_batch(tmp_path), settings=settings, actor=None)
    session.get(LedgerLine, LINE).district_id = east.id  # type: ignore[union-attr]

    # the ledger's district: its default repair crew
    assert dispatch.dispatch_for(session, LINE) == (east.id, east_default)
    # the admins' table wins over the ledger: the district's default, or the crew it names
    dispatch.put_line_dispatch(session, LINE, district_id=west.id, crew_id=None, actor=admin)
    assert dispatch.dispatch_for(session, LINE) == (west.id, west_default)
    dispatch.put_line_dispatch(
        session, LINE, district_id=west.id, crew_id=west_second.id, actor=admin
    )
    repair = _confirm(session, settings, inspector, "det-defect")
    assert (repair.district_id, repair.crew_id) == (west.id, west_second.id)
    assert repair.dispatched_at is not None and repair.lat is not None
    assert "line_dispatch.create" in _actions(session)
    assert "line_dispatch.update" in _actions(session)

    # a crew of another district, or one that does not repair, is refused with the reason
    with pytest.raises(ValidationFailed) as other:
        dispatch.put_line_dispatch(
            session, LINE, district_id=east.id, crew_id=west_second.id, actor=admin
        )
    assert other.value.code == "repair.crew_other_district"
    works = make_crew(session, district=east)
    with pytest.raises(ValidationFailed) as not_repair:
        dispatch.put_line_dispatch(session, LINE, district_id=east.id, crew_id=works.id, actor=admin)
    assert not_repair.value.code == "repair.crew_not_repair"

    dispatch.delete_line_dispatch(session, LINE, actor=admin)
    assert session.get(LineDispatch, LINE) is None
    assert dispatch.dispatch_for(session, LINE) == (east.id, east_default)
    assert _actions(session)[-1] == "line_dispatch.delete"
    with pytest.raises(NotFound):
        dispatch.delete_line_dispatch(session, LINE, actor=admin)


def test_unassigned_orders_are_queued_and_the_dispatch_command_fixes_them_once(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    district = make_district(session)
    crew = make_crew(session, district=district, handles_repairs=True)
    admin = _actor(session, settings, Role.admin)
    inspector = _actor(session, settings, Role.inspector)
    importing.import_batch(
        session, write_batch_with_unlocated(tmp_path), settings=settings, actor=None
    )
    # the ledger named no district: the orders reach no crew and wait in the queue
    located = _confirm(session, settings, inspector, "det-defect")
    unlocated = _confirm(session, settings, inspector, "det-unlocated")
    assert located.crew_id is None and unlocated.crew_id is None
    rows, total = repairs.list_unassigned_repairs(session)
    assert total == 2 and [r.id for r in rows] == [located.id, unlocated.id]
    assert repairs.list_unassigned_repairs(session, limit=1, offset=1)[0] == [unlocated]

    dispatch.put_line_dispatch(session, LINE, district_id=district.id, crew_id=None, actor=admin)
    counts = repairs.dispatch_unassigned(session, actor=None)
    # the unlocated one stays unassigned: no crew is sent without a pole or coordinates
    assert counts == {"assigned": 1, "still_unassigned": 0, "not_located": 1}
    assert located.crew_id == crew.id and located.district_id == district.id
    assert unlocated.crew_id is None
    events = len(_actions(session))
    assert repairs.dispatch_unassigned(session, actor=None) == {
        "assigned": 0,
        "still_unassigned": 0,
        "not_located": 1,
    }
    assert len(_actions(session)) == events  # idempotent: nothing written the second time


def test_an_unlocated_defect_is_dispatched_once_its_pole_is_picked(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    district = make_district(session)
    crew = make_crew(session, district=district, handles_repairs=True)
    planner = _actor(session, settings, Role.planner)
    inspector = _actor(session, settings, Role.inspector)
    importing.import_batch(
        session, write_batch_with_unlocated(tmp_path), settings=settings, actor=None
    )
    session.get(LedgerLine, LINE).district_id = district.id  # type: ignore[union-attr]
    repair = _confirm(session, settings, inspector, "det-unlocated")
    assert (repair.asset_id, repair.lat, repair.lon, repair.crew_id) == (None, None, None, None)
    with pytest.raises(Conflict) as refused:
        repairs.assign_repair(session, repair.id, crew.id, actor=planner)
    assert refused.value.code == "repair.not_located"

    finding = session.get(Finding, "det-unlocated")
    assert finding is not None
    with pytest.raises(Conflict) as stale:
        review.set_finding_asset(
            session, "det-unlocated", "P-002", actor=inspector, version=finding.version - 1
        )
    assert stale.value.code == "inspection.finding_stale"
    with pytest.raises(NotFound):
        review.set_finding_asset(session, "det-unlocated", "P-404", actor=inspector)
    _, moved = review.set_finding_asset(
        session, "det-unlocated", "P-002", actor=inspector, version=finding.version
    )
    assert moved is repair
    assert (repair.asset_id, repair.line_id) == ("P-002", LINE)
    assert (repair.lat, repair.lon) == (22.5343, 113.9315)  # the pole's ledger position
    assert repair.crew_id == crew.id and repair.district_id == district.id
    assert finding.asset_id == "P-002" and finding.line_id == LINE

    # a planner reassigns it (audited); a started order keeps its crew
    other = make_crew(session, district=district, handles_repairs=True)
    repairs.assign_repair(session, repair.id, other.id, actor=planner)
    assert repair.crew_id == other.id and repair.dispatched_by == planner.user_id
    assert _actions(session)[-1] == "repair_order.assign"
    repair.stage = RepairStage.on_site
    with pytest.raises(Conflict) as started:
        repairs.assign_repair(session, repair.id, crew.id, actor=planner)
    assert started.value.code == "repair.already_started"
    repair.stage = RepairStage.assigned  # put back: the audit chain checks the row at the end
    session.flush()


def test_undo_until_a_crew_starts_and_confirming_again_reopens_the_order(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    district = make_district(session)
    crew = make_crew(session, district=district, handles_repairs=True)
    crew_user, _ = make_user(session, settings, role=Role.crew, crew=crew)
    crew_actor = Principal(user_id=crew_user.id, name="c", role=Role.crew, crew_id=crew.id)
    inspector = _actor(session, settings, Role.inspector)
    importing.import_batch(session, write_batch(tmp_path), settings=settings, actor=None)
    session.get(LedgerLine, LINE).district_id = district.id  # type: ignore[union-attr]

    repair = _confirm(session, settings, inspector, "det-defect")
    assert repairs.list_repairs(session, crew_actor) == [repair]
    finding, cancelled = review.undo_review(session, "det-defect", actor=inspector)
    assert finding.status == FindingStatus.proposed and finding.reviewed_by is None
    assert cancelled is repair and repair.stage == RepairStage.cancelled
    assert repair.cancelled_at is not None
    assert repairs.list_repairs(session, crew_actor) == []  # gone from the crew's list
    assert _actions(session)[-2:] == ["repair_order.cancel", "finding.undo"]
    with pytest.raises(Conflict) as nothing:
        review.undo_review(session, "det-defect", actor=inspector)
    assert nothing.value.code == "inspection.undo_refused"

    again = _confirm(session, settings, inspector, "det-defect")
    assert again.id == repair.id and again.stage == RepairStage.assigned
    assert again.cancelled_at is None and again.crew_id == crew.id
    repairs.move_repair(session, repair.id, RepairStage.on_site, actor=crew_actor)
    with pytest.raises(Conflict) as started:
        review.undo_review(session, "det-defect", actor=inspector)
    assert started.value.code == "inspection.undo_refused"
    assert session.get(Finding, "det-defect").status == FindingStatus.confirmed  # type: ignore[union-attr]

    # a rejection is undone as well (no repair order to cancel)
    review.review(
        session,
        "det-insulator",
        decision=FindingStatus.rejected,
        actor=inspector,
        settings=settings,
    )
    finding, none = review.undo_review(session, "det-insulator", actor=inspector)
    assert finding.status == FindingStatus.proposed and none is None


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 200, 0)).save(buf, "PNG")
    return buf.getvalue()


def test_http_dispatch_undo_and_locked_evidence(
    client: TestClient, session: Session, settings: Settings, tmp_path: Path
) -> None:
    district = make_district(session)
    crew = make_crew(session, district=district, handles_repairs=True)
    works = make_crew(session, district=district)
    _, admin = make_user(session, settings, role=Role.admin)
    _, planner = make_user(session, settings, role=Role.planner)
    _, inspector = make_user(session, settings, role=Role.inspector)
    _, crew_token = make_user(session, settings, role=Role.crew, crew=crew)
    batch = write_batch_with_unlocated(tmp_path)
    (batch / "crops" / "d1.jpg").write_bytes(_png())  # a PNG under a .jpg name
    importing.import_batch(session, batch, settings=settings, actor=None)
    session.commit()

    # the PNG crop is served as what it is
    r = client.get("/inspections/findings/det-defect/crop", headers=auth(inspector))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    r = client.get(
        f"/inspections/photos/{session.get(Finding, 'det-defect').photo_id}/image",  # type: ignore[union-attr]
        headers=auth(inspector),
    )
    assert r.headers["content-type"] == "image/jpeg"

    # unassigned queue, then the admin maps the line and the planner assigns
    for fid in ("det-defect", "det-unlocated"):
        version = client.get(f"/inspections/findings/{fid}", headers=auth(inspector)).json()[
            "version"
        ]
        r = client.post(
            f"/inspections/findings/{fid}/review",
            json={"decision": "confirmed", "version": version},
            headers=auth(inspector),
        )
        assert r.status_code == 200, r.text
    queue = client.get("/repair-orders/unassigned?limit=1", headers=auth(planner)).json()
    assert queue["total"] == 2 and len(queue["items"]) == 1 and queue["next_offset"] == 1
    located_id, unlocated_id = (
        session.execute(select(RepairOrder.id).order_by(RepairOrder.id)).scalars().all()
    )
    r = client.post(
        f"/repair-orders/{unlocated_id}/assign", json={"crew_id": crew.id}, headers=auth(planner)
    )
    assert r.status_code == 409 and r.json()["code"] == "repair.not_located"
    r = client.post(
        f"/repair-orders/{located_id}/assign", json={"crew_id": works.id}, headers=auth(planner)
    )
    assert r.status_code == 422 and r.json()["code"] == "repair.crew_not_repair"
    r = client.post(
        f"/repair-orders/{located_id}/assign", json={"crew_id": 2**31}, headers=auth(planner)
    )
    assert r.status_code == 422  # out of range: refused at the edge
    assert (
        client.put(
            f"/admin/line-dispatch/{LINE}", json={"district_id": district.id}, headers=auth(planner)
        ).status_code
        == 403
    )
    r = client.put(
        f"/admin/line-dispatch/{LINE}",
        json={"district_id": district.id, "crew_id": crew.id},
        headers=auth(admin),
    )
    assert r.status_code == 200 and r.json()["crew_id"] == crew.id
    r = client.put(
        f"/admin/line-dispatch/{LINE}", json={"district_id": 999999}, headers=auth(admin)
    )
    assert r.status_code == 404 and r.json()["code"] == "repair.district_not_found"
    listed = client.get("/admin/line-dispatch", headers=auth(admin)).json()
    assert listed["total"] == 1 and listed["items"][0]["line_id"] == LINE
    r = client.post(
        f"/repair-orders/{located_id}/assign", json={"crew_id": crew.id}, headers=auth(planner)
    )
    assert r.status_code == 200 and r.json()["crew_id"] == crew.id
    assert r.json()["dispatched_at"] is not None
    # the inspector picks the pole of the unlocated one: it reaches the line's crew
    finding = client.get("/inspections/findings/det-unlocated", headers=auth(inspector)).json()
    r = client.put(
        "/inspections/findings/det-unlocated/asset",
        json={"asset_id": "P-002", "version": finding["version"]},
        headers=auth(inspector),
    )
    assert r.status_code == 200, r.text
    assert r.json()["repair_order"]["crew_id"] == crew.id
    assert r.json()["finding"]["version"] == finding["version"] + 1
    assert client.get("/repair-orders/unassigned", headers=auth(planner)).json()["total"] == 0

    # undo: fine while assigned, a clear 409 once the crew is on site
    r = client.post(
        "/inspections/findings/det-unlocated/undo",
        json={"version": finding["version"]},  # stale: the pole was picked since
        headers=auth(inspector),
    )
    assert r.status_code == 409 and r.json()["code"] == "inspection.finding_stale"
    r = client.post("/inspections/findings/det-unlocated/undo", json={}, headers=auth(inspector))
    assert r.status_code == 200 and r.json()["repair_order"]["stage"] == "cancelled"
    h = auth(crew_token)
    assert (
        client.post(
            f"/repair-orders/{located_id}/transitions", json={"to": "on_site"}, headers=h
        ).status_code
        == 200
    )
    r = client.post(
        "/inspections/findings/det-defect/undo",
        json={},
        headers={**auth(inspector), "Accept-Language": "en"},
    )
    assert r.status_code == 409 and r.json()["code"] == "inspection.undo_refused"
    assert "started" in r.json()["detail"]

    # repair evidence is immutable once verified
    for kind in ("before", "after"):
        r = client.post(
            f"/repair-orders/{located_id}/photos/{kind}",
            files={"file": (f"{kind}.png", _png(), "image/png")},
            headers=h,
        )
        assert r.status_code == 200
    for to, who in (("repaired", h), ("verified", auth(inspector))):
        r = client.post(f"/repair-orders/{located_id}/transitions", json={"to": to}, headers=who)
        assert r.status_code == 200, r.text
    r = client.post(
        f"/repair-orders/{located_id}/photos/after",
        files={"file": ("after.png", _png(), "image/png")},
        headers=h,
    )
    assert r.status_code == 409 and r.json()["code"] == "repair.photos_locked"
    assert r.json()["params"]["stage"] == "verified"

    # every list pages: the crew sees its own order (the cancelled one is gone), a planner all
    mine = client.get("/repair-orders", headers=h).json()
    assert mine["total"] == 1 and [o["id"] for o in mine["items"]] == [located_id]
    everyone = client.get("/repair-orders?limit=1", headers=auth(planner)).json()
    assert everyone["total"] == 2 and everyone["next_offset"] == 1
    cancelled = client.get("/repair-orders?stage=cancelled", headers=auth(planner)).json()
    assert [o["id"] for o in cancelled["items"]] == [unlocated_id]

    assert client.delete(f"/admin/line-dispatch/{LINE}", headers=auth(admin)).status_code == 204
    assert client.delete(f"/admin/line-dispatch/{LINE}", headers=auth(admin)).status_code == 404


@pytest.fixture
def cli_db(committed_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FIELDOPS_DATABASE_URL", committed_url)
    monkeypatch.setenv("FIELDOPS_TOKEN_PEPPER", "cli-test-pepper-0123456789")
    get_settings.cache_clear()
    yield committed_url
    get_settings.cache_clear()


def test_the_dispatch_command_is_idempotent(cli_db: str, tmp_path: Path) -> None:
    process = get_settings()
    vision = process.vision.model_copy(update={"inspections_dir": tmp_path})
    settings = process.model_copy(update={"vision": vision})
    engine = make_engine(cli_db)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        district = make_district(session)
        crew = make_crew(session, district=district, handles_repairs=True)
        district_id, crew_id = district.id, crew.id
        inspector = _actor(session, settings, Role.inspector)
        importing.import_batch(session, write_batch(tmp_path), settings=settings, actor=None)
        assert _confirm(session, settings, inspector, "det-defect").crew_id is None
    with factory.begin() as session:  # the district reaches the ledger later
        line = session.get(LedgerLine, LINE)
        assert line is not None
        line.district_id = district_id
        audit.record(session, actor=None, action="ledger_lines.set_district", entity=line)
    results = [CliRunner().invoke(cli, ["inspections", "dispatch"]) for _ in range(2)]
    assert [r.exit_code for r in results] == [0, 0], [r.output for r in results]
    assert json.loads(results[0].output)["assigned"] == 1
    assert json.loads(results[1].output)["assigned"] == 0
    with factory() as session:
        order = session.execute(select(RepairOrder)).scalar_one()
        assert order.crew_id == crew_id
    engine.dispose()
