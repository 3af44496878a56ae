"""Idempotency-Key through HTTP: redacted replays, expiry, reclaiming a crashed request's key."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.idempotency import service
from field_api.idempotency.models import IdempotencyRecord
from field_api.leases.service import owner_id
from tests.builders import auth, make_crew, make_district, make_user, order_payload
from tests.clocks import ChinaClock


def _records(session: Session) -> list[IdempotencyRecord]:
    session.expire_all()
    return list(session.execute(select(IdempotencyRecord)).scalars())


def _stored_text(session: Session) -> str:
    return "\n".join(
        f"{r.scope} {r.key} {r.request_hash} {(r.body or b'').decode()}" for r in _records(session)
    )


def test_replayed_user_creation_has_no_token_and_says_so(
    client: TestClient, session: Session, settings: Settings
) -> None:
    crew = make_crew(session)
    _, admin = make_user(session, settings, role=Role.admin)
    session.commit()
    h = auth(admin, **{"Idempotency-Key": "new-user-1"})
    body = {"name": "王工", "role": "crew", "crew_code": crew.code}
    first = client.post("/admin/users", json=body, headers=h)
    assert first.status_code == 201, first.text
    token = first.json()["token"]
    assert token.startswith("fo_") and "idempotency-redacted" not in first.headers

    again = client.post("/admin/users", json=body, headers=h)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["idempotency-redacted"] == "token"
    assert again.json() == {**first.json(), "token": None}

    stored = _stored_text(session)
    assert token not in stored and token[3:20] not in stored
    assert admin not in stored  # the scope is a keyed hash, not the bearer token
    # The token shown once works.
    assert client.get("/me", headers=auth(token)).json()["name"] == "王工"


def test_replayed_work_order_masks_the_customer(
    client: TestClient, session: Session, settings: Settings
) -> None:
    district = make_district(session)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    payload = order_payload(
        district,
        customer_name="欧阳娜娜",
        customer_phone="13712345678",
        customer_id_number="51010419880808123X",
    )
    h = auth(token, **{"Idempotency-Key": "order-1"})
    first = client.post("/work-orders", json=payload, headers=h)
    assert first.status_code == 201, first.text
    assert first.json()["customer_phone"] == "13712345678"  # the creator sees the full record

    stored = _stored_text(session)
    for personal in ("欧阳娜娜", "13712345678", "51010419880808123X"):
        assert personal not in stored

    again = client.post("/work-orders", json=payload, headers=h)
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["customer_phone"] == "*******5678"
    assert again.json()["customer_id_number"] == "51**************3X"
    assert again.json()["customer_name"] == "欧***"
    assert again.headers["idempotency-redacted"] == (
        "customer_id_number, customer_name, customer_phone"
    )
    assert len(client.get("/work-orders", headers=auth(token)).json()) == 1


def test_expired_key_executes_afresh_and_purge_deletes_it(
    client: TestClient, session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    district = make_district(session)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    h = auth(token, **{"Idempotency-Key": "order-ttl"})
    first = client.post("/work-orders", json=order_payload(district), headers=h)
    assert first.status_code == 201
    server_clock.advance(hours=settings.idempotency_ttl_hours - 1)
    replay = client.post("/work-orders", json=order_payload(district), headers=h)
    assert replay.headers.get("idempotent-replayed") == "true"

    server_clock.advance(hours=1, seconds=1)
    with session.begin_nested():
        assert service.purge_expired(session) == 1
    assert _records(session) == []
    # Expired (and even purged): the same key is a new request, not a replay or a conflict.
    fresh = client.post("/work-orders", json=order_payload(district, capacity_kw=9), headers=h)
    assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers
    assert fresh.json()["id"] != first.json()["id"]


def test_expired_record_not_yet_purged_is_treated_as_absent(
    client: TestClient, session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    district = make_district(session)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    h = auth(token, **{"Idempotency-Key": "order-ttl-2"})
    first = client.post("/work-orders", json=order_payload(district), headers=h)
    server_clock.advance(hours=settings.idempotency_ttl_hours, seconds=1)
    again = client.post("/work-orders", json=order_payload(district), headers=h)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert len(_records(session)) == 1


def _in_progress(session: Session, settings: Settings, token: str, body: bytes, **kw: Any) -> None:
    """The record a request leaves when its process dies mid-way (never stored, never released)."""
    with session.begin_nested():
        claim = service.claim(
            session,
            scope=service.key_scope(f"Bearer {token}", pepper=settings.token_pepper),
            key="crashed",
            request_hash=service.request_hash(
                "POST", "/work-orders", body, pepper=settings.token_pepper
            ),
            ttl=timedelta(hours=settings.idempotency_ttl_hours),
            lease=timedelta(seconds=settings.idempotency_lease_s),
            **kw,
        )
    assert claim.outcome is service.Outcome.execute
    session.commit()


def _post_raw(client: TestClient, token: str, body: bytes) -> Any:
    return client.post(
        "/work-orders",
        content=body,
        headers=auth(token, **{"Idempotency-Key": "crashed", "Content-Type": "application/json"}),
    )


def test_a_live_request_answers_409_then_its_expired_lease_is_taken_over(
    client: TestClient, session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    district = make_district(session)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    body = json.dumps(order_payload(district)).encode()
    # Held by a process of another host: only its lease expiry frees the key.
    _in_progress(session, settings, token, body, owner="another-host/4242/1")
    busy = _post_raw(client, token, body)
    assert busy.status_code == 409 and busy.json()["error"] == "IdempotencyConflict"
    assert busy.headers["retry-after"] == str(settings.idempotency_lease_s)

    server_clock.advance(seconds=settings.idempotency_lease_s + 1)
    retried = _post_raw(client, token, body)
    assert retried.status_code == 201, retried.text
    replay = _post_raw(client, token, body)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == retried.json()["id"]


def test_a_dead_local_owner_is_taken_over_at_once(
    client: TestClient, session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    district = make_district(session)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    body = json.dumps(order_payload(district)).encode()
    host = owner_id().split("/")[0]
    _in_progress(session, settings, token, body, owner=f"{host}/999999/0")
    retried = _post_raw(client, token, body)  # no clock movement: the owner is gone
    assert retried.status_code == 201, retried.text


def test_this_process_own_running_request_is_not_taken_over(
    client: TestClient, session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    district = make_district(session)
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    body = json.dumps(order_payload(district)).encode()
    _in_progress(session, settings, token, body, owner=owner_id())
    server_clock.advance(seconds=settings.idempotency_lease_s - 5)
    busy = _post_raw(client, token, body)
    assert busy.status_code == 409 and busy.headers["retry-after"] == "5"


def test_a_server_error_frees_the_key(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    _, token = make_user(session, settings, role=Role.service)
    session.commit()
    h = auth(token, **{"Idempotency-Key": "boom"})

    calls = {"n": 0}

    @app.post("/test-only/boom")
    def boom() -> dict[str, int]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("crash inside the route")
        return {"n": calls["n"]}

    assert client.post("/test-only/boom", json={}, headers=h).status_code == 500
    assert _records(session) == []
    ok = client.post("/test-only/boom", json={}, headers=h)
    assert ok.status_code == 200 and ok.json() == {"n": 2}
