"""The contract PDF: Chinese text, embedded font (else the named CID fallback), deterministic
bytes."""

from __future__ import annotations

import io
import logging
from datetime import datetime
from pathlib import Path

import pytest
from pypdf import PdfReader

from field_api.contracts import pdf
from field_api.contracts.pdf import (
    CjkFontMissingError,
    SignatureMark,
    find_cjk_font,
    render_contract_pdf,
    warn_if_font_fallback,
)

from .helpers import CHINA, make_contract_data, signature_png


def _text(document: bytes) -> str:
    reader = PdfReader(io.BytesIO(document))
    return "".join(page.extract_text() for page in reader.pages)


@pytest.fixture(scope="module")
def rendered() -> bytes:
    return render_contract_pdf(make_contract_data())


def test_chinese_text_is_extractable(rendered: bytes) -> None:
    text = _text(rendered)
    for expected in (
        "低压居民供用电合同",
        "张三丰",
        "示例市城南区幸福路8号",
        "居民生活用电",
        "8 kW",
        "220 V / 单相",
        "城南3号配变 0.4kV 出线 #12 杆",
        "BV Cu 2×16 mm²",
        "2P 63 A",
        "单相智能电能表 5(60)A（直接接入式）",
        "R1",
        "35 m",
        "HT-2026-000123",
    ):
        assert expected in text, expected


def test_non_residential_three_phase_labels() -> None:
    data = make_contract_data(
        category="small_micro_enterprise", phases=3, capacity_kw="50", metering="ct", kit_code="B2"
    )
    text = _text(render_contract_pdf(data))
    assert "低压非居民供用电合同" in text
    assert "380 V / 三相" in text
    assert "经电流互感器接入" in text


def test_cjk_font_is_embedded_as_truetype_subset(rendered: bytes) -> None:
    reader = PdfReader(io.BytesIO(rendered))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    cjk = [f.get_object() for f in fonts.values() if "WenQuanYi" in f.get_object()["/BaseFont"]]
    assert cjk, "the CJK font is not used on the page"
    descriptor = cjk[0]["/FontDescriptor"].get_object()
    assert "/FontFile2" in descriptor  # the TrueType program itself travels with the file


def test_same_inputs_give_same_bytes(rendered: bytes) -> None:
    assert render_contract_pdf(make_contract_data()) == rendered


def test_different_inputs_give_different_bytes(rendered: bytes) -> None:
    assert render_contract_pdf(make_contract_data(address="示例市城北区8号")) != rendered


def test_metadata_comes_from_the_record(rendered: bytes) -> None:
    info = PdfReader(io.BytesIO(rendered)).metadata
    assert info is not None
    assert info["/CreationDate"] == "D:20261127100000+08'00'"
    assert info["/Title"] == "低压居民供用电合同"
    assert "HT-2026-000123" in info["/Subject"]


def test_markup_in_customer_values_is_printed_literally() -> None:
    text = _text(render_contract_pdf(make_contract_data(customer_name="李<b>四&", terms=("<i>x",))))
    assert "李<b>四&" in text
    assert "<i>x" in text


def test_signature_mark_is_printed_and_deterministic() -> None:
    mark = SignatureMark(
        image=signature_png(), signed_at=datetime(2026, 11, 27, 10, 5, tzinfo=CHINA)
    )
    first = render_contract_pdf(make_contract_data(), signature=mark)
    assert render_contract_pdf(make_contract_data(), signature=mark) == first
    assert "已电子签署" in _text(first)
    assert "/Subtype /Image" in first.decode("latin-1")


def test_unreadable_signature_image_is_a_value_error() -> None:
    mark = SignatureMark(image=b"not an image", signed_at=datetime(2026, 11, 27, tzinfo=CHINA))
    with pytest.raises(ValueError, match="signature image cannot be read"):
        render_contract_pdf(make_contract_data(), signature=mark)


def test_naive_generation_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        make_contract_data(generated_at=datetime(2026, 11, 27, 10, 0))


def test_missing_configured_font_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(CjkFontMissingError, match="fonts-wqy-zenhei"):
        find_cjk_font(tmp_path / "absent.ttc")


def test_no_system_font_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pdf, "KNOWN_FONT_PATHS", (tmp_path / "nowhere.ttc",))
    with pytest.raises(CjkFontMissingError, match="apt-get install fonts-wqy-zenhei"):
        find_cjk_font(None)


def test_a_file_that_is_not_a_font_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "fake.ttf"
    fake.write_bytes(b"not a font at all")
    with pytest.raises(CjkFontMissingError, match="not a usable TrueType font"):
        render_contract_pdf(make_contract_data(), font_path=fake)


# ------------------------------------------------------------- without a CJK TrueType font


@pytest.fixture
def no_system_font(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pdf, "KNOWN_FONT_PATHS", (tmp_path / "nowhere.ttc",))


@pytest.mark.usefixtures("no_system_font")
def test_without_a_truetype_font_the_contract_uses_the_cid_fallback() -> None:
    document = render_contract_pdf(make_contract_data())
    reader = PdfReader(io.BytesIO(document))
    text = _text(document)
    for expected in ("低压居民供用电合同", "张三丰", "示例市城南区幸福路8号", "HT-2026-000123"):
        assert expected in text, expected
    info = reader.metadata
    assert info is not None
    assert info["/Keywords"] == "font: STSong-Light (not embedded)"
    fonts = [f.get_object() for f in reader.pages[0]["/Resources"]["/Font"].values()]
    assert any("STSong-Light" in f["/BaseFont"] for f in fonts)
    for font in fonts:  # nothing embedded: the reader's own CJK font draws the text
        for descendant in font.get("/DescendantFonts", []):
            descriptor = descendant.get_object()["/FontDescriptor"].get_object()
            assert not {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor)


@pytest.mark.usefixtures("no_system_font")
def test_the_fallback_is_deterministic_too() -> None:
    assert render_contract_pdf(make_contract_data()) == render_contract_pdf(make_contract_data())


def test_the_embedded_font_adds_no_fallback_keyword(rendered: bytes) -> None:
    info = PdfReader(io.BytesIO(rendered)).metadata
    assert info is not None
    assert "STSong" not in str(info.get("/Keywords", ""))


@pytest.mark.usefixtures("no_system_font")
def test_start_up_warns_once_about_the_fallback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="field_api.contracts.pdf"):
        assert warn_if_font_fallback(None) is True
    assert len(caplog.records) == 1
    assert "STSong-Light" in caplog.text and "fonts-wqy-zenhei" in caplog.text


def test_start_up_is_quiet_with_the_font(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="field_api.contracts.pdf"):
        assert warn_if_font_fallback(None) is False
    assert caplog.records == []


def test_a_configured_font_that_is_missing_is_not_replaced_by_the_fallback(
    tmp_path: Path,
) -> None:
    with pytest.raises(CjkFontMissingError, match="fonts-wqy-zenhei"):
        render_contract_pdf(make_contract_data(), font_path=tmp_path / "absent.ttc")
