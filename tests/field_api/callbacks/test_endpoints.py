"""Call-backs and review flags through HTTP."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.work_orders import service as orders
from field_api.work_orders.rules import FLOW, Stage
from tests.builders import auth, make_order, make_user
from tests.clocks import ChinaClock


def _energised_order(session: Session, clock: ChinaClock, applied_on: date) -> int:
    clock.set_china(2025, 9, 29, 9)
    order = make_order(session, applied_on=applied_on.isoformat())
    order.accepted_at = clock.now()
    clock.set_china(2025, 9, 30, 15)
    for stage in FLOW[1 : FLOW.index(Stage.energised) + 1]:
        orders.transition(session, order, stage, actor=None)
    return order.id


def test_service_records_callback_and_planner_sees_the_flag(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    order_id = _energised_order(session, clock, date(2025, 9, 29))
    _, service_token = make_user(session, settings, role=Role.service)
    _, planner_token = make_user(session, settings, role=Role.planner)
    session.commit()

    due = client.get("/callbacks/due", params={"as_of": "2025-10-09"}, headers=auth(planner_token))
    assert due.status_code == 200, due.text
    mine = [d for d in due.json() if d["order_id"] == order_id]
    assert mine[0]["callback"]["due_on"] == "2025-10-11"
    assert mine[0]["customer_phone"] == "*******8000"

    url = f"/work-orders/{order_id}/callback/result"
    body = {"satisfaction": 3, "irregularities": ["visited_more_than_once"]}
    assert client.post(url, json=body, headers=auth(planner_token)).status_code == 403
    bad = client.post(url, json={"satisfaction": 6}, headers=auth(service_token))
    assert bad.status_code == 422
    unknown = client.post(
        url, json={"satisfaction": 3, "irregularities": ["bribe"]}, headers=auth(service_token)
    )
    assert unknown.status_code == 422
    ok = client.post(url, json=body, headers=auth(service_token))
    assert ok.status_code == 200, ok.text
    assert ok.json()["irregularities"] == ["visited_more_than_once"]
    again = client.post(url, json=body, headers=auth(service_token))
    assert again.status_code == 409

    flags = client.get("/review-flags", headers=auth(planner_token))
    assert flags.status_code == 200
    mine_flags = [f for f in flags.json() if f["order_id"] == order_id]
    assert [(f["kind"], f["reason"]) for f in mine_flags] == [
        ("callback_irregularity", "customer says the crew came more than once")
    ]
    assert mine_flags[0]["message"] == "客户反映班组上门不止一次"  # zh-CN by default
    client.cookies.set("fo_lang", "en")
    english = client.get("/review-flags", headers=auth(planner_token)).json()
    assert [f["message"] for f in english if f["order_id"] == order_id] == [
        "customer says the crew came more than once"
    ]
    client.cookies.delete("fo_lang")
    resolved = client.post(
        f"/review-flags/{mine_flags[0]['id']}/resolve",
        json={"resolution": "second visit was the meter test"},
        headers=auth(service_token),
    )
    assert resolved.status_code == 200
    assert resolved.json()["resolution"] == "second visit was the meter test"


def test_callback_before_energisation_is_404_and_scan_is_service_only(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    clock.set_china(2025, 9, 29, 9)
    order = make_order(session)
    _, service_token = make_user(session, settings, role=Role.service)
    _, planner_token = make_user(session, settings, role=Role.planner)
    session.commit()
    r = client.get(f"/work-orders/{order.id}/callback", headers=auth(service_token))
    assert r.status_code == 404
    assert r.json()["error"] == "NotFound"
    assert client.post("/review-flags/scan", headers=auth(planner_token)).status_code == 403
    scan = client.post("/review-flags/scan", headers=auth(service_token))
    assert scan.status_code == 200
    assert isinstance(scan.json()["flags_raised"], int)
    bad_kind = client.get("/review-flags", params={"kind": "nonsense"}, headers=auth(planner_token))
    assert bad_kind.status_code == 422


def test_a_complaint_blocks_closing_until_the_follow_up_is_resolved(
    client: TestClient, session: Session, settings: Settings, clock: ChinaClock
) -> None:
    order_id = _energised_order(session, clock, date(2025, 9, 29))
    _, service_token = make_user(session, settings, role=Role.service)
    session.commit()
    url = f"/work-orders/{order_id}/callback/result"
    body = {"satisfaction": 1, "complaint": True, "notes": "meter box left open"}
    recorded = client.post(url, json=body, headers=auth(service_token))
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["complaint"] is True

    close = {"to": "closed"}
    refused = client.post(
        f"/work-orders/{order_id}/transitions", json=close, headers=auth(service_token)
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "callback.follow_up_open"
    order = client.get(f"/work-orders/{order_id}", headers=auth(service_token)).json()
    assert order["stage"] == "called_back"

    flags = client.get(
        "/review-flags", params={"kind": "callback_unsatisfied"}, headers=auth(service_token)
    ).json()
    (flag,) = [f for f in flags if f["order_id"] == order_id]
    assert "satisfaction 1 of 5" in flag["reason"] and "complained" in flag["reason"]
    assert flag["message"] == "回访不满意：满意度 1 分（满分 5 分，2 分及以下为不满意）；客户投诉"
    [part] = flag["params"]["messages"]
    assert part["code"] == "review_flag.callback_unsatisfied"
    english = client.get(
        "/review-flags",
        params={"kind": "callback_unsatisfied"},
        headers={**auth(service_token), "Accept-Language": "en"},
    ).json()
    (flag_en,) = [f for f in english if f["order_id"] == order_id]
    assert flag_en["message"] == flag["reason"] == (
        "call-back unsatisfied: satisfaction 1 of 5 (unsatisfied at 2 or less); "
        "the customer complained"
    )
    resolved = client.post(
        f"/review-flags/{flag['id']}/resolve",
        json={"resolution": "box closed, customer satisfied"},
        headers=auth(service_token),
    )
    assert resolved.status_code == 200, resolved.text
    closed = client.post(
        f"/work-orders/{order_id}/transitions", json=close, headers=auth(service_token)
    )
    assert closed.status_code in (200, 201), closed.text
