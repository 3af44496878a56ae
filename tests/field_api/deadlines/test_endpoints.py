"""Deadlines through HTTP: an order's clocks, pauses, visits, the planners' views."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.deadlines import service as deadline_service
from tests.builders import auth, make_crew, make_district, make_order, make_user
from tests.clocks import ChinaClock


def _setup(session: Session, settings: Settings, clock: ChinaClock) -> tuple[int, str, str, str]:
    district = make_district(session)
    crew = make_crew(session, district=district)
    _, crew_token = make_user(session, settings, role=Role.crew, crew=crew)
    _, planner_token = make_user(session, settings, role=Role.planner)
    _, other_crew_token = make_user(session, settings, role=Role.crew)
    clock.set_china(2025, 9, 29)
    order = make_order(session, crew=crew)
    order.accepted_at = clock.now()
    deadline_service.refresh(session, order)  # what the acceptance itself stores
    session.commit()
    return order.id, crew_token, planner_token, other_crew_token


def test_order_deadlines_show_due_date_and_provisional_flag(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    order_id, crew_token, _, other = _setup(session, settings, clock)
    r = client.get(
        f"/work-orders/{order_id}/deadlines",
        params={"as_of": "2025-09-30"},
        headers=auth(crew_token),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    e2e = body["clocks"][0]
    assert (e2e["clock"], e2e["due_on"], e2e["provisional"]) == ("end_to_end", "2025-10-13", False)
    assert e2e["status"] == "on_track"
    assert body["missing_years"] == []
    denied = client.get(f"/work-orders/{order_id}/deadlines", headers=auth(other))
    assert denied.status_code == 403


def test_pause_lifecycle_and_errors(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    order_id, crew_token, planner_token, _ = _setup(session, settings, clock)
    url = f"/work-orders/{order_id}/pauses"
    bad = client.post(url, json={"reason": "weather"}, headers=auth(crew_token))
    assert bad.status_code == 422
    assert bad.json()["error"] == "ValidationFailed"
    assert "customer_absent" in bad.json()["detail"]
    planner = client.post(url, json={"reason": "customer_absent"}, headers=auth(planner_token))
    assert planner.status_code == 403
    clock.set_china(2025, 10, 9)
    started = client.post(url, json={"reason": "customer_absent"}, headers=auth(crew_token))
    assert started.status_code == 201, started.text
    assert started.json()["message"] == "客户不在现场"  # the reason for people, zh-CN by default
    again = client.post(url, json={"reason": "customer_absent"}, headers=auth(crew_token))
    assert again.status_code == 409
    clock.set_china(2025, 10, 11)
    ended = client.post(
        f"{url}/{started.json()['id']}/end", headers=auth(crew_token, **{"Accept-Language": "en"})
    )
    assert ended.status_code == 200
    assert ended.json()["message"] == "customer absent at the agreed visit"
    client.cookies.set("fo_lang", "zh-CN")  # the page's switch beats the browser's header
    listed = client.get(url, headers=auth(crew_token, **{"Accept-Language": "en"})).json()
    assert [p["message"] for p in listed] == ["客户不在现场"]
    client.cookies.delete("fo_lang")
    assert ended.json()["ended_at"] is not None
    clocks = client.get(
        f"/work-orders/{order_id}/deadlines",
        params={"as_of": "2025-10-11"},
        headers=auth(crew_token),
    ).json()["clocks"]
    assert clocks[0]["due_on"] == "2025-10-15"
    assert clocks[0]["paused_working_days"] == 2
    missing = client.post(f"{url}/999999/end", headers=auth(crew_token))
    assert missing.status_code == 404


def test_visit_booking_validates_the_body(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    order_id, crew_token, _, _ = _setup(session, settings, clock)
    url = f"/work-orders/{order_id}/appointments"
    naive = client.post(
        url,
        json={"window_start": "2025-09-30T09:00:00", "window_end": "2025-09-30T11:00:00"},
        headers=auth(crew_token),
    )
    assert naive.status_code == 422
    backwards = client.post(
        url,
        json={
            "window_start": "2025-09-30T11:00:00+08:00",
            "window_end": "2025-09-30T09:00:00+08:00",
        },
        headers=auth(crew_token),
    )
    assert backwards.status_code == 422
    assert backwards.json()["error"] == "ValidationFailed"
    ok = client.post(
        url,
        json={
            "window_start": "2025-09-30T09:00:00+08:00",
            "window_end": "2025-09-30T11:00:00+08:00",
        },
        headers=auth(crew_token),
    )
    assert ok.status_code == 201, ok.text
    listed = client.get(url, headers=auth(crew_token)).json()
    assert [v["id"] for v in listed] == [ok.json()["id"]]


def test_attention_and_compliance_views(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    order_id, crew_token, planner_token, _ = _setup(session, settings, clock)
    r = client.get("/deadlines/attention", params={"as_of": "2025-10-13"}, headers=auth(crew_token))
    assert r.status_code == 200, r.text
    items = [i for i in r.json()["items"] if i["order_id"] == order_id and i["governing"]]
    assert [(i["due_on"], i["status"]) for i in items] == [("2025-10-13", "at_risk")]
    assert r.json()["by_district_and_crew"][0]["at_risk"] == 1
    comp = client.get(
        "/deadlines/compliance",
        params={"from": "2025-10-01", "to": "2025-10-31"},
        headers=auth(planner_token),
    )
    assert comp.status_code == 200
    assert comp.json()["period_from"] == "2025-10-01"
    backwards = client.get(
        "/deadlines/compliance",
        params={"from": "2025-10-31", "to": "2025-10-01"},
        headers=auth(planner_token),
    )
    assert backwards.status_code == 422
    bad_date = client.get(
        "/deadlines/attention", params={"as_of": "2025-13-01"}, headers=auth(planner_token)
    )
    assert bad_date.status_code == 422


def test_recompute_is_admin_only(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    _, _, planner_token, _ = _setup(session, settings, clock)
    _, admin_token = make_user(session, settings, role=Role.admin)
    session.commit()
    assert (
        client.post("/deadlines/recompute-provisional", headers=auth(planner_token)).status_code
        == 403
    )
    r = client.post("/deadlines/recompute-provisional", headers=auth(admin_token))
    assert r.status_code == 200
    assert r.json()["orders_recomputed"] >= 0
