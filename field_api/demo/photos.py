"""Generated evidence for the demo: small JPEGs with EXIF time and GPS, meter labels, signatures.

Every image is a pure function of its seed text, so two loads make the same bytes. The photos
are noise textures (distinct perceptual hashes: no false "photo reused" flags); the meter label
is a Code 128 symbol drawn from reportlab's encoder (a runtime dependency), which the media
slice's decoder reads back.
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime

import numpy as np
from PIL import Image, ImageDraw
from reportlab.graphics.barcode.code128 import Code128

from field_api.common.clock import to_china

PHOTO_SIZE = (160, 120)


def _rng(seed: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))


def _dms(value: float) -> tuple[float, float, float]:
    d = int(value)
    m = int((value - d) * 60)
    s = round((value - d - m / 60) * 3600, 4)
    return (float(d), float(m), s)


def _exif(taken: datetime | None, gps: tuple[float, float] | None) -> bytes:
    """EXIF as a phone writes it: local (China) time with its offset, and the position."""
    exif = Image.Exif()
    if taken is not None:
        local = to_china(taken)
        ifd = exif.get_ifd(0x8769)
        ifd[0x9003] = local.strftime("%Y:%m:%d %H:%M:%S")
        ifd[0x9011] = "+08:00"
    if gps is not None:
        lat, lon = gps
        g = exif.get_ifd(0x8825)
        g[1], g[2] = ("N" if lat >= 0 else "S"), _dms(abs(lat))
        g[3], g[4] = ("E" if lon >= 0 else "W"), _dms(abs(lon))
    return exif.tobytes()


def _jpeg(image: Image.Image, exif: bytes) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


def site_photo(
    seed: str, *, taken: datetime | None, gps: tuple[float, float] | None
) -> bytes:
    """A distinct small photo (coarse colour blocks, smoothed) with EXIF time and GPS."""
    rng = _rng(seed)
    blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(blocks, "RGB").resize(PHOTO_SIZE, Image.Resampling.BICUBIC)
    return _jpeg(image, _exif(taken, gps))


def barcode_photo(
    value: str, *, taken: datetime | None, gps: tuple[float, float] | None
) -> bytes:
    """A meter label: the Code 128 symbol of ``value`` on white, as a JPEG with EXIF."""
    symbol = Code128(value)
    symbol.validate()
    symbol.encode()
    symbol.decompose()
    module, quiet, height = 2, 20, 60
    widths = [ord(ch.upper()) - ord("A") + 1 for ch in symbol.decomposed]
    total = sum(widths) * module + 2 * quiet
    image = Image.new("RGB", (total, height + 2 * quiet), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    x = quiet
    for ch, w in zip(symbol.decomposed, widths, strict=True):
        if ch.isupper():  # a bar; lower case letters are spaces
            draw.rectangle([x, quiet, x + w * module - 1, quiet + height], fill=(0, 0, 0))
        x += w * module
    # the label on the meter, photographed with its surroundings (no two photos alike)
    rng = _rng(f"label/{value}")
    margin_x, margin_y = 160, 120
    blocks = rng.integers(40, 220, size=(5, 7, 3), dtype=np.uint8)
    photo = Image.fromarray(blocks, "RGB").resize(
        (image.width + 2 * margin_x, image.height + 2 * margin_y), Image.Resampling.BICUBIC
    )
    offset = (int(rng.integers(40, 2 * margin_x - 40)), int(rng.integers(30, 2 * margin_y - 30)))
    photo.paste(image, offset)
    return _jpeg(photo, _exif(taken, gps))


def signature_png(seed: str) -> bytes:
    """A drawn signature (transparent PNG), different for every seed."""
    rng = _rng(seed)
    image = Image.new("RGBA", (300, 100), (0, 0, 0, 0))
    points = [(10 + 35 * i, int(rng.integers(15, 90))) for i in range(9)]
    ImageDraw.Draw(image).line(points, fill=(0, 0, 0, 255), width=4)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
