"""Scheme requests through HTTP: a crew answers its order's scheme with every figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.network import service as network
from field_api.schemes.models import SupplyScheme
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


def _refused(client: TestClient, session: Session, settings: Settings, **order: Any) -> tuple[
    str, int
]:
    """A crew's token and the id of a refused scheme for a new order with ``order``'s values."""
    _network(session)
    crew = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    made = make_order(session, crew=crew, stage=Stage.surveyed, **order)
    session.commit()
    r = client.post(f"/work-orders/{made.id}/schemes", json={"lon": 114.3, "lat": 22.8},
                    headers=auth(token))
    assert r.status_code == 201 and r.json()["status"] == "refused", r.text
    return token, int(r.json()["id"])


def test_failures_and_white_list_answer_in_the_request_language(
    client: TestClient, session: Session, settings: Settings
) -> None:
    token, scheme_id = _refused(client, session, settings)
    zh = client.get(f"/schemes/{scheme_id}", headers=auth(token)).json()  # no language: zh-CN
    failure = zh["failures"][0]
    assert failure["code"] == "scheme_failure.no_transformer_in_reach"
    assert failure["params"] == {"radius_m": 400}
    assert failure["message"] == "客户 400 米范围内没有变压器"
    assert failure["detail"] == "no transformer within 400 m of the customer"  # English kept
    assert zh["white_list"]["code"] == "scheme_white_list.grid_short"
    assert zh["white_list"]["message"].startswith("没有满足规则的供电点（供电半径内无变压器）")
    en = client.get(
        f"/schemes/{scheme_id}", headers={**auth(token), "Accept-Language": "en-GB,en;q=0.9"}
    ).json()
    assert en["failures"][0]["message"] == "no transformer within 400 m of the customer"
    assert en["white_list"]["message"] == en["white_list"]["detail"]
    client.cookies.set("fo_lang", "en")  # the page's switch wins over the browser's header
    try:
        by_cookie = client.get(
            f"/schemes/{scheme_id}", headers={**auth(token), "Accept-Language": "zh-CN"}
        ).json()
    finally:
        client.cookies.clear()
    assert by_cookie["failures"][0]["message"] == "no transformer within 400 m of the customer"


def test_proposals_answer_in_the_request_language_with_their_messages(
    client: TestClient, session: Session, settings: Settings
) -> None:
    token, scheme_id = _refused(
        client, session, settings, category="residential", phases=1, capacity_kw=20
    )
    zh = client.get(f"/schemes/{scheme_id}", headers=auth(token)).json()
    assert zh["failures"][0]["code"] == "scheme_failure.outside_kits"
    assert zh["failures"][0]["message"] == "20 kW 超出居民 1 相标准套件的范围（最大 12 kW）"
    assert zh["proposal_messages"][0]["code"] == "scheme_proposal.other_phases"
    assert zh["proposal_messages"][0]["params"] == {"phases": 3, "kit": "B1"}
    assert zh["proposals"] == ["改为 3 相接入，使用套件 B1"]
    assert zh["proposal_messages"][0]["message"] == zh["proposals"][0]
    en = client.get(f"/schemes/{scheme_id}", headers={**auth(token), "Accept-Language": "en"})
    assert en.json()["proposals"] == ["connect 3-phase with kit B1"]
    assert en.json()["failures"][0]["message"] == (
        "20 kW is outside the standard kits for residential 1-phase connections (up to 12 kW)"
    )


def test_an_answer_saved_before_the_messages_reads_in_english(
    client: TestClient, session: Session, settings: Settings
) -> None:
    token, scheme_id = _refused(
        client, session, settings, category="residential", phases=1, capacity_kw=20
    )
    row = session.get(SupplyScheme, scheme_id)
    assert row is not None
    old = dict(row.answer)
    old["failures"] = [
        {k: v for k, v in f.items() if k not in ("code", "params")} for f in old["failures"]
    ]
    old.pop("proposal_messages")
    row.answer = old
    session.commit()
    body = client.get(f"/schemes/{scheme_id}", headers=auth(token)).json()  # zh-CN asked
    assert body["failures"][0]["code"] is None
    assert body["failures"][0]["message"] == body["failures"][0]["detail"]
    assert body["proposals"] == ["connect 3-phase with kit B1"]
    assert body["proposal_messages"] == []
