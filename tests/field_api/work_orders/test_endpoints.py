"""Work orders through HTTP: creation, access rules, transitions, errors."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common import i18n
from field_api.common.actors import Role
from field_api.config import Settings
from tests.builders import auth, make_crew, make_district, make_order, make_user, order_payload


def test_service_creates_order_and_crew_lists_it(
    client: TestClient, session: Session, settings: Settings
) -> None:
    district = make_district(session)
    crew = make_crew(session, district=district)
    _, service_token = make_user(session, settings, role=Role.service)
    _, crew_token = make_user(session, settings, role=Role.crew, crew=crew)
    session.commit()

    r = client.post("/work-orders", json=order_payload(district, crew), headers=auth(service_token))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["stage"] == "accepted"
    assert created["allowed_next"] == ["surveyed", "whitelisted", "cancelled"]

    listed = client.get("/work-orders", headers=auth(crew_token)).json()
    assert [o["id"] for o in listed] == [created["id"]]
    assert listed[0]["customer_name"] == "张*"
    assert listed[0]["customer_phone"] == "*******8000"


def test_capacity_above_district_ceiling_is_422(
    client: TestClient, session: Session, settings: Settings
) -> None:
    district = make_district(session, lv_ceiling_kw=160)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    r = client.post(
        "/work-orders", json=order_payload(district, capacity_kw=180, phases=3), headers=auth(token)
    )
    assert r.status_code == 422
    assert r.json()["error"] == "ValidationFailed"
    assert "160" in r.json()["detail"] and r.json()["params"]["ceiling_kw"] == 160


def test_missing_and_bad_token_are_401(client: TestClient) -> None:
    assert client.get("/work-orders").status_code == 401
    r = client.get("/work-orders", headers=auth("fo_nonsense"))
    assert r.status_code == 401
    assert r.json() == {
        "error": "Unauthorized",
        "code": "auth.unknown_token",
        "params": {},
        "detail": "访问令牌无效",
    }


def test_revoked_token_is_401(client: TestClient, session: Session, settings: Settings) -> None:
    _, admin_token = make_user(session, settings, role=Role.admin)
    _, planner_token = make_user(session, settings, role=Role.planner)
    session.commit()
    me = client.get("/me", headers=auth(planner_token))
    assert me.status_code == 200
    tokens = client.get("/admin/users", headers=auth(admin_token)).json()
    assert any(u["role"] == "planner" for u in tokens)
    from sqlalchemy import select

    from field_api.auth.models import ApiToken

    token_id = session.execute(
        select(ApiToken.id).where(ApiToken.prefix == planner_token[:12])
    ).scalar_one()
    assert (
        client.post(f"/admin/tokens/{token_id}/revoke", headers=auth(admin_token)).status_code
        == 200
    )
    r = client.get("/me", headers=auth(planner_token))
    assert r.status_code == 401
    assert r.json()["code"] == "auth.token_revoked"
    assert r.json()["detail"] == "访问令牌已撤销"


def test_wrong_role_and_other_crews_order_are_403(
    client: TestClient, session: Session, settings: Settings
) -> None:
    district = make_district(session)
    crew_a = make_crew(session, district=district)
    crew_b = make_crew(session, district=district)
    order = make_order(session, district=district, crew=crew_a)
    _, token_b = make_user(session, settings, role=Role.crew, crew=crew_b)
    _, planner = make_user(session, settings, role=Role.planner)
    _, inspector = make_user(session, settings, role=Role.inspector)
    session.commit()

    assert client.get(f"/work-orders/{order.id}", headers=auth(token_b)).status_code == 403
    r = client.post(
        f"/work-orders/{order.id}/transitions", json={"to": "surveyed"}, headers=auth(token_b)
    )
    assert r.status_code == 403
    # planners read (masked) but never change operational data
    seen = client.get(f"/work-orders/{order.id}", headers=auth(planner))
    assert seen.status_code == 200 and seen.json()["customer_id_number"].startswith("44**")
    r = client.post(
        f"/work-orders/{order.id}/transitions", json={"to": "surveyed"}, headers=auth(planner)
    )
    assert r.status_code == 403
    assert (
        client.post("/work-orders", json=order_payload(district), headers=auth(planner)).status_code
        == 403
    )
    assert client.get("/work-orders", headers=auth(inspector)).status_code == 403


def test_illegal_transition_is_409_naming_allowed(
    client: TestClient, session: Session, settings: Settings
) -> None:
    crew = make_crew(session)
    order = make_order(session, crew=crew)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    session.commit()
    r = client.post(
        f"/work-orders/{order.id}/transitions", json={"to": "energised"}, headers=auth(token)
    )
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "InvalidTransition"
    assert body["params"]["allowed"] == ["surveyed", "whitelisted", "cancelled"]
    names = i18n.messages("zh-CN")
    assert "、".join(names[f"stage.{s}"] for s in body["params"]["allowed"]) in body["detail"]


def test_transition_records_actor_server_and_device_time(
    client: TestClient, session: Session, settings: Settings
) -> None:
    crew = make_crew(session)
    order = make_order(session, crew=crew)
    user, token = make_user(session, settings, role=Role.crew, crew=crew)
    session.commit()
    r = client.post(
        f"/work-orders/{order.id}/transitions",
        json={
            "to": "surveyed",
            "device_time": "2025-09-30T09:15:00+08:00",
            "device_lat": 22.53,
            "device_lon": 113.93,
        },
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    rows = client.get(f"/work-orders/{order.id}/transitions", headers=auth(token)).json()
    assert rows[-1]["actor_id"] == user.id
    assert rows[-1]["device_time"].startswith("2025-09-30T01:15:00")
    assert rows[-1]["device_lat"] == 22.53


def test_whitelist_parks_and_releases_to_the_same_stage(
    client: TestClient, session: Session, settings: Settings
) -> None:
    crew = make_crew(session)
    from field_api.work_orders.rules import Stage

    order = make_order(session, crew=crew, stage=Stage.surveyed)
    _, service_token = make_user(session, settings, role=Role.service)
    session.commit()
    h = auth(service_token)
    r = client.post(f"/work-orders/{order.id}/transitions", json={"to": "whitelisted"}, headers=h)
    assert r.status_code == 422
    r = client.post(
        f"/work-orders/{order.id}/transitions",
        json={"to": "whitelisted", "reason": "变压器容量不足", "expected_on": "2026-03-01"},
        headers=h,
    )
    assert r.status_code == 201
    got = client.get(f"/work-orders/{order.id}", headers=h).json()
    assert got["stage"] == "whitelisted" and got["allowed_next"] == ["surveyed", "cancelled"]


def test_bad_input_never_500(client: TestClient, session: Session, settings: Settings) -> None:
    district = make_district(session)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    h = auth(token)
    r = client.post(
        "/work-orders", content=b"{not json", headers={**h, "content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"] == "BadRequest"
    r = client.post("/work-orders", json=order_payload(district, capacity_kw="lots"), headers=h)
    assert r.status_code == 422 and r.json()["error"] == "ValidationFailed"
    r = client.post("/work-orders", json=order_payload(district, category="factory"), headers=h)
    assert r.status_code == 422
    assert client.get("/work-orders/999999", headers=h).status_code == 404
    assert client.get("/work-orders/abc", headers=h).status_code == 422
    huge = order_payload(district, address="x" * 400_000)
    r = client.post("/work-orders", json=huge, headers=h)
    assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge"
    r = client.post("/work-orders", json=order_payload(district, district_code="NOPE"), headers=h)
    assert r.status_code == 422


def test_idempotency_key_replays_and_conflicts(
    client: TestClient, session: Session, settings: Settings
) -> None:
    district = make_district(session)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    h = auth(token, **{"Idempotency-Key": "k-123"})
    first = client.post("/work-orders", json=order_payload(district), headers=h)
    again = client.post("/work-orders", json=order_payload(district), headers=h)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = client.post("/work-orders", json=order_payload(district, capacity_kw=9), headers=h)
    assert other.status_code == 409 and other.json()["error"] == "IdempotencyConflict"
    listed = client.get("/work-orders", headers=auth(token)).json()
    assert len(listed) == 1


def test_healthz_and_openapi_descriptions(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("description") or op.get("summary"), f"{method} {path} undocumented"
