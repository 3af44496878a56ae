"""Generated test images: phone-like barcode photos, EXIF'd JPEGs, bombs and bad files."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import datetime
from pathlib import Path

import barcode
import numpy as np
import segno
from barcode.writer import ImageWriter
from PIL import Image, ImageEnhance, ImageFilter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "media"
BRIGHTON_18 = FIXTURES / "brighton_DJI_0018_small.jpg"
BRIGHTON_25 = FIXTURES / "brighton_DJI_0025_small.jpg"
THERMAL_H20T = FIXTURES / "thermal_DJI_H20T_small.jpg"

METER_CODE = "3240101234567890123456"


def code128_image(text: str = METER_CODE, *, module_mm: float = 0.4) -> Image.Image:
    """A clean Code 128 symbol as printed on a meter label (≈4.7 px per module at 300 dpi)."""
    buf = io.BytesIO()
    barcode.get("code128", text, writer=ImageWriter()).write(
        buf,
        options={"write_text": False, "module_width": module_mm, "module_height": 12,
                 "quiet_zone": 6},
    )  # fmt: skip
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def qr_image(text: str = METER_CODE) -> Image.Image:
    """A clean QR symbol."""
    buf = io.BytesIO()
    segno.make_qr(text, error="m").save(buf, kind="png", scale=6, border=4)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def phone_photo(
    symbol: Image.Image,
    *,
    angle_deg: float = 0.0,
    blur_px: float = 1.5,
    contrast: float = 0.35,
    perspective: float = 0.08,
    noise: float = 6.0,
    size: tuple[int, int] = (1600, 1200),
) -> Image.Image:
    """The symbol on a label, photographed: turned, keystoned, blurred, dim, noisy, JPEG'd."""
    background = (150, 140, 130)
    canvas = Image.new("RGB", size, background)
    turned = symbol.rotate(
        angle_deg, expand=True, fillcolor=(255, 255, 255), resample=Image.Resampling.BICUBIC
    )
    canvas.paste(turned, ((size[0] - turned.width) // 2, (size[1] - turned.height) // 2))
    w, h = size
    d = perspective * w
    if perspective:
        canvas = canvas.transform(
            size,
            Image.Transform.QUAD,
            (d, d * 0.5, 0, h, w, h, w - d, 0),
            resample=Image.Resampling.BICUBIC,
            fillcolor=background,
        )
    if blur_px:
        canvas = canvas.filter(ImageFilter.GaussianBlur(blur_px))
    canvas = ImageEnhance.Contrast(canvas).enhance(contrast)
    rng = np.random.default_rng(0)
    arr = np.asarray(canvas).astype(np.int16) + rng.normal(0, noise, (h, w, 3)).astype(np.int16)
    photo = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=70)
    return Image.open(io.BytesIO(out.getvalue()))


def jpeg_with_exif(
    path: Path,
    *,
    size: tuple[int, int] = (200, 100),
    orientation: int | None = None,
    taken: datetime | None = None,
    offset: str | None = None,
    gps: tuple[float, float] | None = None,
) -> Path:
    """A JPEG, left half red and right half blue, with the EXIF fields asked for."""
    im = Image.new("RGB", size, (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    ifd = exif.get_ifd(0x8769)
    if taken is not None:
        ifd[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if offset is not None:
        ifd[0x9011] = offset
    if gps is not None:
        lat, lon = gps
        g = exif.get_ifd(0x8825)
        g[1], g[2] = ("N" if lat >= 0 else "S"), _dms(abs(lat))
        g[3], g[4] = ("E" if lon >= 0 else "W"), _dms(abs(lon))
    im.save(path, "JPEG", exif=exif.tobytes(), quality=90)
    return path


def _dms(value: float) -> tuple[float, float, float]:
    d = int(value)
    m = int((value - d) * 60)
    s = round((value - d - m / 60) * 3600, 4)
    return (float(d), float(m), s)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A few hundred bytes declaring a 10-gigapixel greyscale image: opening must refuse it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * ((width + 7) // 8 + 1) * 16, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )


def elf_executable() -> bytes:
    """The start of a Linux executable (what a renamed binary looks like)."""
    return b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 48


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_bytes(
    *,
    brand: bytes = b"isom",
    compatible: bytes = b"mp41",
    duration_ms: int = 5000,
    mdat_bytes: int = 4096,
) -> bytes:
    """A minimal well-formed ISO-BMFF file: ftyp, moov/mvhd (v0), mdat."""
    ftyp = _box(b"ftyp", brand + b"\x00\x00\x02\x00" + brand + compatible)
    created_s = 3_700_000_000  # seconds since 1904 → 2021-03-31
    mvhd = _box(
        b"mvhd",
        b"\x00\x00\x00\x00"
        + struct.pack(">IIII", created_s, created_s, 1000, duration_ms)
        + b"\x00" * 80,
    )
    moov = _box(b"moov", mvhd)
    mdat = _box(b"mdat", bytes(range(256)) * (mdat_bytes // 256))
    return ftyp + moov + mdat
