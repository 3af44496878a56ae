"""Idempotency records: claim, redacted store, expiry, purge, lease takeover (service level)."""

from __future__ import annotations

import json
import os
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.idempotency import service
from field_api.idempotency.models import IdempotencyRecord
from field_api.leases.service import owner_id
from tests.clocks import ChinaClock

TTL = timedelta(hours=72)
LEASE = timedelta(seconds=60)
PEPPER = "test-pepper-0123456789"


def _claim(session: Session, key: str, body: bytes = b"{}", **kw: object) -> service.Claim:
    return service.claim(
        session,
        scope=service.key_scope("Bearer fo_x", pepper=PEPPER),
        key=key,
        request_hash=service.request_hash("POST", "/x", body, pepper=PEPPER),
        ttl=TTL,
        lease=LEASE,
        **kw,  # type: ignore[arg-type]
    )


def _count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(IdempotencyRecord)).scalar_one()


def test_purge_expired_deletes_only_expired_records(
    session: Session, server_clock: ChinaClock
) -> None:
    old = _claim(session, "old")
    assert old.outcome is service.Outcome.execute
    assert service.store(
        session, old, status_code=201, content_type="application/json", body=b"{}", ttl=TTL
    )
    server_clock.advance(hours=71)
    recent = _claim(session, "recent")
    assert service.store(
        session, recent, status_code=201, content_type="application/json", body=b"{}", ttl=TTL
    )
    assert service.purge_expired(session) == 0
    server_clock.advance(hours=1, seconds=1)
    assert service.purge_expired(session) == 1
    assert _count(session) == 1
    assert service.purge_expired(session) == 0
    server_clock.advance(hours=72)
    assert service.purge_expired(session) == 1
    assert _count(session) == 0


def test_purge_keeps_a_record_whose_request_still_runs(
    session: Session, server_clock: ChinaClock
) -> None:
    running = service.claim(
        session,
        scope="s",
        key="k",
        request_hash="h",
        ttl=timedelta(seconds=10),
        lease=timedelta(seconds=60),
    )
    assert running.outcome is service.Outcome.execute
    server_clock.advance(seconds=30)  # past its expiry, inside its lease
    assert service.purge_expired(session) == 0
    server_clock.advance(seconds=31)  # lease gone too: a crashed request's leftover
    assert service.purge_expired(session) == 1


def test_expired_record_is_absent_and_the_key_executes_afresh(
    session: Session, server_clock: ChinaClock
) -> None:
    first = _claim(session, "k")
    service.store(
        session, first, status_code=201, content_type="application/json", body=b"{}", ttl=TTL
    )
    assert _claim(session, "k").outcome is service.Outcome.replay
    # Even a different request reuses an expired key without a conflict.
    server_clock.advance(hours=72, seconds=1)
    again = _claim(session, "k", body=b'{"other": 1}')
    assert again.outcome is service.Outcome.execute
    assert again.record_id == first.record_id and again.attempt == first.attempt + 1
    assert _claim(session, "k", body=b'{"other": 1}').outcome is service.Outcome.in_progress


def test_live_in_progress_key_answers_in_progress_with_retry_after(
    session: Session, server_clock: ChinaClock
) -> None:
    assert _claim(session, "k").outcome is service.Outcome.execute
    server_clock.advance(seconds=20)
    busy = _claim(session, "k")
    assert busy.outcome is service.Outcome.in_progress
    assert busy.retry_after_s == 40


def test_lease_expiry_lets_a_retry_take_the_key_over(
    session: Session, server_clock: ChinaClock
) -> None:
    crashed = _claim(session, "k", owner="elsewhere/1/1")
    server_clock.advance(seconds=61)
    retry = _claim(session, "k")
    assert retry.outcome is service.Outcome.execute
    assert retry.attempt == crashed.attempt + 1
    row = session.get(IdempotencyRecord, retry.record_id)
    assert row is not None and row.owner == owner_id()
    # The crashed executor's late answer (if it ever comes) does not overwrite the retry's.
    assert not service.store(
        session, crashed, status_code=201, content_type=None, body=b"", ttl=TTL
    )
    service.release(session, crashed)
    assert session.get(IdempotencyRecord, retry.record_id) is not None
    assert service.store(session, retry, status_code=201, content_type=None, body=b"", ttl=TTL)


def test_dead_local_owner_is_taken_over_before_its_lease_expires(
    session: Session, server_clock: ChinaClock
) -> None:
    host = owner_id().split("/")[0]
    _claim(session, "k", owner=f"{host}/999999/0")
    retry = _claim(session, "k")
    assert retry.outcome is service.Outcome.execute
    # A live owner of this host (this very process) is not taken over.
    _claim(session, "live", owner=owner_id())
    assert _claim(session, "live").outcome is service.Outcome.in_progress
    assert os.getpid() != 999999


def test_same_key_different_request_conflicts(session: Session) -> None:
    _claim(session, "k")
    assert _claim(session, "k", body=b'{"x": 2}').outcome is service.Outcome.conflict


def test_scope_and_request_hash_are_keyed(session: Session) -> None:
    import hashlib

    header = "Bearer fo_secret_token"
    scope = service.key_scope(header, pepper=PEPPER)
    assert scope != hashlib.sha256(header.encode()).hexdigest()
    assert scope != service.key_scope(header, pepper="another-pepper-000000")
    assert len(scope) == 64


def test_redact_body_removes_secrets_and_masks_personal_data() -> None:
    body = json.dumps(
        {
            "user": {"id": 3, "name": "Crew Lead", "role": "crew"},
            "token": "fo_abcdefghijklmnopqrstuvwxyz0123456789",
            "secret": "whsec_0123456789",
            "customer_name": "张三丰",
            "customer_phone": "13812345678",
            "customer_id_number": "110101199003071234",
            "customer": {"name": "李四", "phone": "13900001111"},
            "links": [{"url": "https://x.example/t/AbCdEfGhIjKlMnOpQrStUvWx", "path": "/t/Ab"}],
            "stage": "accepted",
        },
        ensure_ascii=False,
    ).encode()
    kept, redacted = service.redact_body("application/json", body)
    text = kept.decode()
    for secret in (
        "fo_abcdefghij",
        "whsec_",
        "张三丰",
        "13812345678",
        "110101199003071234",
        "李四",
        "13900001111",
        "AbCdEfGh",
    ):
        assert secret not in text, secret
    data = json.loads(kept)
    assert data["token"] is None and data["secret"] is None
    assert data["customer_phone"] == "*******5678"
    assert data["customer_id_number"] == "11**************34"
    assert data["customer"]["name"] == "李*"
    assert data["user"] == {"id": 3, "name": "Crew Lead", "role": "crew"}
    assert data["links"][0]["url"] == "https://x.example/t/[redacted]"
    assert data["stage"] == "accepted"
    assert redacted == [
        "customer_id_number",
        "customer_name",
        "customer_phone",
        "name",
        "path",
        "phone",
        "secret",
        "token",
        "url",
    ]


def test_redact_body_keeps_clean_json_byte_for_byte_and_drops_other_bodies() -> None:
    clean = b'{"id": 1, "stage": "accepted"}'
    assert service.redact_body("application/json", clean) == (clean, [])
    assert service.redact_body("text/html; charset=utf-8", b"<p>13812345678</p>") == (
        b"",
        ["body"],
    )
    assert service.redact_body("application/json", b"{not json") == (b"", ["body"])
    assert service.redact_body(None, b"") == (b"", [])
