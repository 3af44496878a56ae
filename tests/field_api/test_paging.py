"""Every list endpoint pages: limit/offset, X-Total-Count and an RFC 8288 rel="next" link."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.inspections.models import LedgerAsset, LedgerLine
from field_api.main import create_app
from field_api.paging import DEFAULT_LIMIT, MAX_LIMIT
from field_api.tracking import service as tracking
from field_api.tracking.rules import EventType
from tests.builders import auth, make_crew, make_district, make_order, make_user

LINK = re.compile(r'<([^>]*)>;\s*rel="([^"]+)"')


def _links(r: Response) -> dict[str, str]:
    return {rel: url for url, rel in LINK.findall(r.headers.get("link", ""))}


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _is_array(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "array" or any(
        s.get("type") == "array" for s in schema.get("anyOf", [])
    )


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("paging-openapi")
    settings = Settings(
        env="test",
        database_url=f"sqlite:///{root}/fieldops.db",
        media_dir=root / "media",
        token_pepper="test-pepper-0123456789",
        signing_key_path=root / "keys" / "signing.key",
    )
    return create_app(settings).openapi()


def test_every_get_that_answers_a_list_declares_paging(doc: dict[str, Any]) -> None:
    checked = []
    for path, item in doc["paths"].items():
        op = item.get("get")
        if op is None:
            continue
        ok = op["responses"].get("200", {})
        schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
        if not _is_array(schema):
            continue
        params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
        assert {"limit", "offset"} <= params.keys(), path
        assert params["limit"]["schema"]["maximum"] == MAX_LIMIT, path
        assert params["limit"]["schema"]["default"] == DEFAULT_LIMIT, path
        assert {"X-Total-Count", "Link"} <= ok.get("headers", {}).keys(), path
        checked.append(path)
    # the walk saw the lists (not an empty document)
    assert {"/work-orders", "/inspections/assets", "/crews", "/depots"} <= set(checked)


def test_work_orders_page_with_total_and_next_link(
    client: TestClient, session: Session, settings: Settings
) -> None:
    district = make_district(session)
    crew = make_crew(session, district=district)
    ids = sorted(make_order(session, district=district, crew=crew).id for _ in range(5))
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    h = auth(token)

    first = client.get("/work-orders?limit=2", headers=h)
    assert first.status_code == 200, first.text
    assert [o["id"] for o in first.json()] == ids[:2]
    assert first.headers["x-total-count"] == "5"
    nxt = _links(first)["next"]
    assert _query(nxt) == {"limit": "2", "offset": "2"}
    assert "prev" not in _links(first)

    seen = [o["id"] for o in first.json()]
    url: str | None = nxt
    pages = 1
    while url is not None:
        r = client.get(url, headers=h)
        assert r.status_code == 200 and r.headers["x-total-count"] == "5"
        seen += [o["id"] for o in r.json()]
        url = _links(r).get("next")
        pages += 1
    assert seen == ids and pages == 3  # 2 + 2 + 1; the last page has no next link

    last = client.get("/work-orders?limit=2&offset=4", headers=h)
    assert [o["id"] for o in last.json()] == ids[4:]
    assert "next" not in _links(last) and "prev" in _links(last)
    # filters are kept in the links
    filtered = client.get(f"/work-orders?limit=1&crew_id={crew.id}", headers=h)
    assert _query(_links(filtered)["next"])["crew_id"] == str(crew.id)

    assert client.get(f"/work-orders?limit={MAX_LIMIT}", headers=h).status_code == 200
    too_many = client.get(f"/work-orders?limit={MAX_LIMIT + 1}", headers=h)
    assert too_many.status_code == 422
    assert too_many.json()["code"] == "request.invalid"
    assert too_many.json()["params"]["errors"][0]["loc"] == ["query", "limit"]
    assert client.get("/work-orders?limit=0", headers=h).status_code == 422
    assert client.get("/work-orders?offset=-1", headers=h).status_code == 422


def test_a_page_past_the_end_is_empty_with_the_total(
    client: TestClient, session: Session, settings: Settings
) -> None:
    district = make_district(session)
    make_order(session, district=district)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    r = client.get("/work-orders?offset=10", headers=auth(token))
    assert r.status_code == 200 and r.json() == []
    assert r.headers["x-total-count"] == "1"
    assert "next" not in _links(r)


def test_ledger_assets_page(client: TestClient, session: Session, settings: Settings) -> None:
    session.add_all([LedgerLine(id="L1", name="一号线"), LedgerLine(id="L2", name="二号线")])
    session.flush()
    session.add_all(
        [LedgerAsset(id=f"P{i:02d}", line_id="L1", lat=30.0, lon=120.0 + i) for i in range(7)]
        + [LedgerAsset(id="Q01", line_id="L2", lat=31.0, lon=121.0)]
    )
    _, token = make_user(session, settings, role=Role.inspector)
    session.commit()
    h = auth(token)

    r = client.get("/inspections/assets?line_id=L1&limit=3&offset=3", headers=h)
    assert r.status_code == 200, r.text
    assert [a["id"] for a in r.json()] == ["P03", "P04", "P05"]
    assert r.headers["x-total-count"] == "7"
    assert _query(_links(r)["next"]) == {"line_id": "L1", "limit": "3", "offset": "6"}

    last = client.get(_links(r)["next"], headers=h)
    assert [a["id"] for a in last.json()] == ["P06"]
    assert "next" not in _links(last)

    everything = client.get("/inspections/assets", headers=h)
    assert len(everything.json()) == 8 and everything.headers["x-total-count"] == "8"
    assert "link" not in everything.headers  # one page: no next, no prev
    assert client.get("/inspections/assets?limit=1001", headers=h).status_code == 422


def test_a_list_built_in_memory_pages_too(
    client: TestClient, session: Session, settings: Settings
) -> None:
    district = make_district(session)
    for _ in range(3):
        make_crew(session, district=district)
    _, token = make_user(session, settings, role=Role.admin)
    session.commit()
    h = auth(token)
    whole = client.get("/crews", headers=h).json()
    r = client.get("/crews?limit=2&offset=1", headers=h)
    assert r.json() == whole[1:3]
    assert r.headers["x-total-count"] == str(len(whole))
    assert ("next" in _links(r)) == (len(whole) > 3)


def test_webhook_deliveries_page_newest_first_in_the_database(
    client: TestClient, session: Session, settings: Settings
) -> None:
    order = make_order(session)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    h = auth(token)
    body = {"name": "crm", "url": "https://crm.example.test/hook", "events": ["visit_planned"]}
    assert client.post("/webhooks/subscriptions", json=body, headers=h).status_code == 201
    ids = [
        tracking.enqueue(session, EventType.visit_planned, {"n": n}, order_id=order.id)[0].id
        for n in range(3)
    ]
    session.commit()

    first = client.get("/webhooks/deliveries?status=pending&limit=2", headers=h)
    assert first.status_code == 200, first.text
    assert first.headers["x-total-count"] == "3"
    assert [d["id"] for d in first.json()] == [ids[2], ids[1]]  # newest first
    assert _query(_links(first)["next"]) == {"status": "pending", "limit": "2", "offset": "2"}
    rest = client.get(_links(first)["next"], headers=h)
    assert [d["id"] for d in rest.json()] == [ids[0]]
    assert "next" not in _links(rest)
