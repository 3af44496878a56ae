"""Scheme requests through HTTP: a crew answers its order's scheme with every figure."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.auth.models import Role
from field_api.config import Settings
from field_api.network import service as network
from field_api.work_orders.rules import Stage
from tests.builders import auth, make_crew, make_order, make_user

FIXTURES = Path(__file__).parents[2] / "fixtures" / "network"


def _network(session: Session) -> None:
    network.import_file(session, (FIXTURES / "network.geojson").read_bytes(),
                        filename="network.geojson", actor=None)


def test_crew_requests_the_scheme_and_reads_it_back(
    client: TestClient, session: Session, settings: Settings
) -> None:
    _network(session)
    crew = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    order = make_order(session, crew=crew, stage=Stage.surveyed, category="small_micro_enterprise",
                       phases=3, capacity_kw=50)
    session.commit()
    r = client.post(f"/work-orders/{order.id}/schemes", json={}, headers=auth(token))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["accepted"] and body["status"] == "accepted" and body["kit_code"] == "B2"
    scheme = body["scheme"]
    assert scheme["metering"] == "ct" and scheme["ct_code"] == "CT-150-5"
    assert body["load_current_a"] == pytest.approx(50000 / (3**0.5 * 380 * 0.85))
    assert scheme["cable"]["voltage_drop_pct"] <= scheme["voltage_drop_budget_pct"]
    assert scheme["breaker_rating_a"] >= body["load_current_a"]
    assert any(b["role"] == "cable" for b in scheme["bill_of_materials"])
    got = client.get(f"/work-orders/{order.id}/scheme", headers=auth(token))
    assert got.status_code == 200 and got.json()["id"] == body["id"]
    order_now = client.get(f"/work-orders/{order.id}", headers=auth(token)).json()
    assert order_now["stage"] == "scheme_answered"
    assert client.get(f"/schemes/{body['id']}", headers=auth(token)).status_code == 200


def test_refusal_is_returned_with_the_white_list_proposal(
    client: TestClient, session: Session, settings: Settings
) -> None:
    _network(session)
    crew = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    order = make_order(session, crew=crew, stage=Stage.surveyed)
    session.commit()
    r = client.post(f"/work-orders/{order.id}/schemes", json={"lon": 114.3, "lat": 22.8},
                    headers=auth(token))
    assert r.status_code == 201
    body = r.json()
    assert not body["accepted"] and body["status"] == "refused"
    assert body["white_list"]["reason"] == "no_transformer_in_reach"
    r = client.get(f"/work-orders/{order.id}/scheme", headers=auth(token))
    assert r.status_code == 409 and r.json()["error"] == "InvalidTransition"


def test_bad_requests_are_4xx_json(
    client: TestClient, session: Session, settings: Settings
) -> None:
    _network(session)
    crew, other = make_crew(session), make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    _, stranger = make_user(session, settings, role=Role.crew, crew=other)
    order = make_order(session, crew=crew, stage=Stage.surveyed)
    early = make_order(session, crew=crew)
    session.commit()
    url = f"/work-orders/{order.id}/schemes"
    r = client.post(url, json={"laying_method": "Z9"}, headers=auth(token))
    assert r.status_code == 422 and "unknown laying method" in r.json()["detail"]
    r = client.post(url, json={"lon": 113.9, "lat": 123}, headers=auth(token))
    assert r.status_code == 422 and r.json()["error"] == "ValidationFailed"
    r = client.post(url, json={"lat": 22.5}, headers=auth(token))
    assert r.status_code == 422 and "both lon and lat" in str(r.json()["params"]["errors"])
    r = client.post(url, json={"surprise": 1}, headers=auth(token))
    assert r.status_code == 422
    assert client.post(url, json={}, headers=auth(stranger)).status_code == 403
    r = client.post(f"/work-orders/{early.id}/schemes", json={}, headers=auth(token))
    assert r.status_code == 409 and "在勘查后" in r.json()["detail"]
    assert client.post("/work-orders/999999/schemes", json={}, headers=auth(token)).status_code == 404
