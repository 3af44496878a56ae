"""Kits, materials, depots and reservations through HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from tests.builders import auth, make_crew, make_user
from tests.field_api.kits.helpers import load_network, order_with_scheme, principal, stock_for

METER = "3340101234567890123456"


def test_anyone_signed_in_browses_kits_and_materials(
    client: TestClient, session: Session, settings: Settings
) -> None:
    _, token = make_user(session, settings, role=Role.inspector)
    session.commit()
    kits = client.get("/kits", headers=auth(token)).json()
    assert [k["code"] for k in kits["connection_kits"]] == ["R1", "R2", "B1", "B2", "B3", "B4", "B5"]
    assert any("defect" in k["defect_classes"] for k in kits["repair_kits"])
    b4 = client.get("/kits/B4", headers=auth(token)).json()
    assert b4["capacity"] == {"above_kw": 100.0, "up_to_kw": 160.0}
    cables = client.get("/materials", params={"kind": "cable"}, headers=auth(token)).json()
    assert cables and all(c["kind"] == "cable" for c in cables)
    ct = client.get("/materials/CT-400-5", headers=auth(token)).json()
    assert (ct["primary_a"], ct["secondary_a"]) == (400, 5)
    assert client.get("/kits/NOPE", headers=auth(token)).status_code == 404
    assert client.get("/kits").status_code == 401


def test_storekeeper_stocks_a_depot_and_the_kit_goes_round(
    client: TestClient, session: Session, settings: Settings
) -> None:
    load_network(session)
    crew = make_crew(session)
    member = principal(session, settings, Role.crew, crew)
    order, scheme = order_with_scheme(session, crew, member)
    _, keeper = make_user(session, settings, role=Role.storekeeper)
    _, crew_token = make_user(session, settings, role=Role.crew, crew=crew)
    _, planner = make_user(session, settings, role=Role.planner)
    session.commit()

    r = client.post("/depots", json={"code": "DEPOT-NS", "name": "南山仓库"}, headers=auth(keeper))
    assert r.status_code == 201, r.text
    r = client.post("/depots/DEPOT-NS/receipts", json={"lines": stock_for(scheme)},
                    headers=auth(keeper))
    assert r.status_code == 201
    r = client.put("/depots/DEPOT-NS/stock/MTR-1P-5-60/reorder-level", json={"level": 2},
                   headers=auth(keeper))
    assert r.status_code == 200

    r = client.post(f"/work-orders/{order.id}/kit-reservations", json={"depot_code": "DEPOT-NS"},
                    headers=auth(crew_token))
    assert r.status_code == 201, r.text
    reservation = r.json()
    assert reservation["status"] == "reserved" and reservation["kit_code"] == "R1"
    stock = {s["material_code"]: s for s in
             client.get("/depots/DEPOT-NS/stock", headers=auth(keeper)).json()}
    assert stock["MTR-1P-5-60"]["available"] == 0 and stock["MTR-1P-5-60"]["reserved"] == 1
    low = client.get("/stock/low", headers=auth(planner)).json()
    assert [s["material_code"] for s in low] == ["MTR-1P-5-60"]

    rid = reservation["id"]
    assert client.post(f"/kit-reservations/{rid}/issue", json={"meter_barcode": METER},
                       headers=auth(crew_token)).status_code == 403
    bad = client.post(f"/kit-reservations/{rid}/issue", json={"meter_barcode": "ABC12345"},
                      headers=auth(keeper))
    assert bad.status_code == 422 and bad.json()["detail"] == "电表资产编码应为 22 位，实际 8 位"
    r = client.post(f"/kit-reservations/{rid}/issue", json={"meter_barcode": METER},
                    headers=auth(keeper))
    assert r.status_code == 200 and r.json()["meter_barcode"] == METER
    consumed = {line["material_code"]: line["quantity"] for line in r.json()["lines"]}
    r = client.post(f"/kit-reservations/{rid}/close", json={"consumed": consumed},
                    headers=auth(keeper))
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert all(line["returned"] == 0 for line in r.json()["lines"])
    r = client.post(f"/kit-reservations/{rid}/return", headers=auth(keeper))
    assert r.status_code == 409 and r.json()["code"] == "kit.not_issued"


def test_out_of_stock_is_409_with_the_shortages(
    client: TestClient, session: Session, settings: Settings
) -> None:
    load_network(session)
    crew = make_crew(session)
    member = principal(session, settings, Role.crew, crew)
    order, _ = order_with_scheme(session, crew, member)
    _, keeper = make_user(session, settings, role=Role.storekeeper)
    session.commit()
    client.post("/depots", json={"code": "EMPTY", "name": "空仓"}, headers=auth(keeper))
    r = client.post(f"/work-orders/{order.id}/kit-reservations", json={"depot_code": "EMPTY"},
                    headers=auth(keeper))
    assert r.status_code == 409
    assert r.json()["error"] == "OutOfStock"
    assert {s["material_code"] for s in r.json()["params"]["shortages"]} >= {"MTR-1P-5-60"}
    r = client.post(f"/work-orders/{order.id}/kit-reservations", json={"depot_code": "NOPE"},
                    headers=auth(keeper))
    assert r.status_code == 404
    r = client.post("/depots/EMPTY/receipts", json={"lines": {"MTR-1P-5-60": "many"}},
                    headers=auth(keeper))
    assert r.status_code == 422
    r = client.post("/depots/EMPTY/receipts", content=b'{"lines": {"MTR-1P-5-60": Infinity}}',
                    headers=auth(keeper, **{"Content-Type": "application/json"}))
    assert r.status_code == 422
    r = client.post("/depots", json={"code": "EMPTY", "name": "again"}, headers=auth(keeper))
    assert r.status_code == 409


def test_the_meter_code_rule_is_the_one_of_the_barcode_upload_and_the_crew_app() -> None:
    """Kit issue, barcode upload and the crew app take the same 22-digit code."""
    import re
    from pathlib import Path

    from field_api import meters
    from field_api.media import barcode

    assert barcode.parse_meter_code is meters.parse_meter_code
    crew_js = (
        Path(meters.__file__).parent / "web" / "static" / "js" / "crew.js"
    ).read_text(encoding="utf-8")
    assert f'METER_CODE_PATTERN = "{meters.METER_CODE_INPUT_PATTERN}"' in crew_js
    assert re.fullmatch(meters.METER_CODE_INPUT_PATTERN, "3340101234567890123456")
    assert not re.fullmatch(meters.METER_CODE_INPUT_PATTERN, "ABC12345")
