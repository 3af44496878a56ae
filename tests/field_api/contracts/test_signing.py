"""The server signature over the signing record, carried inside the PDF."""

from __future__ import annotations

import json
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from field_api.contracts import signing
from field_api.contracts.pdf import SignatureMark, render_contract_pdf
from field_api.contracts.signing import (
    SignedPdfError,
    SigningKeyError,
    build_record,
    canonical_json,
    load_public_key,
    load_signing_key,
    public_key_path_for,
    sign_pdf,
    verify_signed_pdf,
)

from .helpers import CHINA, make_contract_data, signature_png

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def _record(document: bytes) -> dict[str, Any]:
    return build_record(
        order_id="WO-2026-0042",
        contract_no="HT-2026-000123",
        document=document,
        signature_image_sha256=signing.sha256_hex(signature_png()),
        otp_challenge_id="otp-1",
        otp_proof="a" * 64,
        otp_verified_at=datetime(2026, 11, 27, 10, 4, 30, tzinfo=CHINA),
        server_time=datetime(2026, 11, 27, 10, 5, tzinfo=CHINA),
        device_time=datetime(2026, 11, 27, 10, 4, 58, tzinfo=CHINA),
        latitude=31.2304161,
        longitude=121.4737012,
        gps_accuracy_m=4.5,
        signer="张**",
    )


@pytest.fixture(scope="module")
def document() -> bytes:
    mark = SignatureMark(
        image=signature_png(), signed_at=datetime(2026, 11, 27, 10, 5, tzinfo=CHINA)
    )
    return render_contract_pdf(make_contract_data(), signature=mark)


@pytest.fixture(scope="module")
def signed(document: bytes) -> bytes:
    return sign_pdf(document, _record(document), KEY)


def test_canonical_json_sorts_keys_without_spaces_in_utf8() -> None:
    assert canonical_json({"b": 1, "a": {"d": None, "c": "张"}}) == (
        '{"a":{"c":"张","d":null},"b":1}'.encode()
    )


def test_record_holds_hashes_times_and_gps_as_fixed_strings(document: bytes) -> None:
    record = _record(document)
    assert record["document_sha256"] == signing.sha256_hex(document)
    assert record["document_length"] == len(document)
    assert record["server_time"] == "2026-11-27T02:05:00Z"
    assert record["device_time"] == "2026-11-27T02:04:58Z"
    assert record["gps"] == {"lat": "31.2304161", "lon": "121.4737012", "accuracy_m": "4.5"}
    assert record["signer"] == "张**"


def test_round_trip_verifies_and_returns_the_record(signed: bytes, document: bytes) -> None:
    result = verify_signed_pdf(signed, KEY.public_key())
    assert result.valid, result.detail
    assert result.record == _record(document)
    assert signed.startswith(document)  # an incremental update: the document is untouched


def test_signing_is_deterministic(document: bytes, signed: bytes) -> None:
    assert sign_pdf(document, _record(document), KEY) == signed


def test_signed_file_is_still_a_pdf_with_the_record_attached(signed: bytes) -> None:
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(signed))
    assert len(reader.pages) >= 1
    attached = reader.attachments[signing.ATTACHMENT_NAME][0]
    assert json.loads(attached)["record"]["order_id"] == "WO-2026-0042"


def test_every_changed_byte_fails(signed: bytes, document: bytes) -> None:
    # Every byte of the appended signature section, and a stride through the document.
    positions = [*range(0, len(document), 613), *range(len(document), len(signed))]
    undetected = []
    for position in positions:
        tampered = bytearray(signed)
        tampered[position] ^= 0x20
        if verify_signed_pdf(bytes(tampered), KEY.public_key()).valid:
            undetected.append(position)
    assert undetected == []


def test_changed_contract_reports_the_document(signed: bytes) -> None:
    tampered = signed.replace(b"/Lang (zh-CN)", b"/Lang (zh-TW)", 1)
    result = verify_signed_pdf(tampered, KEY.public_key())
    assert not result.valid
    assert "changed after signing" in result.detail


def test_appended_bytes_fail(signed: bytes) -> None:
    assert not verify_signed_pdf(signed + b"\n", KEY.public_key()).valid


def test_wrong_key_fails(signed: bytes) -> None:
    result = verify_signed_pdf(signed, OTHER_KEY.public_key())
    assert not result.valid
    assert "not with the given public key" in result.detail


def test_forged_record_with_the_right_key_id_fails(signed: bytes, document: bytes) -> None:
    # An attacker re-signs a modified record with their own key but keeps our key id.
    envelope = signing.sign_record(_record(document) | {"signer": "王**"}, OTHER_KEY)
    envelope["key_id"] = signing.key_id(KEY.public_key())
    forged = signing.attach_envelope(document, envelope)
    result = verify_signed_pdf(forged, KEY.public_key())
    assert not result.valid
    assert "does not match" in result.detail


def test_unsigned_pdf_fails(document: bytes) -> None:
    result = verify_signed_pdf(document, KEY.public_key())
    assert not result.valid
    assert "no fieldops signing record" in result.detail


@pytest.mark.parametrize("data", [b"", b"%PDF-1.4\n", b"\x00" * 100])
def test_garbage_fails_without_raising(data: bytes) -> None:
    assert not verify_signed_pdf(data, KEY.public_key()).valid


def test_record_must_describe_the_document(document: bytes) -> None:
    with pytest.raises(SignedPdfError, match="does not describe"):
        sign_pdf(document, _record(document + b"x"), KEY)


def test_key_is_generated_once_with_mode_0600_and_public_key_published(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "contract.key"
    first = load_signing_key(path, create_if_missing=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_signing_key(path, create_if_missing=True)
    assert signing.key_id(first.public_key()) == signing.key_id(second.public_key())
    published = load_public_key(public_key_path_for(path).read_bytes())
    assert signing.key_id(published) == signing.key_id(first.public_key())


def test_missing_key_without_creation_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="does not exist"):
        load_signing_key(tmp_path / "absent.key", create_if_missing=False)


def test_a_key_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SigningKeyError, match="cannot be loaded"):
        load_signing_key(path, create_if_missing=False)
