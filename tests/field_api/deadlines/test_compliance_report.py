"""Time-limit compliance per crew and district, keyed by code and name, in JSON and CSV."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.auth.models import Crew
from field_api.common.actors import Role
from field_api.config import Settings
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.builders import auth, make_crew, make_district, make_order, make_user
from tests.clocks import ChinaClock

PERIOD = {"from": "2025-10-01", "to": "2025-10-31"}


def _energised(session: Session, clock: ChinaClock, crew: Crew, last_day: int) -> WorkOrder:
    """An order accepted 2025-09-29 and energised on 2025-10-``last_day`` (due 10-13)."""
    clock.set_china(2025, 9, 29)
    order = make_order(session, crew=crew)
    order.accepted_at = clock.now()
    session.flush()
    for stage in (Stage.surveyed, Stage.scheme_answered, Stage.contract_signed):
        clock.set_china(2025, 9, 30)
        orders.transition(session, order, stage, actor=None)
    for stage in (Stage.installed, Stage.inspected, Stage.energised):
        clock.set_china(2025, 10, last_day)
        orders.transition(session, order, stage, actor=None)
    return order


def _world(session: Session, settings: Settings, clock: ChinaClock) -> tuple[str, str, str]:
    district = make_district(session, code="D-CMP")
    one = make_crew(session, district=district, code="CMP-1")
    two = make_crew(session, district=district, code="CMP-2")
    _energised(session, clock, one, 13)  # met
    _energised(session, clock, one, 14)  # missed
    _energised(session, clock, two, 10)  # met
    _, planner = make_user(session, settings, role=Role.planner)
    session.commit()
    return planner, one.name, district.name


def test_compliance_groups_rows_by_crew_and_district_code_and_name(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    planner, crew_name, district_name = _world(session, settings, clock)
    by_crew = client.get(
        "/deadlines/compliance", params=PERIOD | {"group_by": "crew"}, headers=auth(planner)
    )
    assert by_crew.status_code == 200, by_crew.text
    e2e = {
        g["code"]: (g["name"], g["met"], g["missed"], g["finished"], g["rate"])
        for g in by_crew.json()["groups"]
        if g["clock"] == "end_to_end"
    }
    assert e2e["CMP-1"] == (crew_name, 1, 1, 2, 0.5)
    assert e2e["CMP-2"] == (crew_name, 1, 0, 1, 1.0)
    by_district = client.get(
        "/deadlines/compliance", params=PERIOD | {"group_by": "district"}, headers=auth(planner)
    ).json()["groups"]
    row = next(g for g in by_district if g["code"] == "D-CMP" and g["clock"] == "end_to_end")
    assert (row["name"], row["met"], row["missed"]) == (district_name, 2, 1)
    # Without group_by the answer is as before: totals per clock, no groups.
    plain = client.get("/deadlines/compliance", params=PERIOD, headers=auth(planner)).json()
    assert plain["groups"] == []
    assert next(r for r in plain["rows"] if r["clock"] == "end_to_end")["finished"] >= 3


def test_compliance_csv_in_the_readers_language(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    planner, crew_name, _ = _world(session, settings, clock)
    r = client.get(
        "/deadlines/compliance.csv", params=PERIOD | {"group_by": "crew"}, headers=auth(planner)
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="compliance-crew-2025-10-01-2025-10-31.csv"' in r.headers[
        "content-disposition"
    ]
    lines = r.content.decode("utf-8-sig").splitlines()
    assert f"CMP-1,{crew_name},全流程时限,1,1,2,0.5000" in lines
    assert f"CMP-2,{crew_name},全流程时限,1,0,1,1.0000" in lines
    assert "end_to_end" not in r.text  # the time limit by its name, not its code
    everything = client.get(
        "/deadlines/compliance.csv",
        params=PERIOD | {"group_by": "all"},
        headers=auth(planner) | {"Accept-Language": "en"},
    )
    first = everything.content.decode("utf-8-sig").splitlines()[1]
    assert first.startswith("all,All,End to end,")
    reversed_period = client.get(
        "/deadlines/compliance.csv",
        params={"from": "2025-10-31", "to": "2025-10-01"},
        headers=auth(planner),
    )
    assert reversed_period.status_code == 422
    wrong_group = client.get(
        "/deadlines/compliance.csv", params=PERIOD | {"group_by": "street"}, headers=auth(planner)
    )
    assert wrong_group.status_code == 422


def test_monthly_trend_counts_each_month_as_its_reports_do(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    planner, _, _ = _world(session, settings, clock)  # energised in October: met, missed, met
    period = {"from": "2025-09-15", "to": "2025-10-31"}
    r = client.get("/planner/trend", params=period, headers=auth(planner))
    assert r.status_code == 200, r.text
    september, october = r.json()
    assert september == {
        "month": "2025-09",
        "checked": 0,
        "passed_first": 0,
        "first_pass_rate": None,
        "energised": 0,
        "one_visit": 0,
        "one_visit_rate": None,
        "finished": 0,
        "met": 0,
        "compliance_rate": None,
    }
    assert october["month"] == "2025-10"
    assert (october["finished"], october["met"]) == (3, 2)
    assert october["compliance_rate"] == 2 / 3
    # None of the three was connected in one visit (no visit recorded).
    assert (october["energised"], october["one_visit"], october["one_visit_rate"]) == (3, 0, 0.0)
    # The month's figures are those of the month's own reports.
    one_visit = client.get("/planner/one-visit", params=PERIOD, headers=auth(planner)).json()[0]
    assert (one_visit["energised"], one_visit["one_visit"]) == (3, 0)

    csv = client.get("/planner/trend.csv", params=period, headers=auth(planner))
    assert csv.status_code == 200
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[1] == "2025-09,0,0,,0,0,,0,0,"
    assert lines[2] == "2025-10,0,0,,3,0,0.0000,3,2,0.6667"
    too_long = client.get(
        "/planner/trend", params={"from": "2020-01-01", "to": "2025-10-31"}, headers=auth(planner)
    )
    assert too_long.status_code == 422
    assert too_long.json()["code"] == "request.date_range_too_long"
    crew = make_user(session, settings, role=Role.crew)[1]
    session.commit()
    assert client.get("/planner/trend", params=period, headers=auth(crew)).status_code == 403
