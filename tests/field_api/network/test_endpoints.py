"""The network import and transformer look-up through HTTP."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from tests.builders import auth, make_user

FIXTURES = Path(__file__).parents[2] / "fixtures" / "network"


def _upload(name: str) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, (FIXTURES / name).read_bytes(), "application/octet-stream")}


def test_admin_imports_geojson_and_anyone_signed_in_finds_transformers(
    client: TestClient, session: Session, settings: Settings
) -> None:
    _, admin = make_user(session, settings, role=Role.admin)
    _, planner = make_user(session, settings, role=Role.planner)
    session.commit()
    r = client.post("/network/imports", files=_upload("network.geojson"), headers=auth(admin))
    assert r.status_code == 201, r.text
    assert r.json()["transformers_created"] == 2 and r.json()["lines_created"] == 1
    r = client.get("/network/transformers", params={"lon": 113.9305, "lat": 22.5333},
                   headers=auth(planner))
    assert r.status_code == 200
    first = r.json()[0]
    assert first["code"] == "TX-NANSHAN-01"
    assert (first["rated_kva"], first["spare_kva"], first["available_kva"]) == (400, 150, 150)
    one = client.get("/network/transformers/TX-NANSHAN-02", headers=auth(planner)).json()
    assert one["base_load_kva"] == 200


def test_bad_rows_are_a_422_listing_each_row(
    client: TestClient, session: Session, settings: Settings
) -> None:
    _, admin = make_user(session, settings, role=Role.admin)
    session.commit()
    r = client.post("/network/imports", files=_upload("broken.csv"), headers=auth(admin))
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "ValidationFailed"
    assert [row["row"] for row in body["params"]["rows"]] == [3, 4, 5, 6, 7, 8]
    listed = client.get("/network/transformers", params={"lon": 113.93, "lat": 22.53},
                        headers=auth(admin)).json()
    assert listed == []


def test_import_is_for_admins_and_format_must_be_known(
    client: TestClient, session: Session, settings: Settings
) -> None:
    _, admin = make_user(session, settings, role=Role.admin)
    _, planner = make_user(session, settings, role=Role.planner)
    session.commit()
    r = client.post("/network/imports", files=_upload("network.geojson"), headers=auth(planner))
    assert r.status_code == 403 and r.json()["error"] == "Forbidden"
    r = client.post("/network/imports", headers=auth(admin),
                    files={"file": ("net.xlsx", b"whatever", "application/octet-stream")})
    assert r.status_code == 422 and "cannot tell the format" in r.json()["detail"]
    r = client.get("/network/transformers/NOPE", headers=auth(admin))
    assert r.status_code == 404 and r.json()["error"] == "NotFound"
    r = client.get("/network/transformers", params={"lon": 500, "lat": 22.5},
                   headers=auth(admin))
    assert r.status_code == 422
