"""Meter barcodes: decode Code 128 / QR from a crew's photo and parse State Grid asset codes.

zxing-cpp reads linear codes within about ±10° of horizontal or vertical (it tries the 90°
turn itself) and fails between roughly 15° and 75°, so :func:`decode_barcodes` also tries
copies rotated in 18° steps — every angle is then within 9° of one attempt — and a grey,
contrast-stretched copy for dim or washed-out photos.

The State Grid meter identification code (22 digits, check digit unconfirmed) is parsed by
:mod:`field_api.meters`, the one meter-code rule of the service; its names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import zxingcpp
from PIL import Image, ImageOps

# One meter-code rule for the whole service lives in field_api.meters; re-exported here.
from field_api.meters import (
    METER_CODE_LENGTH,
    CheckDigitRegistry,
    CheckDigitValidator,
    MeterAssetCode,
    check_digit_rules,
    normalize_meter_code,
    parse_meter_code,
)

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
# State Grid meter asset codes: one rule for the whole service, in field_api.meters

__all__ = [
    "DEFAULT_ROTATIONS_DEG",
    "METER_CODE_LENGTH",
    "CheckDigitRegistry",
    "CheckDigitValidator",
    "DecodedBarcode",
    "MeterAssetCode",
    "check_digit_rules",
    "decode_barcodes",
    "normalize_meter_code",
    "parse_meter_code",
]
