"""The register, outages and indices through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common.actors import Role
from field_api.common.clock import ManualClock
from field_api.config import Settings
from field_api.inspections.models import LedgerAsset, LedgerLine
from field_api.network.models import Transformer
from field_api.reliability.models import Customer, Outage
from field_api.wiring import job_handlers, periodic_jobs
from tests.builders import auth, make_user

SECTIONS = (
    "switch_code,feeder,district,transformer_code\n"
    "SW-1,F-10,D-NS,TX-R1\n"
    "SW-2,F-10,D-NS,TX-R2\n"
)
HEADER = (
    "account_no,name,phone,supply_point,supply_kind,transformer_code,switch_code,area,"
    "connected_on\n"
)
# TX-R1 (urban): 3 accounts on 2 supply points; TX-R2 (rural): 2 accounts on 1 supply point
CUSTOMERS = HEADER + (
    "A-001,张三丰,13800138001,SP-1,lv,TX-R1,SW-1,urban,2026-01-01\n"
    "A-002,李四,13800138002,SP-1,lv,TX-R1,,urban,2026-01-01\n"
    "A-003,王五,13800138003,SP-2,lv,TX-R1,SW-1,urban,2026-01-01\n"
    "A-004,赵六,13800138004,SP-3,lv,TX-R2,SW-2,rural,2026-01-01\n"
    "A-005,钱七,13800138005,SP-3,lv,TX-R2,SW-2,rural,2026-01-01\n"
)


def _file(text: str, name: str = "f.csv") -> dict[str, Any]:
    return {"file": (name, text.encode(), "text/csv")}


@pytest.fixture
def people(session: Session, settings: Settings) -> dict[str, str]:
    tokens = {}
    for role in (Role.admin, Role.planner, Role.dispatcher, Role.storekeeper):
        tokens[role.value] = make_user(session, settings, role=role)[1]
    for i, code in enumerate(("TX-R1", "TX-R2")):
        session.add(Transformer(code=code, name=code, rated_kva=400, base_load_kva=100,
                                lon=113.9 + i / 100, lat=22.5))
    session.commit()
    return tokens


def _register(client: TestClient, admin: str) -> None:
    r = client.post("/reliability/sections/imports", files=_file(SECTIONS), headers=auth(admin))
    assert r.status_code == 201, r.text
    r = client.post("/reliability/customers/imports", files=_file(CUSTOMERS),
                    headers=auth(admin))
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 5


def test_a_bad_register_file_is_refused_whole_with_each_row(
    client: TestClient, session: Session, people: dict[str, str]
) -> None:
    admin = people["admin"]
    client.post("/reliability/sections/imports", files=_file(SECTIONS), headers=auth(admin))
    bad = HEADER + (
        "A-001,张三,13800138001,SP-1,lv,TX-R1,SW-1,urban,2026-01-01\n"  # good
        "A-002,李四,13800138002,SP-1,lv,TX-NOPE,,urban,2026-01-01\n"  # unknown transformer
        "A-003,王五,1380,SP-2,lv,TX-R1,SW-2,suburb,2026-01-01\n"  # phone, area, wrong switch
    )
    r = client.post("/reliability/customers/imports", files=_file(bad, "bad.csv"),
                    headers=auth(admin))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "reliability.rows_invalid"
    assert [row["row"] for row in body["params"]["rows"]] == [3, 4]
    assert "transformer TX-NOPE is not in the network register" in body["params"]["rows"][0][
        "errors"]
    assert session.scalar(select(func.count()).select_from(Customer)) == 0  # nothing imported
    # the whole-file problems: no header columns, not UTF-8
    r = client.post("/reliability/customers/imports", files=_file("a,b\n1,2\n"),
                    headers=auth(admin))
    assert r.status_code == 422 and r.json()["code"] == "reliability.file_invalid"
    r = client.post("/reliability/customers/imports",
                    files={"file": ("x.csv", b"\xff\xfe\x00", "text/csv")}, headers=auth(admin))
    assert r.status_code == 422
    # only admins manage the register
    r = client.post("/reliability/customers/imports", files=_file(CUSTOMERS),
                    headers=auth(people["dispatcher"]))
    assert r.status_code == 403


def test_the_register_is_masked_in_lists_and_exports(
    client: TestClient, session: Session, people: dict[str, str]
) -> None:
    _register(client, people["admin"])
    tx = session.execute(select(Transformer).where(Transformer.code == "TX-R2")).scalar_one()
    session.refresh(tx)
    assert (tx.feeder, tx.district) == ("F-10", "D-NS")  # transformers gain feeder, district
    r = client.get("/reliability/customers", headers=auth(people["planner"]))
    assert r.status_code == 200
    first = r.json()[0]
    assert first["name_masked"] == "张**" and first["phone_masked"] == "*******8001"
    assert first["switch_code"] == "SW-1" and first["feeder"] == "F-10"
    csv_text = client.get("/reliability/customers.csv", headers=auth(people["admin"])).text
    for text in (r.text, csv_text):
        assert "13800138001" not in text and "张三丰" not in text
    assert "*******8001" in csv_text
    assert client.get("/reliability/customers",
                      headers=auth(people["storekeeper"])).status_code == 403


def _at(day: int, hour: int, minute: int = 0, month: int = 3) -> str:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC).isoformat()


def test_a_step_restored_outage_and_its_indices(
    client: TestClient, session: Session, people: dict[str, str], server_clock: ManualClock
) -> None:
    server_clock.set(datetime(2026, 3, 15, 4, 0, tzinfo=UTC))
    _register(client, people["admin"])
    for month in ("2026-01-01", "2026-02-01", "2026-03-01"):
        r = client.post("/reliability/snapshots", json={"month": month},
                        headers=auth(people["admin"]))
        assert r.status_code == 201, r.text
    dispatcher = auth(people["dispatcher"])
    body = {"kind": "fault", "cause": "fault", "feeder": "F-10", "start_at": _at(10, 2)}
    assert client.post("/reliability/outages", json=body,
                       headers=auth(people["planner"])).status_code == 403
    r = client.post("/reliability/outages", json=body, headers=dispatcher)
    assert r.status_code == 201, r.text
    outage = r.json()
    assert outage["open"] and outage["customers"] == 5 and outage["supply_points"] == 3
    assert outage["start_at_local"] == "2026-03-10T10:00:00+08:00"
    oid = outage["id"]
    open_ones = client.get("/reliability/outages", params={"open_only": True}, headers=dispatcher)
    assert [o["id"] for o in open_ones.json()] == [oid]
    # step: TX-R1's customers back after 30 min, the rest when the outage closes at 90 min
    r = client.post(f"/reliability/outages/{oid}/restorations",
                    json={"transformer_codes": ["TX-R1"], "at": _at(10, 2, 30)}, headers=dispatcher)
    assert r.status_code == 200, r.text
    assert r.json()["open"]
    r = client.post(f"/reliability/outages/{oid}/close", json={"end_at": _at(10, 3, 30)},
                    headers=dispatcher)
    assert r.status_code == 200 and not r.json()["open"]
    assert client.post(f"/reliability/outages/{oid}/close", json={},
                       headers=dispatcher).status_code == 409
    assert client.post(f"/reliability/outages/{oid}/approve",
                       headers=dispatcher).status_code == 403
    r = client.post(f"/reliability/outages/{oid}/approve", headers=auth(people["planner"]))
    assert r.status_code == 200 and r.json()["approved"]

    r = client.get("/reliability/indices", params={"year": 2026, "definition": "ieee1366"},
                   headers=auth(people["planner"]))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["med"]["method"] == "none"  # no history, no planner threshold
    scopes = {(s["scope"], s["district"], s["area"]): s for s in report["scopes"]}
    urban, rural = scopes[("area", None, "urban")], scopes[("area", None, "rural")]
    # urban: 3 customers x 0.5 h / 3 = 0.5 h in March; rural: 2 x 1.5 h / 2 = 1.5 h
    assert urban["months"][2]["saidi_h"] == pytest.approx(0.5)
    assert rural["months"][2]["saidi_h"] == pytest.approx(1.5)
    assert urban["ytd"]["saidi_h"] == pytest.approx(0.5) and urban["target_h"] == 2.38
    assert rural["target_h"] == 8.52
    assert urban["projection"]["method"] == "pro_rata"
    assert scopes[("all", None, None)]["ytd"]["saifi"] == pytest.approx(1.0)
    # DL/T 836.1 counts supply points: urban 2 points x 0.5 h / 2 = 0.5 h
    dlt = client.get("/reliability/indices", params={"year": 2026},
                     headers=auth(people["dispatcher"])).json()
    dlt_scopes = {(s["scope"], s["area"]): s for s in dlt["scopes"]}
    assert dlt["unit"] == "supply_points"
    assert dlt_scopes[("all", None)]["ytd"]["customer_hours"] == pytest.approx(2 * 0.5 + 1.5)
    csv_r = client.get("/reliability/indices.csv", params={"year": 2026},
                       headers=auth(people["planner"], **{"Accept-Language": "en"}))
    assert csv_r.status_code == 200 and "pro_rata" in csv_r.text
    assert client.get("/reliability/indices",
                      headers=auth(people["storekeeper"])).status_code == 403


def test_overrides_unknown_names_and_future_times(
    client: TestClient, session: Session, people: dict[str, str], server_clock: ManualClock
) -> None:
    server_clock.set(datetime(2026, 3, 15, 4, 0, tzinfo=UTC))
    _register(client, people["admin"])
    d = auth(people["dispatcher"])
    base = {"kind": "planned", "cause": "planned_maintenance", "start_at": _at(12, 1)}
    for extra in ({"transformer_codes": ["TX-NOPE"]}, {"feeder": "F-NONE"},
                  {"asset_ids": ["P-404"]}, {}):
        r = client.post("/reliability/outages", json=base | extra, headers=d)
        assert r.status_code == 422 and r.json()["code"] == "reliability.outage_invalid", r.text
    future = base | {"switch_code": "SW-1", "start_at": _at(16, 1)}
    assert client.post("/reliability/outages", json=future, headers=d).status_code == 422
    half = base | {"override_customers": 40}  # an override needs its reason, district, area
    assert client.post("/reliability/outages", json=half, headers=d).status_code == 422
    override = base | {"override_customers": 40, "override_reason": "register incomplete",
                       "override_district": "D-NS", "override_area": "rural"}
    r = client.post("/reliability/outages", json=override, headers=d)
    assert r.status_code == 201 and r.json()["customers"] == 40
    r = client.post("/reliability/outages", json=base | {"switch_code": "SW-1"}, headers=d)
    assert r.status_code == 201 and r.json()["transformer_codes"] == ["TX-R1"]
    assert r.json()["customers"] == 3


def test_an_outage_file_with_a_bad_row_imports_nothing(
    client: TestClient, session: Session, people: dict[str, str], server_clock: ManualClock
) -> None:
    server_clock.set(datetime(2026, 3, 15, 4, 0, tzinfo=UTC))
    _register(client, people["admin"])
    head = "ref,kind,cause,start_at,end_at,feeder,transformer_codes\n"
    good = "OUT-1,fault,fault,2026-03-11T10:00:00,2026-03-11T11:00:00,,TX-R1;TX-R2\n"
    bad = "OUT-2,fault,lightning,2026-03-11T12:00:00,,,TX-R1\n"
    d = auth(people["dispatcher"])
    r = client.post("/reliability/outages/imports", files=_file(head + good + bad), headers=d)
    assert r.status_code == 422, r.text
    assert [row["row"] for row in r.json()["params"]["rows"]] == [3]
    assert session.scalar(select(func.count()).select_from(Outage)) == 0
    r = client.post("/reliability/outages/imports", files=_file(head + good), headers=d)
    assert r.status_code == 201 and r.json()["created"] == 1
    one = client.get(f"/reliability/outages/{r.json()['outage_ids'][0]}", headers=d).json()
    # naive times in the file are China time
    assert one["start_at"].startswith("2026-03-11T02:00:00")
    assert one["customers"] == 5 and not one["open"]


def test_snapshots_follow_customers_added_and_the_job_is_wired(
    client: TestClient, session: Session, people: dict[str, str], server_clock: ManualClock,
    settings: Settings,
) -> None:
    server_clock.set(datetime(2026, 3, 15, 4, 0, tzinfo=UTC))
    _register(client, people["admin"])
    later = HEADER.replace("\n", ",removed_on\n") + (
        "A-006,孙八,13800138006,SP-4,mv,TX-R1,SW-1,urban,2026-02-10,\n"
        "A-005,钱七,13800138005,SP-3,lv,TX-R2,SW-2,rural,2026-01-01,2026-02-01\n"
    )
    client.post("/reliability/customers/imports", files=_file(later), headers=auth(people["admin"]))
    a = auth(people["admin"])
    jan = client.post("/reliability/snapshots", json={"month": "2026-01-20"}, headers=a).json()
    feb = client.post("/reliability/snapshots", json={"month": "2026-02-01"}, headers=a).json()
    urban = {s["month"]: s for s in jan + feb if s["area"] == "urban"}
    assert urban["2026-01-01"]["customers"] == 3 and urban["2026-02-01"]["customers"] == 4
    assert urban["2026-02-01"]["supply_points"] == 3
    rural = {s["month"]: s["customers"] for s in jan + feb if s["area"] == "rural"}
    assert rural == {"2026-01-01": 2, "2026-02-01": 1}  # A-005 left on 1 February
    assert client.post("/reliability/snapshots", json={"month": "2026-01-01"},
                       headers=auth(people["planner"])).status_code == 403
    future = client.post("/reliability/snapshots", json={"month": "2026-04-01"}, headers=a)
    assert future.status_code == 422 and future.json()["code"] == "reliability.month_in_future"
    r = client.get("/reliability/indices", params={"year": 2027}, headers=a)
    assert r.status_code == 422 and r.json()["code"] == "reliability.year_in_future"
    assert "reliability.snapshot" in job_handlers()
    assert "reliability.snapshot" in {p.kind for p in periodic_jobs(settings)}


def test_projection_from_last_year_and_a_planner_major_event_day(
    client: TestClient, session: Session, people: dict[str, str], server_clock: ManualClock
) -> None:
    server_clock.set(datetime(2026, 3, 15, 4, 0, tzinfo=UTC))
    a, d, p = (auth(people[k]) for k in ("admin", "dispatcher", "planner"))
    client.post("/reliability/sections/imports", files=_file(SECTIONS), headers=a)
    old = CUSTOMERS.replace("2026-01-01", "2020-01-01")
    assert client.post("/reliability/customers/imports", files=_file(old), headers=a).status_code == 201
    for month in range(4, 13):  # last year's April to December: the months still to come
        client.post("/reliability/snapshots", json={"month": f"2025-{month:02d}-01"}, headers=a)
    # last June: all five customers out for an hour; this March: 30 min (TX-R1), 90 min (TX-R2)
    last_june = {"kind": "fault", "cause": "fault", "feeder": "F-10",
                 "start_at": _at(10, 2, month=6).replace("2026", "2025"),
                 "end_at": _at(10, 3, month=6).replace("2026", "2025")}
    assert client.post("/reliability/outages", json=last_june, headers=d).status_code == 201
    oid = client.post("/reliability/outages", json={
        "kind": "fault", "cause": "fault", "feeder": "F-10", "start_at": _at(10, 2)},
        headers=d).json()["id"]
    client.post(f"/reliability/outages/{oid}/restorations",
                json={"transformer_codes": ["TX-R1"], "at": _at(10, 2, 30)}, headers=d)
    client.post(f"/reliability/outages/{oid}/close", json={"end_at": _at(10, 3, 30)}, headers=d)

    def urban(definition: str) -> dict[str, Any]:
        r = client.get("/reliability/indices", params={"year": 2026, "definition": definition},
                       headers=p)
        assert r.status_code == 200, r.text
        return r.json()
    report = urban("ieee1366")
    scope = next(s for s in report["scopes"] if s["scope"] == "area" and s["area"] == "urban")
    # year to date 3 x 0.5 h / 3 = 0.5 h, plus last year's June: 3 x 1 h / 3 = 1 h
    assert scope["ytd"]["saidi_h"] == pytest.approx(0.5)
    assert scope["projection"]["method"] == "ytd_plus_last_year_remainder"
    assert scope["projection"]["saidi_h"] == pytest.approx(1.5)
    assert scope["projection"]["on_track"] is True
    # a planner's threshold of 10 min: 10 March's daily SAIDI is (3 x 30 + 2 x 90) / 5 = 54 min
    assert client.put("/reliability/med-threshold", json={"threshold_min": 10, "reason": "x"},
                      headers=p).status_code == 422  # a reason of at least 3 characters
    r = client.put("/reliability/med-threshold",
                   json={"threshold_min": 10, "reason": "under five years of history"}, headers=p)
    assert r.status_code == 200
    assert client.put("/reliability/med-threshold", json={"threshold_min": 10, "reason": "xyz"},
                      headers=d).status_code == 403
    report = urban("ieee1366")
    assert report["med"]["method"] == "planner" and report["med"]["threshold_min"] == 10
    assert report["med"]["days"] == ["2026-03-10"]
    scope = next(s for s in report["scopes"] if s["scope"] == "area" and s["area"] == "urban")
    assert scope["ytd"]["saidi_h"] == 0.0  # the major event day is left out under IEEE 1366
    dlt = urban("dlt836")
    assert dlt["med"] is None
    assert next(s for s in dlt["scopes"] if s["scope"] == "all")["ytd"]["saidi_h"] > 0


def test_ledger_assets_stand_for_their_switch_or_their_line_feeder(
    client: TestClient, session: Session, people: dict[str, str], server_clock: ManualClock
) -> None:
    server_clock.set(datetime(2026, 3, 15, 4, 0, tzinfo=UTC))
    _register(client, people["admin"])
    line = LedgerLine(id="F-10", name="10 kV 线")
    session.add(line)
    session.flush()
    for asset_id in ("SW-2", "P-10-07"):
        asset = LedgerAsset(id=asset_id, line_id="F-10", lat=22.5, lon=113.9)
        session.add(asset)
        audit.record(session, actor=None, action="test.ledger", entity=asset)
    audit.record(session, actor=None, action="test.ledger", entity=line)
    session.commit()
    d = auth(people["dispatcher"])
    base = {"kind": "fault", "cause": "external", "start_at": _at(12, 1)}
    by_switch = client.post("/reliability/outages", json=base | {"asset_ids": ["SW-2"]}, headers=d)
    assert by_switch.status_code == 201, by_switch.text
    assert by_switch.json()["transformer_codes"] == ["TX-R2"]  # the switch's section
    by_pole = client.post("/reliability/outages", json=base | {"asset_ids": ["P-10-07"]},
                          headers=d)
    assert by_pole.json()["transformer_codes"] == ["TX-R1", "TX-R2"]  # the pole's feeder
    assert by_pole.json()["customers"] == 5
