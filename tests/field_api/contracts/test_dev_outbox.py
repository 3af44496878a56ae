"""The development SMS outbox: every message kept whole (phone masked) at GET /dev/sms, outside
production only; the log line stays redacted."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from field_api.common.notifier import DEV_OUTBOX, LoggingNotifier, SmsOutbox
from field_api.config import Settings
from field_api.main import create_app
from tests.builders import auth
from tests.field_api.contracts.conftest import CrewAtScheme
from tests.field_api.contracts.helpers import signature_png


@pytest.fixture(autouse=True)
def _empty_outbox() -> Iterator[None]:
    DEV_OUTBOX.clear()
    yield
    DEV_OUTBOX.clear()


def test_the_signing_code_is_read_from_the_outbox_and_signs(
    client: TestClient,
    session: Session,
    at_scheme: CrewAtScheme,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session.commit()
    order_id, headers = at_scheme.order.id, auth(at_scheme.token)
    assert client.post(f"/work-orders/{order_id}/contract", headers=headers).status_code == 201
    with caplog.at_level(logging.INFO, logger="field_api.common.notifier"):
        r = client.post(f"/work-orders/{order_id}/contract/otp", headers=headers)
    assert r.status_code == 201, r.text

    outbox = client.get("/dev/sms", headers=headers)
    assert outbox.status_code == 200, outbox.text
    newest = outbox.json()[0]
    assert newest["phone"] == "*******8000"
    found = re.search(r"验证码：(\d{6})", newest["text"])
    assert found is not None, newest["text"]
    code = found.group(1)
    assert code not in caplog.text  # the log line keeps the code redacted
    assert "*******8000" in caplog.text

    signed = client.post(
        f"/work-orders/{order_id}/contract/signature",
        headers=headers,
        files={"signature": ("sig.png", signature_png(), "image/png")},
        data={"code": code, "device_time": "2026-11-27T10:04:58+08:00"},
    )
    assert signed.status_code == 200, signed.text


def test_the_outbox_needs_a_signed_in_user(client: TestClient) -> None:
    assert client.get("/dev/sms").status_code == 401


def test_newest_first_and_bounded() -> None:
    outbox = SmsOutbox(capacity=3)
    outbox.enable(True)
    for n in range(5):
        outbox.keep("13812345678", f"message {n}")
    assert [m.text for m in outbox.messages()] == ["message 4", "message 3", "message 2"]
    assert {m.phone for m in outbox.messages()} == {"*******5678"}


def test_a_disabled_outbox_keeps_nothing_and_forgets() -> None:
    outbox = SmsOutbox()
    outbox.enable(True)
    outbox.keep("13812345678", "验证码：123456")
    outbox.enable(False)
    assert outbox.messages() == []
    outbox.keep("13812345678", "验证码：654321")
    assert outbox.messages() == []


def test_production_has_no_outbox_route_and_keeps_nothing(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], session: Session
) -> None:
    from tests.builders import make_user

    production = Settings(
        env="production",
        database_url=db_url,
        media_dir=tmp_path / "media",
        token_pepper="test-pepper-0123456789",
        public_base_url="https://connect.example.com",
        signing_key_path=tmp_path / "keys" / "signing.key",
        audit_checkpoint_dir=tmp_path / "audit-checkpoints",
    )
    app: FastAPI = create_app(production, session_factory=session_factory)
    _, token = make_user(session, production)
    session.commit()
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/dev/sms", headers=auth(token))
        assert r.status_code == 404
        assert "/dev/sms" not in client.get("/openapi.json").json()["paths"]
    LoggingNotifier().send_sms("13812345678", "验证码：123456")
    assert DEV_OUTBOX.messages() == []
