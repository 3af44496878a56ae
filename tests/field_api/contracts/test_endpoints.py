"""Contracts through HTTP: generate, read the draft, send the code, sign, download, verify."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy.orm import Session

from field_api.contracts import pdf
from field_api.contracts.signing import load_public_key, verify_signed_pdf
from tests.builders import auth
from tests.field_api.contracts.conftest import CrewAtScheme, RecordingNotifier
from tests.field_api.contracts.helpers import signature_png


def _ready(client: TestClient, session: Session, ctx: CrewAtScheme) -> None:
    session.commit()
    r = client.post(f"/work-orders/{ctx.order.id}/contract", headers=auth(ctx.token))
    assert r.status_code == 201, r.text
    r = client.post(f"/work-orders/{ctx.order.id}/contract/otp", headers=auth(ctx.token))
    assert r.status_code == 201, r.text
    assert r.json()["sent_to"] == "*******8000"
    assert "code" not in r.json()


def _sign(client: TestClient, ctx: CrewAtScheme, code: str) -> tuple[int, dict[str, object]]:
    r = client.post(
        f"/work-orders/{ctx.order.id}/contract/signature",
        headers=auth(ctx.token),
        files={"signature": ("sig.png", signature_png(), "image/png")},
        data={
            "code": code,
            "device_time": "2026-11-27T10:04:58+08:00",
            "lat": "22.5333",
            "lon": "113.9305",
        },
    )
    return r.status_code, r.json()


@pytest.mark.both_stores
def test_full_signing_flow_and_public_verification(
    client: TestClient, session: Session, at_scheme: CrewAtScheme, notifier: RecordingNotifier
) -> None:
    _ready(client, session, at_scheme)
    draft = client.get(
        f"/work-orders/{at_scheme.order.id}/contract/pdf", headers=auth(at_scheme.token)
    )
    assert draft.status_code == 200
    assert draft.headers["content-type"] == "application/pdf"
    assert "张三丰" in PdfReader(io.BytesIO(draft.content)).pages[0].extract_text()

    status, body = _sign(client, at_scheme, notifier.last_code())
    assert status == 200, body
    assert body["status"] == "signed"
    assert body["customer"] == {
        "name": "张**",
        "phone": "*******8000",
        "id_number": "44**************34",
    }

    order = client.get(f"/work-orders/{at_scheme.order.id}", headers=auth(at_scheme.token)).json()
    assert order["stage"] == "contract_signed"

    signed = client.get(
        f"/work-orders/{at_scheme.order.id}/contract/pdf", headers=auth(at_scheme.token)
    )
    assert signed.status_code == 200
    assert signed.headers["etag"] == f'"{body["file_sha256"]}"'

    # Anyone verifies: no token, only the file.
    verdict = client.post(
        "/contracts/verify", files={"file": ("c.pdf", signed.content, "application/pdf")}
    )
    assert verdict.status_code == 200
    assert verdict.json()["valid"] is True
    assert verdict.json()["record"]["order_id"] == str(at_scheme.order.id)
    # the verdict for people: zh-CN by default, English on request; detail stays English
    assert verdict.json()["code"] == "contract_check.valid"
    assert verdict.json()["message"].startswith(f"有效：工单 {at_scheme.order.id} 的合同由 ")
    assert "（北京时间）" in verdict.json()["message"]
    assert verdict.json()["detail"].startswith("valid: contract for order")
    in_english = client.post(
        "/contracts/verify", files={"file": ("c.pdf", signed.content, "application/pdf")},
        headers={"Accept-Language": "en"},
    ).json()
    assert in_english["message"].startswith(f"valid: contract for order {at_scheme.order.id} ")
    assert "China time" in in_english["message"]

    tampered = bytearray(signed.content)
    tampered[len(tampered) // 2] ^= 0x01
    verdict = client.post(
        "/contracts/verify", files={"file": ("c.pdf", bytes(tampered), "application/pdf")}
    )
    assert verdict.status_code == 200
    assert verdict.json()["valid"] is False
    assert verdict.json()["code"] == "contract_check.document_changed"
    assert verdict.json()["message"] == "合同文档在签署后被修改"
    assert verdict.json()["detail"] == "the contract document was changed after signing"

    # The published public key verifies the file offline too.
    pem = client.get("/contracts/public-key")
    assert pem.status_code == 200
    assert verify_signed_pdf(signed.content, load_public_key(pem.content)).valid


def test_wrong_code_is_422_and_the_attempt_is_kept(
    client: TestClient, session: Session, at_scheme: CrewAtScheme, notifier: RecordingNotifier
) -> None:
    _ready(client, session, at_scheme)
    code = notifier.last_code()
    wrong = "000000" if code != "000000" else "111111"
    status, body = _sign(client, at_scheme, wrong)
    assert status == 422
    assert body["error"] == "ValidationFailed"
    assert body["attempts_left"] == 4
    status, body = _sign(client, at_scheme, wrong)
    assert body["attempts_left"] == 3  # the first attempt was committed, not rolled back
    status, body = _sign(client, at_scheme, code)
    assert status == 200, body


def test_verify_rejects_garbage_without_a_500(client: TestClient) -> None:
    r = client.post(
        "/contracts/verify", files={"file": ("x.pdf", b"%PDF-1.4 nothing", "application/pdf")}
    )
    assert r.status_code == 200
    assert r.json()["valid"] is False
    assert "no fieldops signing record" in r.json()["detail"]


def test_verify_says_why_in_the_request_language(client: TestClient) -> None:
    garbage = {"file": ("x.pdf", b"%PDF-1.4 nothing", "application/pdf")}
    zh = client.post("/contracts/verify", files=garbage).json()  # no language: zh-CN
    assert zh["code"] == "contract_check.no_record" and zh["params"] == {}
    assert zh["message"] == "文件中没有 fieldops 签署记录"
    en = client.post("/contracts/verify", files=garbage, headers={"Accept-Language": "en-US"})
    assert en.json()["message"] == "the file carries no fieldops signing record"
    client.cookies.set("fo_lang", "en")  # the page's switch wins over the browser's header
    try:
        by_cookie = client.post(
            "/contracts/verify", files=garbage, headers={"Accept-Language": "zh-CN"}
        ).json()
    finally:
        client.cookies.clear()
    assert by_cookie["message"] == "the file carries no fieldops signing record"


def test_verify_without_a_file_is_422(client: TestClient) -> None:
    r = client.post("/contracts/verify")
    assert r.status_code == 422
    assert r.json()["error"] == "ValidationFailed"


def test_contract_of_an_order_without_one_is_404(
    client: TestClient, session: Session, at_scheme: CrewAtScheme
) -> None:
    session.commit()
    r = client.get(f"/work-orders/{at_scheme.order.id}/contract", headers=auth(at_scheme.token))
    assert r.status_code == 404
    assert r.json()["error"] == "NotFound"


def test_signing_needs_a_token(
    client: TestClient, session: Session, at_scheme: CrewAtScheme
) -> None:
    session.commit()
    r = client.post(f"/work-orders/{at_scheme.order.id}/contract")
    assert r.status_code == 401


def test_without_a_cjk_font_the_contract_is_generated_signed_and_verifies(
    notifier: RecordingNotifier,
    client: TestClient,
    session: Session,
    at_scheme: CrewAtScheme,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # A fresh machine without fonts-wqy-zenhei: no 503, the STSong-Light fallback (named).
    monkeypatch.setattr(pdf, "KNOWN_FONT_PATHS", (tmp_path / "nowhere.ttc",))
    _ready(client, session, at_scheme)
    draft = client.get(
        f"/work-orders/{at_scheme.order.id}/contract/pdf", headers=auth(at_scheme.token)
    )
    assert draft.status_code == 200, draft.text
    reader = PdfReader(io.BytesIO(draft.content))
    assert "张三丰" in reader.pages[0].extract_text()
    assert reader.metadata is not None
    assert reader.metadata["/Keywords"] == pdf.FALLBACK_KEYWORD

    status, body = _sign(client, at_scheme, notifier.last_code())
    assert status == 200, body
    signed = client.get(
        f"/work-orders/{at_scheme.order.id}/contract/pdf", headers=auth(at_scheme.token)
    )
    assert PdfReader(io.BytesIO(signed.content)).metadata["/Keywords"] == pdf.FALLBACK_KEYWORD
    verdict = client.post(
        "/contracts/verify", files={"file": ("c.pdf", signed.content, "application/pdf")}
    )
    assert verdict.status_code == 200
    assert verdict.json()["valid"] is True
    pem = client.get("/contracts/public-key")
    assert verify_signed_pdf(signed.content, load_public_key(pem.content)).valid
