"""Meter barcodes: decode Code 128 / QR from a crew's photo and parse State Grid asset codes.

zxing-cpp reads linear codes within about ±10° of horizontal or vertical (it tries the 90°
turn itself) and fails between roughly 15° and 75°, so :func:`decode_barcodes` also tries
copies rotated in 18° steps — every angle is then within 9° of one attempt — and a grey,
contrast-stretched copy for dim or washed-out photos.

The State Grid meter identification code (Q/GDW 1205-2013, DOMAIN.md) is 22 digits: 5-digit
unit code + 2-digit asset type + 14-digit serial + 1 check digit. The check-digit rule is not
confirmed, so validators live in a registry and none is applied unless configured by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import zxingcpp
from PIL import Image, ImageOps

from field_api.errors import ValidationFailed

METER_CODE_LENGTH = 22
DEFAULT_ROTATIONS_DEG: tuple[float, ...] = (0.0, 18.0, 36.0, 54.0, 72.0)
# Phone photos are 12+ MP; zxing is fast at this size and the bars stay several pixels wide.
DECODE_MAX_PX = 2000
_FORMATS = zxingcpp.BarcodeFormats([zxingcpp.BarcodeFormat.Code128, zxingcpp.BarcodeFormat.QRCode])


@dataclass(frozen=True)
class DecodedBarcode:
    """One barcode found in a photo, and which attempt found it."""

    text: str
    symbology: str  # "code128" or "qr"
    rotation_deg: float
    variant: str  # "grey" (downscaled grey copy) or "stretched" (contrast-stretched)


def decode_barcodes(
    image: Image.Image,
    *,
    rotations_deg: Iterable[float] = DEFAULT_ROTATIONS_DEG,
    max_px: int = DECODE_MAX_PX,
) -> list[DecodedBarcode]:
    """Decode every Code 128 and QR symbol in a photo, trying harder until one is found.

    Args:
        image: the photo, already turned upright by its EXIF orientation.
        rotations_deg: counter-clockwise turns to try (zxing adds the 90° turn itself).
        max_px: longest side of the working copy (larger photos are downscaled first).

    Returns:
        The distinct symbols found by the first attempt that finds any, in reading order;
        empty when nothing decodes.

    Example:
        >>> import segno, io
        >>> buf = io.BytesIO(); segno.make("12345").save(buf, kind="png", scale=8)
        >>> [b.text for b in decode_barcodes(Image.open(buf))]
        ['12345']
    """
    for variant, working in _variants(image, max_px=max_px):
        for angle in rotations_deg:
            turned = (
                working
                if angle % 360 == 0
                else working.rotate(
                    angle, expand=True, fillcolor=255, resample=Image.Resampling.BILINEAR
                )
            )
            found = _read(turned)
            if found:
                return [
                    DecodedBarcode(text=text, symbology=sym, rotation_deg=angle, variant=variant)
                    for text, sym in found
                ]
    return []


def _variants(image: Image.Image, *, max_px: int) -> Iterator[tuple[str, Image.Image]]:
    grey = image.convert("L")
    if max(grey.size) > max_px:
        grey = grey.copy()
        grey.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    yield "grey", grey
    # Clip 2 % at each end: glare and shadows otherwise keep the bars low in contrast.
    yield "stretched", ImageOps.autocontrast(grey, cutoff=2)


def _read(image: Image.Image) -> list[tuple[str, str]]:
    results: list[tuple[str, str]] = []
    for code in zxingcpp.read_barcodes(image, formats=_FORMATS):
        item = (str(code.text), _symbology(code.format))
        if code.text and item not in results:
            results.append(item)
    return results


def _symbology(fmt: zxingcpp.BarcodeFormat) -> str:
    if fmt == zxingcpp.BarcodeFormat.Code128:
        return "code128"
    # zxing reports Micro QR / rMQR under the QR family; the name keeps them apart
    return "qr" if fmt == zxingcpp.BarcodeFormat.QRCode else str(fmt).lower().replace(" ", "_")


# --------------------------------------------------------------------------------------------
# State Grid meter asset codes

CheckDigitValidator = Callable[[str], bool]
"""Takes all 22 digits, returns True when the last digit is the right check digit."""


def _luhn_ok(code: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(code)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _gs1_mod10_ok(code: str) -> bool:
    body, check = code[:-1], int(code[-1])
    total = sum(int(ch) * (3 if i % 2 == 0 else 1) for i, ch in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


class CheckDigitRegistry:
    """Named check-digit rules; settings pick one by name (or none: the default)."""

    def __init__(self) -> None:
        self._validators: dict[str, CheckDigitValidator] = {}

    def register(self, name: str, validator: CheckDigitValidator) -> None:
        """Add or replace the rule called ``name``."""
        self._validators[name] = validator

    def get(self, name: str) -> CheckDigitValidator:
        """The rule called ``name``; an unknown name is a configuration error."""
        try:
            return self._validators[name]
        except KeyError:
            known = ", ".join(sorted(self._validators)) or "none"
            raise KeyError(f"unknown check-digit rule {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        """Registered rule names, sorted."""
        return sorted(self._validators)


check_digit_rules = CheckDigitRegistry()
# Candidate rules only: which one (if any) Q/GDW 1205 uses is unconfirmed, so none is default.
check_digit_rules.register("luhn", _luhn_ok)
check_digit_rules.register("gs1_mod10", _gs1_mod10_ok)


@dataclass(frozen=True)
class MeterAssetCode:
    """A parsed 22-digit State Grid meter identification code."""

    unit_code: str
    asset_type: str
    serial: str
    check_digit: str

    @property
    def value(self) -> str:
        """The 22 digits as printed."""
        return self.unit_code + self.asset_type + self.serial + self.check_digit


def normalize_meter_code(text: str) -> str:
    """Drop spaces and hyphens a terminal or a label may add between digit groups."""
    return "".join(ch for ch in text.strip() if ch not in " -\t")


def parse_meter_code(
    text: str,
    *,
    check_digit_rule: str | None = None,
    registry: CheckDigitRegistry = check_digit_rules,
) -> MeterAssetCode:
    """Parse and validate a State Grid meter asset code.

    Args:
        text: the scanned or decoded value.
        check_digit_rule: a registry name to verify the check digit with; None skips it.
        registry: where rules are looked up (tests or deployments may add their own).

    Returns:
        The fields of the code.

    Raises:
        ValidationFailed: wrong length, non-digits, or a failed check digit.

    Example:
        >>> parse_meter_code("3240101234567890123456").serial
        '01234567890123'
    """
    code = normalize_meter_code(text)
    if len(code) != METER_CODE_LENGTH:
        raise ValidationFailed(
            f"a meter asset code has {METER_CODE_LENGTH} digits, got {len(code)} characters",
            code="meter.code_length",
            params={"length": METER_CODE_LENGTH, "got": len(code)},
        )
    if not (code.isascii() and code.isdigit()):
        raise ValidationFailed(
            "a meter asset code contains digits only",
            code="meter.code_not_digits",
        )
    if check_digit_rule is not None and not registry.get(check_digit_rule)(code):
        raise ValidationFailed(
            f"meter asset code fails the {check_digit_rule} check digit",
            code="meter.check_digit",
            params={"rule": str(check_digit_rule)},
        )
    return MeterAssetCode(
        unit_code=code[0:5], asset_type=code[5:7], serial=code[7:21], check_digit=code[21]
    )
