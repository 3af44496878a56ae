"""Compensation through HTTP on SQLite and PostgreSQL: a small register and outages whose
credits are worked out by hand (see ``test_what_each_supply_point_is_owed_by_hand``)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.common.clock import CHINA_TZ, ManualClock
from field_api.config import Settings
from field_api.network.models import Transformer
from field_api.reliability import compensation
from tests.builders import auth, make_user

SECTIONS = (
    "switch_code,feeder,district,transformer_code\n"
    "SW-C1,F-C,D-NS,TX-C1\n"
    "SW-C2,F-C,D-NS,TX-C2\n"
    "SW-C3,F-D,D-FT,TX-C3\n"
)
# TX-C1 (urban, D-NS): SP-1 (two accounts), SP-2, and SP-5 connected on 1 June;
# TX-C2 (rural, D-NS): SP-3, a medium-voltage user; TX-C3 (urban, D-FT): SP-4
CUSTOMERS = (
    "account_no,name,phone,supply_point,supply_kind,transformer_code,switch_code,area,"
    "connected_on\n"
    "A-1,张三丰,13800138001,SP-1,lv,TX-C1,SW-C1,urban,2025-01-01\n"
    "A-2,李四,13800138002,SP-1,lv,TX-C1,SW-C1,urban,2025-01-01\n"
    "A-3,王五,13800138003,SP-2,lv,TX-C1,SW-C1,urban,2025-01-01\n"
    "A-4,赵六,13800138004,SP-3,mv,TX-C2,SW-C2,rural,2025-01-01\n"
    "A-5,钱七,13800138005,SP-4,lv,TX-C3,SW-C3,urban,2025-01-01\n"
    "A-6,孙八,13800138006,SP-5,lv,TX-C1,SW-C1,urban,2026-06-01\n"
)
POLICY = """
counts_above_min = 3
[category.lv]   # mv has no rule
long_hours = 4
long_credit = "20.00"
yearly_count = 2
beyond_credit = "7.50"
"""


def _china(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=CHINA_TZ)


def _file(text: str) -> dict[str, Any]:
    return {"file": ("f.csv", text.encode(), "text/csv")}


@pytest.fixture
def people(session: Session, settings: Settings) -> dict[str, str]:
    tokens = {}
    for role in (Role.admin, Role.planner, Role.dispatcher, Role.storekeeper):
        tokens[role.value] = make_user(session, settings, role=role)[1]
    for i, code in enumerate(("TX-C1", "TX-C2", "TX-C3")):
        session.add(
            Transformer(
                code=code,
                name=code,
                rated_kva=400,
                base_load_kva=100,
                lon=113.9 + i / 100,
                lat=22.5,
            )
        )
    session.commit()
    return tokens


def _outage(
    client: TestClient, token: str, start: datetime, minutes: float | None, **what: Any
) -> int:
    body = {"kind": "fault", "cause": "fault", "start_at": start.isoformat(), **what}
    if minutes is not None:
        body["end_at"] = (start + timedelta(minutes=minutes)).isoformat()
    r = client.post("/reliability/outages", json=body, headers=auth(token))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _history(client: TestClient, people: dict[str, str], clock: ManualClock) -> None:
    """The register and the outages of the hand-computed case (clock: 30 June, 12:00)."""
    clock.set(_china(6, 30, 12))
    admin, d = auth(people["admin"]), people["dispatcher"]
    for path, text in (("sections", SECTIONS), ("customers", CUSTOMERS)):
        r = client.post(f"/reliability/{path}/imports", files=_file(text), headers=admin)
        assert r.status_code == 201, r.text
    _outage(client, d, _china(2, 10, 10), 60, feeder="F-C")  # O1: SP-1,2,3 1st of the year
    _outage(client, d, _china(3, 5, 10), 2, transformer_codes=["TX-C1"])  # O2: short
    # O3: feeder F-C restored in steps: TX-C2 back after 2 h, TX-C1 after 5 h
    o3 = _outage(client, d, _china(4, 10, 8), None, feeder="F-C")
    r = client.post(
        f"/reliability/outages/{o3}/restorations",
        headers=auth(d),
        json={"transformer_codes": ["TX-C2"], "at": _china(4, 10, 10).isoformat()},
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"/reliability/outages/{o3}/close",
        headers=auth(d),
        json={"end_at": _china(4, 10, 13).isoformat()},
    )
    assert r.status_code == 200, r.text
    _outage(client, d, _china(5, 20, 9), 240, transformer_codes=["TX-C1"])  # O4: exactly 4 h
    _outage(client, d, _china(6, 1, 9), 241, transformer_codes=["TX-C3"])  # O5: 4 h 1 min
    _outage(client, d, _china(6, 15, 9), 30, transformer_codes=["TX-C1"])  # O6
    _outage(client, d, _china(6, 30, 10), None, transformer_codes=["TX-C3"])  # O7: still open
    _outage(
        client,
        d,
        _china(6, 20, 9),
        600,
        override_customers=10,  # O8: no supply points
        override_reason="register incomplete",
        override_district="D-FT",
        override_area="urban",
    )


def _with_policy(settings: Settings, tmp_path: Path, text: str = POLICY) -> Path:
    path = tmp_path / "compensation.toml"
    path.write_text(text, encoding="utf-8")
    settings.reliability.compensation_path = path
    return path


def test_what_each_supply_point_is_owed_by_hand(
    client: TestClient,
    people: dict[str, str],
    server_clock: ManualClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """Period 1 April to 30 June; the yearly count runs from 1 January; lv: 20.00 per
    interruption longer than 4 h, 7.50 per interruption beyond 2 a year; mv: no rule.

    - SP-1, SP-2 (TX-C1): O1 (Feb, 1st), O2 short (not counted), O3 5 h (2nd; long: 20.00),
      O4 exactly 4 h (3rd: 7.50, not long), O6 30 min (4th: 7.50) -> 3 in the period, 35.00;
    - SP-3 (mv, TX-C2): O3 restored after 2 h -> 1 interruption, no rule: 0, said;
    - SP-4 (TX-C3, D-FT): O5 4 h 1 min (long: 20.00); O7 still open: counted apart -> 20.00;
    - SP-5 (connected 1 June): O6 only, its 1st -> 0.00;
    - O8 (an override) has no supply points: counted apart."""
    _history(client, people, server_clock)
    _with_policy(settings, tmp_path)
    planner = auth(people["planner"])
    r = client.get(
        "/reliability/compensation",
        params={"start": "2026-04-01", "end": "2026-06-30"},
        headers=planner,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["policy"]["source"] == "file" and body["currency"] == "CNY"
    totals = {(t["district"], t["category"]): t for t in body["totals"]}
    assert list(totals) == [("D-FT", "lv"), ("D-NS", "lv"), ("D-NS", "mv")]
    ns = totals[("D-NS", "lv")]
    assert (ns["supply_points"], ns["owed_supply_points"], ns["interruptions"]) == (3, 2, 7)
    assert (ns["long_interruptions"], ns["beyond_interruptions"]) == (2, 4)
    assert (ns["long_credit"], ns["beyond_credit"], ns["total"]) == ("40.00", "30.00", "70.00")
    assert totals[("D-FT", "lv")]["total"] == "20.00"
    mv = totals[("D-NS", "mv")]
    assert not mv["covered"] and mv["interruptions"] == 1 and mv["total"] == "0.00"
    assert body["overall"]["total"] == "90.00" and body["overall"]["owed_supply_points"] == 3
    assert body["uncovered_categories"] == ["mv"]
    assert (body["open_interruptions"], body["unattributed_interruptions"]) == (1, 1)

    r = client.get(
        "/reliability/compensation.csv",
        headers=auth(people["admin"], **{"Accept-Language": "en"}),
        params={"start": "2026-04-01", "end": "2026-06-30"},
    )
    assert r.status_code == 200, r.text
    assert "张三丰" not in r.text and "13800138001" not in r.text
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][:2] == ["Supply point", "Accounts (;-separated)"]
    columns = list(compensation.CSV_COLUMNS)
    owed = {row[0]: dict(zip(columns, row, strict=True)) for row in rows[1:]}
    assert {p: o["total"] for p, o in owed.items()} == {
        "SP-1": "35.00",
        "SP-2": "35.00",
        "SP-3": "0.00",
        "SP-4": "20.00",
        "SP-5": "0.00",
    }
    assert owed["SP-1"]["accounts"] == "A-1;A-2" and owed["SP-3"]["category"] == "mv"
    assert (owed["SP-1"]["interruptions"], owed["SP-1"]["beyond_credit"]) == ("3", "15.00")
    assert owed["SP-4"]["district"] == "D-FT" and owed["SP-4"]["long_interruptions"] == "1"


def test_the_default_period_is_the_year_to_date(
    client: TestClient,
    people: dict[str, str],
    server_clock: ManualClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    _history(client, people, server_clock)
    _with_policy(settings, tmp_path)
    r = client.get("/reliability/compensation.csv", headers=auth(people["planner"]))
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][0] == "供电点"
    by_point = {row[0]: row for row in rows[1:]}
    # from 1 January SP-1 also has O1: 4 interruptions, the same 35.00
    assert by_point["SP-1"][6] == "4" and by_point["SP-1"][11] == "35.00"
    assert by_point["SP-3"][6] == "2"


def test_a_missing_or_bad_policy_is_said_never_zero(
    client: TestClient,
    people: dict[str, str],
    server_clock: ManualClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    _history(client, people, server_clock)
    planner = auth(people["planner"])
    for url in ("/reliability/compensation", "/reliability/compensation.csv"):
        r = client.get(url, headers=planner)
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "reliability.compensation_policy_missing"
        assert "FIELDOPS_RELIABILITY_COMPENSATION_PATH" in r.json()["detail"]
    path = _with_policy(settings, tmp_path, "[category.lv]\nlong_hours = 4\n")
    r = client.get(
        "/reliability/compensation", headers=auth(people["planner"], **{"Accept-Language": "en"})
    )
    assert r.status_code == 409 and r.json()["code"] == "reliability.compensation_policy_invalid"
    assert "long_hours and long_credit together" in r.json()["detail"]
    path.unlink()
    r = client.get("/reliability/compensation", headers=planner)
    assert r.status_code == 409 and r.json()["code"] == "reliability.compensation_policy_invalid"


def test_bad_periods_and_roles(
    client: TestClient,
    people: dict[str, str],
    server_clock: ManualClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    server_clock.set(_china(6, 30, 12))
    _with_policy(settings, tmp_path)
    planner = auth(people["planner"])
    cases = {
        ("2026-05-01", "2026-04-01"): "reliability.compensation_period_invalid",
        ("2025-01-01", "2026-06-30"): "reliability.compensation_period_too_long",
        ("2026-07-01", "2026-07-31"): "reliability.month_in_future",
    }
    for (start, end), code in cases.items():
        r = client.get(
            "/reliability/compensation", params={"start": start, "end": end}, headers=planner
        )
        assert r.status_code == 422 and r.json()["code"] == code, r.text
    r = client.get("/reliability/compensation", params={"start": "2026-13-01"}, headers=planner)
    assert r.status_code == 422
    for role in ("dispatcher", "storekeeper"):
        for query in ({}, {"start": "2026-05-01", "end": "2026-04-01"}):  # roles come first
            r = client.get("/reliability/compensation", params=query, headers=auth(people[role]))
            assert r.status_code == 403 and r.json()["code"] == "reliability.role_forbidden"
    r = client.get("/reliability/compensation", headers=auth(people["admin"]))
    assert r.status_code == 200 and r.json()["overall"]["total"] == "0.00"


def test_a_development_server_falls_back_to_the_labelled_demo_policy(
    settings: Settings,
) -> None:
    assert settings.reliability.compensation_path is None
    with pytest.raises(Exception, match="no compensation policy"):
        compensation.load_policy(settings)
    development = settings.model_copy(update={"env": "development"})
    loaded = compensation.load_policy(development)
    assert loaded.source == "development_default" and "lv" in loaded.policy.categories
    assert "DEVELOPMENT DEFAULT" in compensation.DEVELOPMENT_POLICY
