"""The development SMS outbox: the messages the log gateway sent, read from the SMS outbox table
whole (phone masked) at GET /dev/sms, outside production only; the log line stays redacted."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from field_api.config import Settings
from field_api.main import create_app
from tests.builders import auth
from tests.field_api.contracts.conftest import CrewAtScheme
from tests.field_api.contracts.helpers import signature_png
from tests.sms_support import deliver, production_sms


def test_the_signing_code_is_read_from_the_outbox_and_signs(
    app: FastAPI,
    client: TestClient,
    session: Session,
    at_scheme: CrewAtScheme,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session.commit()
    order_id, headers = at_scheme.order.id, auth(at_scheme.token)
    assert client.post(f"/work-orders/{order_id}/contract", headers=headers).status_code == 201
    r = client.post(f"/work-orders/{order_id}/contract/otp", headers=headers)
    assert r.status_code == 201, r.text
    assert client.get("/dev/sms", headers=headers).json() == []  # queued, not sent yet
    with caplog.at_level(logging.INFO, logger="field_api.sms.gateways"):
        # the job worker sends it through the default (log) gateway
        assert deliver(app.state.session_factory, app.state.settings) >= 1

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


def test_production_has_no_outbox_route(
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
        sms=production_sms(tmp_path),
    )
    app: FastAPI = create_app(production, session_factory=session_factory)
    _, token = make_user(session, production)
    session.commit()
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/dev/sms", headers=auth(token))
        assert r.status_code == 404
        assert "/dev/sms" not in client.get("/openapi.json").json()["paths"]
