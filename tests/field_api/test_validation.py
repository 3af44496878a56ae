"""The validation layer at the HTTP edge (field_api.types, field_api.api_doc).

Out-of-range integers, non-ISO dates, NUL characters and over-long codes are 422 before any
database sees them (SQLite and PostgreSQL); OPTIONS and 405 carry a complete ``Allow``; the
OpenAPI declares the bearer scheme and the CSV answers; revoking a token (left out of the fuzz)
is checked here by hand.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.auth.models import ApiToken, User
from field_api.common.actors import Role
from field_api.config import Settings
from tests.builders import auth, make_district, make_user, order_payload
from tests.test_fuzz import EXCLUDED

TOO_BIG = 2**31  # one past PostgreSQL's INTEGER
HUGE = 99999999999999999999


@pytest.fixture
def admin_token(session: Session, settings: Settings) -> str:
    _, token = make_user(session, settings, role=Role.admin)
    session.commit()
    return token


@pytest.mark.parametrize(
    "url",
    [
        f"/work-orders/{TOO_BIG}",
        f"/work-orders/{HUGE}",
        "/work-orders/0",
        "/work-orders/-1",
        f"/work-orders?crew_id={HUGE}",
        f"/work-orders?district_id={TOO_BIG}",
        "/work-orders?offset=100000000000",
        f"/work-orders/{TOO_BIG}/transitions",
        f"/media/{HUGE}",
        f"/media/flags?order_id={TOO_BIG}",
        f"/inspections/findings?min_severity={HUGE}",
        f"/schemes/{TOO_BIG}",
        f"/repair-orders/{HUGE}",
        f"/deadlines/attention?crew_id={HUGE}",
    ],
)
def test_out_of_range_integers_are_422(client: TestClient, admin_token: str, url: str) -> None:
    r = client.get(url, headers=auth(admin_token))
    assert r.status_code == 422, r.text


def test_out_of_range_integer_in_a_write_path_is_422(client: TestClient, admin_token: str) -> None:
    r = client.post(
        f"/work-orders/{HUGE}/transitions", json={"to": "surveyed"}, headers=auth(admin_token)
    )
    assert r.status_code == 422, r.text
    r = client.post(f"/admin/tokens/{TOO_BIG}/revoke", headers=auth(admin_token))
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("value", ["0", "1700000000", "2026-1-5", "2026-01-05T00:00:00", "x"])
def test_query_dates_are_iso_dates_only(client: TestClient, admin_token: str, value: str) -> None:
    r = client.get("/deadlines/attention", params={"as_of": value}, headers=auth(admin_token))
    assert r.status_code == 422, r.text


@pytest.mark.parametrize(
    "url",
    [
        "/deadlines/attention?as_of=9999-12-31",
        "/deadlines/attention?as_of=0001-01-01",
        "/planner/one-visit?from=9999-12-30&to=9999-12-31",
        "/planner/one-visit.csv?from=2026-01-01&to=9999-12-31",
        "/planner/first-pass?from=1899-12-31&to=2026-01-01",
        "/planner/failing-items?from=2026-01-01&to=2200-01-01",
    ],
)
def test_dates_beyond_1900_to_2199_are_422_not_an_overflow(
    client: TestClient, admin_token: str, url: str
) -> None:
    r = client.get(url, headers=auth(admin_token))
    assert r.status_code == 422, r.text


def test_the_edges_of_the_date_range_are_taken(client: TestClient, admin_token: str) -> None:
    for url in [
        "/deadlines/attention?as_of=2199-12-31",
        "/planner/one-visit?from=1900-01-01&to=2199-12-31",
        "/planner/first-pass?from=2199-12-31&to=2199-12-31",
    ]:
        r = client.get(url, headers=auth(admin_token))
        assert r.status_code == 200, (url, r.text)


def test_an_iso_query_date_is_taken(client: TestClient, admin_token: str) -> None:
    r = client.get("/deadlines/attention?as_of=2026-01-05", headers=auth(admin_token))
    assert r.status_code == 200, r.text
    assert r.json()["as_of"] == "2026-01-05"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("applied_on", 0),
        ("applied_on", 1700000000),
        ("applied_on", "20260105"),
        ("applied_on", "0001-01-01"),
        ("applied_on", "9999-12-31"),
        ("customer_name", "张\x00三"),
        ("district_code", "D" * 33),
        ("address", "x" * 501),
    ],
)
def test_bad_body_values_are_422(
    client: TestClient, session: Session, settings: Settings, field: str, value: object
) -> None:
    district = make_district(session)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    payload = order_payload(district)
    payload[field] = value
    r = client.post("/work-orders", json=payload, headers=auth(token))
    assert r.status_code == 422, r.text
    assert field in r.text


def test_body_datetimes_are_iso_text_only(
    client: TestClient, session: Session, settings: Settings
) -> None:
    district = make_district(session)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    created = client.post("/work-orders", json=order_payload(district), headers=auth(token))
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    r = client.post(
        f"/work-orders/{order_id}/transitions",
        json={"to": "cancelled", "reason": "customer withdrew", "device_time": 1700000000},
        headers=auth(token),
    )
    assert r.status_code == 422, r.text
    assert "device_time" in r.text


@pytest.mark.parametrize(
    "data",
    ['{"x": NaN}', '{"x": [1, Infinity]}', '{"x": {"y": "a\\u0000b"}}', '{"a\\u0000": 1}'],
)
def test_free_form_json_is_finite_and_nul_free(
    client: TestClient, session: Session, settings: Settings, data: str
) -> None:
    """Python's JSON parser takes NaN and Infinity; PostgreSQL's json type refuses them (a 500)."""
    district = make_district(session)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    created = client.post("/work-orders", json=order_payload(district), headers=auth(token))
    order_id = created.json()["id"]
    r = client.post(
        f"/work-orders/{order_id}/transitions",
        content='{"to": "cancelled", "reason": "withdrawn", "data": ' + data + "}",
        headers=auth(token, **{"Content-Type": "application/json"}),
    )
    assert r.status_code == 422, r.text
    assert "data" in r.text


@pytest.mark.parametrize(
    "url", ["/kits/" + "K" * 33, "/depots/%00/stock", "/network/transformers/" + "T" * 65]
)
def test_codes_in_paths_are_bounded_and_nul_free(
    client: TestClient, admin_token: str, url: str
) -> None:
    r = client.get(url, headers=auth(admin_token))
    assert r.status_code == 422, r.text


def test_options_lists_every_method_of_the_path(client: TestClient) -> None:
    r = client.options("/work-orders")
    assert r.status_code == 204
    assert set(r.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    r = client.options("/work-orders/1/transitions")
    assert set(r.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}


def test_wrong_method_is_405_with_the_complete_allow(client: TestClient, admin_token: str) -> None:
    r = client.delete("/work-orders", headers=auth(admin_token))
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    # /media/{media_id} takes digits only, so it no longer swallows /media/uploads
    r = client.get("/media/uploads", headers=auth(admin_token))
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == "OPTIONS"
    assert client.get("/media/not-a-number", headers=auth(admin_token)).status_code == 404


def test_tus_options_keeps_its_own_answer_and_gets_allow(client: TestClient) -> None:
    r = client.options("/media/uploads")
    assert r.status_code == 204
    assert r.headers["tus-resumable"] == "1.0.0"
    assert r.headers["allow"] == "OPTIONS"


def test_openapi_declares_the_bearer_scheme_on_authenticated_operations(
    client: TestClient,
) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token: Authorization: Bearer <token>.",
    }
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    assert ops[("GET", "/work-orders")]["security"] == [{"bearer": []}]
    assert ops[("POST", "/work-orders/{order_id}/media")]["security"] == [{"bearer": []}]
    assert ops[("POST", "/work-orders/{order_id}/media/uploads")]["security"] == [{"bearer": []}]
    for public in [("GET", "/healthz"), ("GET", "/track/{token}"), ("GET", "/t/{token}")]:
        assert "security" not in ops[public], public
    # every operation without security really answers without a token
    for (method, path), op in ops.items():
        if "security" not in op and "{" not in path and method == "GET":
            assert client.get(path).status_code != 401, path


def test_openapi_documents_csv_answers(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in [
        "/planner/first-pass.csv",
        "/planner/failing-items.csv",
        "/planner/one-visit.csv",
        "/planner/defect-backlog",
        "/planner/inspection-coverage",
        "/planner/repair-lead-times",
    ]:
        content = doc["paths"][path]["get"]["responses"]["200"]["content"]
        assert "text/csv" in content, path


def test_revoking_a_token_checked_by_hand(
    client: TestClient, session: Session, settings: Settings, admin_token: str
) -> None:
    """The fuzz leaves revocation out (it would revoke its own token); here it is by hand."""
    assert ("POST", "/admin/tokens/{token_id}/revoke") in EXCLUDED
    crew_user, crew_token = make_user(session, settings, role=Role.crew)
    session.commit()
    token_id = session.scalars(
        select(ApiToken.id).where(ApiToken.user_id == crew_user.id)
    ).one()
    assert client.get("/me", headers=auth(crew_token)).status_code == 200

    r = client.post(f"/admin/tokens/{token_id}/revoke", headers=auth(crew_token))
    assert r.status_code == 403
    r = client.post(f"/admin/tokens/{token_id}/revoke", headers=auth(admin_token))
    assert r.status_code == 200, r.text
    assert client.get("/me", headers=auth(crew_token)).status_code == 401
    missing = client.post(f"/admin/tokens/{TOO_BIG - 1}/revoke", headers=auth(admin_token))
    assert missing.status_code == 404
    assert session.get(User, crew_user.id) is not None


@pytest.mark.parametrize(
    "row",
    [
        b"TX-\x00A,fine,400,100,113.93,22.53",  # NUL in the code: PostgreSQL refuses it
        b"TX-NULN,fi\x00ne,400,100,113.93,22.53",
        b"TX-LONG," + b"n" * 201 + b",400,100,113.93,22.53",  # name is String(200)
    ],
)
def test_network_rows_with_unstorable_text_are_422(
    client: TestClient, admin_token: str, row: bytes
) -> None:
    data = b"code,name,rated_kva,load_kva,lon,lat\n" + row + b"\n"
    r = client.post(
        "/network/imports?format=csv",
        files={"file": ("t.csv", data, "text/csv")},
        headers=auth(admin_token),
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "network.rows_invalid"
