"""Visits through HTTP: arrive, complete (with the precise gaps), depart, one-visit report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.work_orders.models import WorkOrder
from tests.builders import auth, make_crew, make_order, make_user
from tests.field_api.visits.builders import make_photos, make_scheme
from tests.field_api.visits.test_service import FAR, NEAR

TODAY = datetime.now(UTC).date()


@pytest.fixture
def crew_order(session: Session, settings: Settings) -> tuple[str, int]:
    crew = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    order = make_order(session, crew=crew)
    session.commit()
    return token, order.id


def test_complete_reports_what_is_missing(
    client: TestClient, session: Session, crew_order: tuple[str, int]
) -> None:
    token, order_id = crew_order
    order = session.get(WorkOrder, order_id)
    assert order is not None
    make_photos(session, order, ["site"])
    make_scheme(session, order)
    session.commit()
    r = client.post(
        f"/work-orders/{order_id}/visits/arrival",
        json=NEAR | {"accuracy_m": 8},
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    visit_id = r.json()["id"]
    assert r.json()["arrival_distance_m"] < 20

    r = client.post(
        f"/work-orders/{order_id}/visits/{visit_id}/complete", json={}, headers=auth(token)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["complete"] is False
    assert body["moved_through"] == ["surveyed", "scheme_answered"]
    assert body["stopped_at"] == "contract_signed"
    assert body["missing"] == [
        {
            "stage": "contract_signed",
            "code": "contract",
            "detail": "no contract generated yet",
            "message_code": "gap.contract_missing",
            "params": {},
            "message": "尚未生成合同",
        }
    ]
    assert body["order_stage"] == "scheme_answered"

    r = client.post(
        f"/work-orders/{order_id}/visits/{visit_id}/depart", json=NEAR, headers=auth(token)
    )
    assert r.status_code == 200
    assert r.json()["outcome"] == "left_incomplete"
    listed = client.get(f"/work-orders/{order_id}/visits/on-site", headers=auth(token)).json()
    assert listed[0]["stages_done"] == ["surveyed", "scheme_answered"]


def test_complete_without_body_works(client: TestClient, crew_order: tuple[str, int]) -> None:
    token, order_id = crew_order
    visit_id = client.post(
        f"/work-orders/{order_id}/visits/arrival", json=FAR, headers=auth(token)
    ).json()["id"]
    r = client.post(
        f"/work-orders/{order_id}/visits/{visit_id}/complete",
        headers=auth(token, **{"Accept-Language": "en"}),
    )
    assert r.status_code == 200
    assert [m["code"] for m in r.json()["missing"]] == ["arrival_position", "photo_site"]
    assert r.json()["missing"][1]["message"] == "no photo of kind site for this order"
    client.cookies.set("fo_lang", "zh-CN")  # the page's switch beats the browser's header
    listed = client.get(
        f"/work-orders/{order_id}/visits/on-site", headers=auth(token, **{"Accept-Language": "en"})
    ).json()
    assert [m["message"] for m in listed[0]["missing"]][1] == "本工单没有现场照片"
    assert listed[0]["missing"][0]["message"].startswith("到场位置距工单位置 ")


def test_bad_gps_is_422(client: TestClient, crew_order: tuple[str, int]) -> None:
    token, order_id = crew_order
    r = client.post(
        f"/work-orders/{order_id}/visits/arrival", json={"lat": 95, "lon": 0}, headers=auth(token)
    )
    assert r.status_code == 422
    assert r.json()["error"] == "ValidationFailed"


def test_unknown_visit_is_404(client: TestClient, crew_order: tuple[str, int]) -> None:
    token, order_id = crew_order
    r = client.post(f"/work-orders/{order_id}/visits/999999/complete", headers=auth(token))
    assert r.status_code == 404


def test_one_visit_report_and_csv(client: TestClient, session: Session, settings: Settings) -> None:
    _, planner = make_user(session, settings, role=Role.planner)
    session.commit()
    window = {"from": str(TODAY - timedelta(days=1)), "to": str(TODAY + timedelta(days=1))}
    r = client.get("/planner/one-visit", params=window, headers=auth(planner))
    assert r.status_code == 200
    assert (r.json()[0]["code"], r.json()[0]["name"]) == ("all", "全部")
    by_district = client.get(
        "/planner/one-visit", params={**window, "group_by": "district"}, headers=auth(planner)
    )
    assert by_district.status_code == 200
    assert by_district.json()[0]["code"] == "all"
    wrong = client.get(
        "/planner/one-visit", params={**window, "group_by": "street"}, headers=auth(planner)
    )
    assert wrong.status_code == 422
    assert wrong.json()["error"]
    csv = client.get("/planner/one-visit.csv", params=window, headers=auth(planner))
    assert csv.status_code == 200
    assert csv.text.splitlines()[0] == (  # the columns named in the reader's language
        "\ufeff工单号,班组编码,班组,供电所编码,供电所,客户,上门次数,一次上门,送电时间"
    )
    # The rates as CSV, keyed like the JSON (code and name; the row of all first).
    rates = client.get(
        "/planner/one-visit.csv",
        params={**window, "group_by": "district"},
        headers=auth(planner) | {"Accept-Language": "en"},
    )
    assert rates.status_code == 200
    assert rates.text.lstrip("\ufeff").splitlines()[1].startswith("all,All,")
    assert client.get(
        "/planner/one-visit", params=window, headers=auth(planner) | {"Accept-Language": "en"}
    ).json()[0]["name"] == "All"
