"""Barcode decoding from phone-like photos, and State Grid meter asset codes."""

from __future__ import annotations

import pytest
from PIL import Image

from field_api.errors import ValidationFailed
from field_api.media.barcode import (
    CheckDigitRegistry,
    check_digit_rules,
    decode_barcodes,
    parse_meter_code,
)

from .imaging import METER_CODE, code128_image, phone_photo, qr_image


@pytest.fixture(scope="module")
def code128() -> Image.Image:
    return code128_image()


@pytest.mark.parametrize("angle", [0, 8, 30, 45, 60, 100, -25])
def test_degraded_code128_photo_decodes_at_any_angle(code128: Image.Image, angle: int) -> None:
    photo = phone_photo(code128, angle_deg=angle)
    found = decode_barcodes(photo)
    assert [(b.text, b.symbology) for b in found] == [(METER_CODE, "code128")]


def test_rotated_copies_are_what_rescues_a_30_degree_code128(code128: Image.Image) -> None:
    photo = phone_photo(code128, angle_deg=30)
    assert decode_barcodes(photo, rotations_deg=(0.0,)) == []
    found = decode_barcodes(photo)
    assert found and found[0].rotation_deg != 0


def test_contrast_stretch_rescues_a_dim_photo(code128: Image.Image) -> None:
    photo = phone_photo(code128, angle_deg=30, contrast=0.12, noise=2)
    found = decode_barcodes(photo)
    assert found and found[0].text == METER_CODE
    assert found[0].variant == "stretched"


@pytest.mark.parametrize("angle", [0, 37, 135])
def test_degraded_qr_photo_decodes(angle: int) -> None:
    photo = phone_photo(qr_image(), angle_deg=angle)
    found = decode_barcodes(photo)
    assert [(b.text, b.symbology) for b in found] == [(METER_CODE, "qr")]


def test_large_photo_is_downscaled_and_still_decodes(code128: Image.Image) -> None:
    big = code128.resize((code128.width * 3, code128.height * 3), Image.Resampling.NEAREST)
    photo = phone_photo(big, angle_deg=20, size=(3200, 2400), blur_px=2.5)
    assert [b.text for b in decode_barcodes(photo)] == [METER_CODE]


def test_photo_without_a_barcode_decodes_to_nothing() -> None:
    assert decode_barcodes(Image.new("RGB", (640, 480), (120, 130, 140))) == []


# -- State Grid meter asset codes ------------------------------------------------------------


def test_meter_code_fields_are_parsed() -> None:
    code = parse_meter_code(METER_CODE)
    assert code.unit_code == "32401"
    assert code.asset_type == "01"
    assert code.serial == "23456789012345"
    assert code.check_digit == "6"
    assert code.value == METER_CODE


def test_meter_code_spaces_and_hyphens_are_ignored() -> None:
    assert parse_meter_code("32401-01 2345678901234 5 6").value == METER_CODE


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("324010123456789012345", "22 digits"),
        ("32401012345678901234567", "22 digits"),
        ("32401012345678901234A6", "digits only"),
        ("３２４０１０１２３４５６７８９０１２３４５６", "digits only"),  # full-width digits
    ],
)
def test_meter_code_rejects_bad_length_or_characters(text: str, why: str) -> None:
    with pytest.raises(ValidationFailed, match=why):
        parse_meter_code(text)


def test_check_digit_is_off_by_default() -> None:
    # last digit deliberately wrong for every registered rule
    for wrong in "0123456789":
        candidate = METER_CODE[:-1] + wrong
        assert parse_meter_code(candidate).check_digit == wrong


def test_luhn_rule_when_configured() -> None:
    body = METER_CODE[:-1]
    good = next(body + d for d in "0123456789" if check_digit_rules.get("luhn")(body + d))
    assert parse_meter_code(good, check_digit_rule="luhn").value == good
    bad = body + str((int(good[-1]) + 1) % 10)
    with pytest.raises(ValidationFailed, match="luhn"):
        parse_meter_code(bad, check_digit_rule="luhn")


def test_gs1_rule_matches_a_known_ean13() -> None:
    # 4006381333931 is a published valid EAN-13; the GS1 mod-10 rule is the same at any length
    assert check_digit_rules.get("gs1_mod10")("4006381333931")
    assert not check_digit_rules.get("gs1_mod10")("4006381333932")


def test_a_deployment_can_register_its_own_rule() -> None:
    registry = CheckDigitRegistry()
    registry.register("last_is_seven", lambda code: code.endswith("7"))
    with pytest.raises(ValidationFailed):
        parse_meter_code(METER_CODE, check_digit_rule="last_is_seven", registry=registry)
    ok = METER_CODE[:-1] + "7"
    assert parse_meter_code(ok, check_digit_rule="last_is_seven", registry=registry).value == ok


def test_unknown_rule_name_is_a_configuration_error() -> None:
    with pytest.raises(KeyError, match="unknown check-digit rule"):
        parse_meter_code(METER_CODE, check_digit_rule="nope")
