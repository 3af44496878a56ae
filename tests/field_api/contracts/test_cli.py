"""`fieldops contracts verify FILE [--public-key PATH]`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from field_api.cli.contracts import app
from field_api.contracts.pdf import render_contract_pdf
from field_api.contracts.signing import build_record, public_key_pem, sign_pdf

from .helpers import CHINA, make_contract_data

runner = CliRunner()
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("cli")
    document = render_contract_pdf(make_contract_data())
    when = datetime(2026, 11, 27, 10, 5, tzinfo=CHINA)
    record = build_record(
        order_id="WO-1",
        contract_no="HT-1",
        document=document,
        signature_image_sha256="0" * 64,
        otp_challenge_id="c",
        otp_proof="p",
        otp_verified_at=when,
        server_time=when,
        device_time=None,
        latitude=None,
        longitude=None,
        gps_accuracy_m=None,
        signer="张**",
    )
    signed = folder / "contract.pdf"
    signed.write_bytes(sign_pdf(document, record, KEY))
    public = folder / "server.pub"
    public.write_bytes(public_key_pem(KEY.public_key()))
    other = folder / "other.pub"
    other.write_bytes(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    return signed, public, other


def test_valid_file_exits_0(files: tuple[Path, Path, Path]) -> None:
    signed, public, _ = files
    result = runner.invoke(app, ["verify", str(signed), "--public-key", str(public)])
    assert result.exit_code == 0, result.output
    assert "VALID" in result.output
    assert "WO-1" in result.output


def test_tampered_file_exits_1(files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    signed, public, _ = files
    data = bytearray(signed.read_bytes())
    data[len(data) // 3] ^= 0x01
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(bytes(data))
    result = runner.invoke(app, ["verify", str(tampered), "--public-key", str(public)])
    assert result.exit_code == 1
    assert "INVALID" in result.output


def test_wrong_key_exits_1(files: tuple[Path, Path, Path]) -> None:
    signed, _, other = files
    result = runner.invoke(
        app, ["verify", str(signed), "--public-key", str(other), "--lang", "en"]
    )
    assert result.exit_code == 1
    assert "not with the given public key" in result.output


def test_missing_file_exits_1_with_a_message(
    files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, public, _ = files
    result = runner.invoke(app, ["verify", str(tmp_path / "nope.pdf"), "--public-key", str(public)])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_unreadable_key_exits_1(files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    signed, _, _ = files
    bad = tmp_path / "bad.pub"
    bad.write_text("hello")
    result = runner.invoke(app, ["verify", str(signed), "--public-key", str(bad)])
    assert result.exit_code == 1
    assert "not a PEM key" in result.output


def test_the_verdict_is_in_the_chosen_language(
    files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    signed, public, _ = files
    zh = runner.invoke(
        app, ["verify", str(signed), "--public-key", str(public), "--lang", "zh-CN"]
    )
    assert zh.exit_code == 0, zh.output
    assert "VALID" in zh.output and "有效：工单 WO-1 的合同由 张** 于" in zh.output
    en = runner.invoke(app, ["verify", str(signed), "--public-key", str(public), "--lang", "en"])
    assert "valid: contract for order WO-1 signed by 张** at" in en.output
    assert "China time" in en.output
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.4 nothing")
    by_env = runner.invoke(
        app, ["verify", str(garbage), "--public-key", str(public)],
        env={"LC_ALL": "", "LC_MESSAGES": "", "LANG": "en_GB.UTF-8"},
    )
    assert by_env.exit_code == 1
    assert "INVALID" in by_env.output and "the file carries no fieldops signing record" in (
        by_env.output
    )
    default = runner.invoke(
        app, ["verify", str(garbage), "--public-key", str(public)],
        env={"LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8"},
    )
    assert "文件中没有 fieldops 签署记录" in default.output
