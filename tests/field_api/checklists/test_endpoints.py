"""Completion checks and planners' statistics through HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.work_orders.rules import Stage
from tests.builders import auth, make_crew, make_order, make_user
from tests.field_api.checklists.test_service import BEFORE_OK
from tests.field_api.visits.builders import make_evidence, make_scheme

TODAY = datetime.now(UTC).date()
WINDOW = {"from": str(TODAY - timedelta(days=1)), "to": str(TODAY + timedelta(days=1))}


@pytest.fixture
def crew_order(session: Session, settings: Settings) -> tuple[str, int]:
    crew = make_crew(session, code="CREW-T1")
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    order = make_order(session, crew=crew, stage=Stage.installed)
    make_evidence(session, order)
    session.commit()
    return token, order.id


def test_failed_then_passed_check_and_planner_reports(
    client: TestClient, session: Session, settings: Settings, crew_order: tuple[str, int]
) -> None:
    token, order_id = crew_order
    _, planner = make_user(session, settings, role=Role.planner)
    session.commit()
    url = f"/work-orders/{order_id}/checklists/before_energising"

    r = client.post(
        url, json={"values": BEFORE_OK | {"earthing_resistance": 6.2}}, headers=auth(token)
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["passed"] is False and body["attempt"] == 1
    assert body["failed_items"][0]["item_code"] == "earthing_resistance"
    assert "upper limit 4 Ω" in body["failed_items"][0]["reason"]
    failed = body["failed_items"][0]
    assert failed["params"] == {
        "code": "check.above_upper",
        "params": {"value": "6.2", "unit": "Ω", "limit": "4", "note": ""},
    }
    assert failed["message"] == "6.2 Ω 高于上限 4 Ω"  # zh-CN when the request names none
    listed = client.get(
        f"/work-orders/{order_id}/checklists", headers=auth(token, **{"Accept-Language": "en"})
    ).json()
    assert listed[0]["failed_items"][0]["message"] == "6.2 Ω above the upper limit 4 Ω"
    assert listed[0]["failed_items"][0]["label"] == "Protective earthing resistance"
    client.cookies.set("fo_lang", "zh-CN")  # the page's switch beats the browser's header
    listed = client.get(
        f"/work-orders/{order_id}/checklists", headers=auth(token, **{"Accept-Language": "en"})
    ).json()
    assert listed[0]["failed_items"][0]["message"] == "6.2 Ω 高于上限 4 Ω"
    assert listed[0]["failed_items"][0]["label"] == "保护接地电阻"
    client.cookies.delete("fo_lang")

    r = client.post(url, json={"values": BEFORE_OK}, headers=auth(token))
    assert r.status_code == 201
    assert r.json()["passed"] is True and r.json()["attempt"] == 2
    assert (
        client.get(f"/work-orders/{order_id}", headers=auth(token)).json()["stage"] == "inspected"
    )

    listed = client.get(f"/work-orders/{order_id}/checklists", headers=auth(token)).json()
    assert [s["attempt"] for s in listed] == [1, 2]

    rate = client.get(
        "/planner/first-pass", params=WINDOW | {"group_by": "crew"}, headers=auth(planner)
    )
    assert rate.status_code == 200
    row = next(r for r in rate.json() if r["code"] == "CREW-T1")
    assert (row["checked"], row["passed_first"], row["rate"]) == (1, 0, 0.0)

    csv = client.get(
        "/planner/first-pass.csv", params=WINDOW | {"group_by": "crew"}, headers=auth(planner)
    )
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert "CREW-T1" in csv.text and "0.0000" in csv.text

    pareto = client.get("/planner/failing-items", params=WINDOW, headers=auth(planner)).json()
    assert (pareto[0]["item_code"], pareto[0]["label"]) == ("earthing_resistance", "保护接地电阻")
    pareto_csv = client.get("/planner/failing-items.csv", params=WINDOW, headers=auth(planner))
    assert "earthing_resistance,保护接地电阻," in pareto_csv.text
    # The item is named from its card in the reader's language.
    english = auth(planner) | {"Accept-Language": "en"}
    pareto = client.get("/planner/failing-items", params=WINDOW, headers=english).json()
    assert pareto[0]["label"] == "Protective earthing resistance"
    pareto_csv = client.get("/planner/failing-items.csv", params=WINDOW, headers=english)
    assert "earthing_resistance,Protective earthing resistance," in pareto_csv.text


def test_bad_values_are_422_with_each_problem(
    client: TestClient, crew_order: tuple[str, int]
) -> None:
    token, order_id = crew_order
    r = client.post(
        f"/work-orders/{order_id}/checklists/before_energising",
        json={"values": {"earthing_resistance": "low"}},
        headers=auth(token),
    )
    assert r.status_code == 422
    assert r.json()["error"] == "ValidationFailed"
    [problem] = r.json()["params"]["problems"]
    assert problem["code"] == "check.value_problem"
    assert r.json()["detail"] == "有 1 项读数无效：earthing_resistance：应为以 Ω 为单位的数字"
    r = client.post(
        f"/work-orders/{order_id}/checklists/before_energising",
        json={"values": {"earthing_resistance": "low"}},
        headers=auth(token, **{"Accept-Language": "en"}),
    )
    assert r.json()["detail"] == (
        "1 reading(s) are invalid: earthing_resistance: expected a number in Ω"
    )


def test_unknown_phase_is_422(client: TestClient, crew_order: tuple[str, int]) -> None:
    token, order_id = crew_order
    r = client.post(
        f"/work-orders/{order_id}/checklists/lunch", json={"values": {}}, headers=auth(token)
    )
    assert r.status_code == 422


def test_wrong_stage_is_409(client: TestClient, crew_order: tuple[str, int]) -> None:
    token, order_id = crew_order
    r = client.post(
        f"/work-orders/{order_id}/checklists/supply_on", json={"values": {}}, headers=auth(token)
    )
    assert r.status_code == 409
    assert r.json()["error"] == "InvalidTransition"


def test_crews_cannot_read_planner_reports(client: TestClient, crew_order: tuple[str, int]) -> None:
    token, _ = crew_order
    r = client.get("/planner/first-pass", params=WINDOW, headers=auth(token))
    assert r.status_code == 403


def test_inverted_range_is_422(client: TestClient, session: Session, settings: Settings) -> None:
    _, planner = make_user(session, settings, role=Role.planner)
    session.commit()
    r = client.get(
        "/planner/failing-items",
        params={"from": "2026-02-01", "to": "2026-01-01"},
        headers=auth(planner),
    )
    assert r.status_code == 422
    assert r.json()["code"] == "request.date_range_reversed"
    assert r.json()["detail"] == "日期范围的结束早于开始"


def test_an_impossible_reading_is_422_and_missing_evidence_409(
    client: TestClient, session: Session, settings: Settings, crew_order: tuple[str, int]
) -> None:
    token, order_id = crew_order
    url = f"/work-orders/{order_id}/checklists/before_energising"
    r = client.post(
        url, json={"values": BEFORE_OK | {"earthing_resistance": -2}}, headers=auth(token)
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == (
        "有 1 项读数无效：earthing_resistance：-2 Ω 不可能：电阻不能为负"
    )
    assert client.get(f"/work-orders/{order_id}/checklists", headers=auth(token)).json() == []

    crew = make_crew(session, code="CREW-T2")
    _, other_token = make_user(session, settings, role=Role.crew, crew=crew)
    bare = make_order(session, crew=crew, stage=Stage.installed)
    make_scheme(session, bare)
    session.commit()
    r = client.post(
        f"/work-orders/{bare.id}/checklists/before_energising",
        json={"values": BEFORE_OK},
        headers=auth(other_token),
    )
    assert r.status_code == 409, r.text
    assert "photo_site" in r.json()["detail"] and "meter_barcode" in r.json()["detail"]
    assert r.json()["detail"].startswith(f"工单 {bare.id} 的 before_energising 检查缺少证据")
    assert "meter_barcode：需要一张带扫描电表号的条码照片" in r.json()["detail"]  # no English
    listed = client.get(f"/work-orders/{bare.id}/checklists", headers=auth(other_token))
    assert listed.json() == []
